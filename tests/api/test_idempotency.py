"""``Idempotency-Key`` on loan and payment creation: a retry gets the first response, a different
body with the key is refused, a failed request leaves the key free, and twenty requests at once with
one key make one record (PostgreSQL, each request on its own connection)."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta

import pytest
from django.db import connections
from django.utils import timezone
from rest_framework.test import APIClient

from api.keys import partner_key_create
from api.models import IdempotencyRecord
from debt_collections.models import OutboxEvent
from loans.models import Loan, Payment
from tests.api.conftest import ALL_SCOPES, key_client
from tests.api.test_loans import problem, terms
from tests.api.test_payments import payment, three_installments
from tests.factories import BorrowerFactory, LoanProductFactory

PAYMENTS, LOANS = "/api/v1/payments/", "/api/v1/loans/"


def key(value: str | None = None) -> dict:
    return {"HTTP_IDEMPOTENCY_KEY": value or str(uuid.uuid4())}


@pytest.fixture
def loan(partner):
    return three_installments(partner)


@pytest.mark.django_db
class TestReplay:
    def test_same_key_same_body_gets_the_first_response(self, api, loan):
        headers = key()
        first = api.post(PAYMENTS, payment(), format="json", **headers)
        again = api.post(PAYMENTS, payment(), format="json", **headers)
        assert first.status_code == again.status_code == 201
        assert again.json() == first.json()
        assert again["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first
        assert Payment.objects.count() == 1 and OutboxEvent.objects.count() == 1

    def test_same_key_other_body_is_422(self, api, loan):
        headers = key()
        api.post(PAYMENTS, payment(), format="json", **headers)
        body = problem(api.post(PAYMENTS, payment(amount="331.00"), format="json", **headers), 422)
        assert body["type"] == "/api/problems/idempotency-key-reused"
        assert Payment.objects.get().amount == 330

    def test_same_key_on_another_endpoint_is_422(self, api, loan, partner):
        headers = key()
        api.post(PAYMENTS, payment(), format="json", **headers)
        problem(api.post(f"{PAYMENTS}batch/", {"payments": [payment()]}, format="json", **headers), 422)

    @pytest.mark.parametrize("value", [None, "", "   ", "x" * 256, "tab\there"])
    def test_missing_or_invalid_key_is_400(self, api, loan, value):
        headers = {} if value is None else {"HTTP_IDEMPOTENCY_KEY": value}
        body = problem(api.post(PAYMENTS, payment(), format="json", **headers), 400)
        assert body["type"].startswith("/api/problems/idempotency-key-")
        assert not Payment.objects.exists() and not IdempotencyRecord.objects.exists()

    @pytest.mark.parametrize(
        ("bad", "status"),
        [({"amount": 330.0}, 400), ({"currency": "USD"}, 422), ({"loan_ref": "L-404"}, 404)],
    )
    def test_the_key_is_free_again_after_a_failed_request(self, api, loan, bad, status):
        headers = key()
        problem(api.post(PAYMENTS, payment(**bad), format="json", **headers), status)
        assert not IdempotencyRecord.objects.exists()
        response = api.post(PAYMENTS, payment(), format="json", **headers)
        assert response.status_code == 201 and "Idempotent-Replayed" not in response
        assert Payment.objects.count() == 1

    def test_keys_belong_to_the_caller(self, api, loan, other_partner):
        three_installments(other_partner)
        headers = key("order-42")
        mine = api.post(PAYMENTS, payment(), format="json", **headers)
        theirs = key_client(other_partner).post(PAYMENTS, payment(), format="json", **headers)
        assert mine.status_code == theirs.status_code == 201
        assert mine.json()["id"] != theirs.json()["id"]

    def test_loan_creation_replays_too(self, api, partner):
        LoanProductFactory(code="consumer-12m")
        BorrowerFactory(partner=partner, external_ref="B-1")
        headers = key()
        first = api.post(LOANS, terms(), format="json", **headers)
        again = api.post(LOANS, terms(), format="json", **headers)
        assert first.status_code == again.status_code == 201 and again.json() == first.json()
        problem(api.post(LOANS, terms(principal="13000.00"), format="json", **headers), 422)
        assert Loan.objects.count() == 1

    def test_a_key_is_kept_24_hours(self, api, loan):
        headers = key()
        first = api.post(PAYMENTS, payment(), format="json", **headers).json()
        IdempotencyRecord.objects.update(created_at=timezone.now() - timedelta(hours=23, minutes=59))
        assert api.post(PAYMENTS, payment(), format="json", **headers).json() == first
        IdempotencyRecord.objects.update(created_at=timezone.now() - timedelta(hours=25))
        # Expired: the key is new again, and the request is judged afresh (its reference is taken).
        body = problem(api.post(PAYMENTS, payment(), format="json", **headers), 422)
        assert "external_ref" in body["errors"]


# --- concurrency (PostgreSQL) --------------------------------------------------------------------------

THREADS = 20


def at_once(requests) -> list:
    """Run each ``request()`` in its own thread (its own database connection), all released together;
    returns ``(status, body)`` per request."""
    barrier = threading.Barrier(len(requests))
    results: list = [None] * len(requests)

    def run(n, request):
        try:
            barrier.wait(timeout=30)
            response = request()
            results[n] = (response.status_code, response.json())
        except Exception as exc:  # reported in the results, with the request's number
            results[n] = ("error", repr(exc))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(n, r)) for n, r in enumerate(requests)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


def client_with(raw_key: str) -> APIClient:
    client = APIClient(HTTP_ACCEPT_LANGUAGE="en")
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    return client


def poster(raw_key, url, body, headers):
    return lambda: client_with(raw_key).post(url, body, format="json", **headers)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_twenty_concurrent_payment_posts_with_one_key_make_one_payment(on_postgres, partner):
    three_installments(partner)
    _row, raw = partner_key_create(partner=partner, name="concurrent", scopes=ALL_SCOPES)
    headers = key()
    results = at_once([poster(raw, PAYMENTS, payment(), headers) for _n in range(THREADS)])
    assert {status for status, _body in results} == {201}, results
    assert len({body["id"] for _status, body in results}) == 1
    assert Payment.objects.count() == 1 and OutboxEvent.objects.count() == 1
    assert IdempotencyRecord.objects.count() == 1


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_twenty_concurrent_loan_creations_with_one_key_make_one_loan(on_postgres, partner):
    LoanProductFactory(code="consumer-12m")
    BorrowerFactory(partner=partner, external_ref="B-1")
    _row, raw = partner_key_create(partner=partner, name="concurrent", scopes=ALL_SCOPES)
    headers = key()
    results = at_once([poster(raw, LOANS, terms(), headers) for _n in range(THREADS)])
    assert {status for status, _body in results} == {201}, results
    assert len({body["id"] for _status, body in results}) == 1
    assert Loan.objects.count() == 1


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_batches_with_one_key_post_once(on_postgres, partner):
    three_installments(partner)
    _row, raw = partner_key_create(partner=partner, name="concurrent", scopes=ALL_SCOPES)
    headers = key()
    body = {"payments": [payment(external_ref=f"P-{n}", amount="1.00") for n in range(20)]}
    results = at_once([poster(raw, f"{PAYMENTS}batch/", body, headers) for _n in range(THREADS)])
    assert {status for status, _body in results} == {200}, results
    assert all(b == results[0][1] for _status, b in results) and results[0][1]["accepted"] == 20
    assert Payment.objects.count() == 20


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_posts_of_one_reference_with_different_keys_make_one_payment(on_postgres, partner):
    three_installments(partner)
    _row, raw = partner_key_create(partner=partner, name="concurrent", scopes=ALL_SCOPES)
    results = at_once([poster(raw, PAYMENTS, payment(), key()) for _n in range(10)])
    statuses = sorted(status for status, _body in results)
    assert statuses == [201] + [422] * 9, results
    refused = [body for status, body in results if status == 422]
    assert all(
        b["errors"] == {"external_ref": ["This partner already has a payment with this reference."]}
        for b in refused
    )
    assert Payment.objects.count() == 1


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_batches_over_the_same_loans_do_not_deadlock(on_postgres, partner):
    loans = [three_installments(partner, f"L-{n}") for n in range(6)]
    _row, raw = partner_key_create(partner=partner, name="concurrent", scopes=ALL_SCOPES)
    requests = []
    for batch in range(8):
        order = loans if batch % 2 else list(reversed(loans))
        items = [
            payment(loan_ref=loan.external_ref, external_ref=f"B{batch}-{loan.external_ref}", amount="1.00")
            for loan in order
        ]
        requests.append(poster(raw, f"{PAYMENTS}batch/", {"payments": items}, key()))
    results = at_once(requests)
    assert {status for status, _body in results} == {200}, results
    assert all(body["accepted"] == 6 for _status, body in results)
    assert Payment.objects.count() == 48
    for loan in loans:
        assert loan.installments.get(number=1).interest_paid == 8
