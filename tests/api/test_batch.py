"""``POST /api/v1/payments/batch/``: up to 1,000 payments a request, each accepted or rejected on its
own, the accepted ones posted together with their webhook events."""

from __future__ import annotations

from datetime import date

import pytest
from rest_framework.test import APIClient

from debt_collections.models import OutboxEvent
from loans import services
from loans.models import Allocation, Payment
from tests.api.conftest import idem, key_client, staff_client
from tests.api.test_loans import problem
from tests.api.test_payments import payment, three_installments

pytestmark = pytest.mark.django_db

URL = "/api/v1/payments/batch/"


def send(client, items, **headers):
    return client.post(URL, {"payments": items}, format="json", **(headers or idem()))


@pytest.fixture
def loans(partner):
    return three_installments(partner, "L-1"), three_installments(partner, "L-2")


def test_mixed_good_and_bad_items(api, loans, other_partner):
    theirs = three_installments(other_partner, "L-THEIRS")
    services.payment_post(
        loan=loans[1], external_ref="OLD", amount="1.00", currency="CNY", value_date=date(2025, 2, 1)
    )
    items = [
        payment(external_ref="A"),  # 0: accepted
        payment(external_ref="B", amount=12.5),  # 1: a float
        payment(external_ref="C", loan_ref="L-2", amount="-1.00"),  # 2: negative
        payment(external_ref="D", loan_ref=None, loan=loans[1].pk, amount="20.00"),  # 3: accepted, by id
        payment(external_ref="A", loan_ref="L-2"),  # 4: A was posted by item 0
        payment(external_ref="OLD"),  # 5: in the book already
        payment(external_ref="E", loan_ref="L-THEIRS"),  # 6: another partner's reference
        payment(external_ref="F", loan_ref=None, loan=theirs.pk),  # 7: another partner's id
        payment(external_ref="G", currency="USD"),  # 8: the loan is in CNY
        "not an object",  # 9
        payment(external_ref="H", tip="1.00"),  # 10: unknown field
        payment(external_ref="I", loan_ref="L-2", value_date="2025-03-01", amount="100.00"),  # 11: accepted
    ]
    response = send(api, items)
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["accepted"], body["rejected"]) == (3, 9)
    results = body["results"]
    assert [r["index"] for r in results] == list(range(12))
    assert [r["status"] for r in results] == [
        "accepted", "rejected", "rejected", "accepted", "rejected", "rejected", "rejected", "rejected",
        "rejected", "rejected", "rejected", "accepted",
    ]  # fmt: skip
    duplicate = {"external_ref": ["This partner already has a payment with this reference."]}
    assert results[1]["errors"] == {"amount": ['Send amounts as strings, e.g. "1200.50".']}
    assert list(results[2]["errors"]) == ["amount"]
    assert results[4]["errors"] == duplicate and results[5]["errors"] == duplicate
    assert results[6]["errors"] == {"loan_ref": ["No such loan."]}
    assert results[7]["errors"] == {"loan": ["No such loan."]}
    assert results[8]["errors"] == {"currency": ["The loan is in CNY, not USD."]}
    assert results[9]["errors"] == {"non_field_errors": ["Invalid data. Expected a dictionary, but got str."]}
    assert results[10]["errors"] == {"tip": ["Unknown field."]}
    accepted = results[0]["payment"]
    assert (
        accepted["external_ref"] == "A" and accepted["amount"] == "330.00" and accepted["loan_ref"] == "L-1"
    )
    assert results[3]["payment"]["loan"] == loans[1].pk
    posted = Payment.objects.filter(loan__partner=loans[0].partner).values_list("external_ref", flat=True)
    assert sorted(posted) == ["A", "D", "I", "OLD"]
    events = OutboxEvent.objects.filter(event_type="payment.posted")
    assert sorted(e.payload["external_ref"] for e in events) == ["A", "D", "I"]
    assert Allocation.objects.filter(payment__external_ref="A").get().principal == 300


def test_the_accepted_ones_are_allocated_as_one_by_one(api, loans):
    items = [
        payment(external_ref="A", amount="300.00", value_date="2025-03-01"),
        payment(external_ref="B", amount="100.00", value_date="2025-02-01"),  # back-dated: replays A
    ]
    send(api, items)
    lines = sorted(
        (a.payment.external_ref, a.installment.number, a.principal, a.interest)
        for a in Allocation.objects.select_related("payment", "installment")
    )
    assert [(r, n, str(p), str(i)) for r, n, p, i in lines] == [
        ("A", 1, "230.00", "0.00"),
        ("A", 2, "40.00", "30.00"),
        ("B", 1, "70.00", "30.00"),
    ]


@pytest.mark.parametrize(
    "body",
    [
        {"payments": [payment(external_ref=f"P-{n}") for n in range(1001)]},  # over the limit
        {"payments": payment()},  # not a list
        {"payments": []},
        {"payments": None},
        {},
        [payment()],  # the list itself, not in an object
        {"payments": [payment()], "dry_run": True},
    ],
)
def test_bad_requests_are_400_for_the_whole_batch(api, loans, body):
    problem(api.post(URL, body, format="json", **idem()), 400)
    assert not Payment.objects.exists() and not OutboxEvent.objects.exists()


def test_a_full_batch_of_1000(api, partner):
    loans = [three_installments(partner, f"L-{n}") for n in range(100)]
    items = [
        payment(loan_ref=None, loan=loans[n % 100].pk, external_ref=f"P-{n}", amount="1.00")
        for n in range(1000)
    ]
    body = send(api, items).json()
    assert body["accepted"] == 1000 and body["rejected"] == 0
    assert Payment.objects.count() == 1000 and OutboxEvent.objects.count() == 1000
    loan = loans[0]
    loan.refresh_from_db()
    assert loan.installments.get(number=1).interest_paid == 10  # ten payments of 1.00, interest first


def test_the_idempotency_key_replays_the_batch(api, loans):
    headers = idem()
    first = send(api, [payment(), payment(external_ref="X", amount="0")], **headers)
    again = send(api, [payment(), payment(external_ref="X", amount="0")], **headers)
    assert again.status_code == 200 and again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert Payment.objects.count() == 1 and OutboxEvent.objects.count() == 1
    problem(send(api, [payment(external_ref="Y")], **headers), 422)
    body = problem(api.post(URL, {"payments": [payment()]}, format="json"), 400)
    assert body["type"] == "/api/problems/idempotency-key-required"


def test_access(partner, loans):
    items = [payment()]
    problem(send(key_client(partner, ["payments:read"]), items), 403)
    problem(send(key_client(partner, ["loans:write"]), items), 403)
    problem(send(staff_client("supervisor"), items), 403)
    problem(send(APIClient(HTTP_ACCEPT_LANGUAGE="en"), items), 401)
    assert not Payment.objects.exists()
    assert send(key_client(partner, ["payments:write"]), items).json()["accepted"] == 1
