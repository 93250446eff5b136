"""``/api/v1/payments/``: posting one payment, reading payments with their allocations, reversing
one, the webhook events both write, and who may do what."""

from __future__ import annotations

from datetime import date

import pytest
from rest_framework.test import APIClient

from debt_collections.models import OutboxEvent
from loans import services
from loans.models import Allocation, Loan, Payment
from tests.api.conftest import idem, key_client, staff_client
from tests.api.test_loans import problem
from tests.factories import BorrowerFactory, LoanProductFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/payments/"
FEB, MAR = date(2025, 2, 1), date(2025, 3, 1)


def three_installments(partner, ref="L-1"):
    """900.00 in three installments of 300.00 + 30.00, due Feb, Mar and Apr 1 2025."""
    from loans.schedules import ExplicitInstallment

    product = LoanProductFactory()
    borrower = BorrowerFactory(partner=partner)
    schedule = [
        ExplicitInstallment(due_date=d, principal=300, interest=30) for d in (FEB, MAR, date(2025, 4, 1))
    ]
    return services.loan_create(
        partner=partner, borrower=borrower, product=product, external_ref=ref, principal="900.00",
        annual_rate="0.12", term=3, start_date=date(2025, 1, 1), first_due_date=FEB, schedule=schedule,
    )  # fmt: skip


def payment(**changes) -> dict:
    body = {
        "loan_ref": "L-1",
        "external_ref": "P-1",
        "amount": "330.00",
        "currency": "CNY",
        "value_date": "2025-02-01",
    }
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


def post(client, **changes):
    return client.post(URL, payment(**changes), format="json", **idem())


@pytest.fixture
def loan(partner):
    return three_installments(partner)


class TestPost:
    def test_by_reference_allocated_at_once_with_its_event(self, api, loan):
        response = post(api)
        assert response.status_code == 201, response.content
        body = response.json()
        assert body["loan"] == loan.pk and body["loan_ref"] == "L-1" and body["status"] == "posted"
        assert body["amount"] == "330.00" and body["unapplied_amount"] == "0.00"
        assert body["allocations"] == [
            {
                "installment": 1, "due_date": "2025-02-01", "schedule_version": 1, "principal": "300.00",
                "interest": "30.00", "fee": "0.00", "penalty": "0.00", "total": "330.00",
            }
        ]  # fmt: skip
        event = OutboxEvent.objects.get()
        assert (event.event_type, event.subject_id, event.partner_id) == (
            "payment.posted",
            body["id"],
            loan.partner_id,
        )
        assert event.payload["amount"] == "330.00" and event.payload["loan_ref"] == "L-1"
        assert event.delivered_at is None

    def test_by_loan_id_with_an_overpayment(self, api, loan):
        response = post(api, loan_ref=None, loan=loan.pk, amount="1000.00", value_date="2025-04-01")
        assert response.status_code == 201, response.content
        assert response.json()["unapplied_amount"] == "10.00"
        assert Loan.objects.get(pk=loan.pk).status == "paid_off"

    @pytest.mark.parametrize(
        ("changes", "field"),
        [
            ({"amount": 330.0}, "amount"),  # a float: refused, whatever its value
            ({"amount": 330}, "amount"),
            ({"amount": "-5.00"}, "amount"),
            ({"amount": "0.00"}, "amount"),
            ({"amount": "1.001"}, "amount"),
            ({"amount": "NaN"}, "amount"),
            ({"amount": "1e400"}, "amount"),
            ({"currency": "XXX"}, "currency"),
            ({"value_date": 20250201}, "value_date"),
            ({"value_date": "2025-02-30"}, "value_date"),
            ({"channel": "pigeon"}, "channel"),
            ({"external_ref": ""}, "external_ref"),
            ({"external_ref": "x" * 101}, "external_ref"),
            ({"loan": 1}, "loan"),  # both loan and loan_ref
            ({"loan_ref": None}, "loan"),  # neither
            ({"loan_ref": None, "loan": "one"}, "loan"),
            ({"loan_ref": None, "loan": 2**64}, "loan"),
            ({"note": "hi"}, "note"),  # unknown field
        ],
    )
    def test_bad_input_is_400_and_writes_nothing(self, api, loan, changes, field):
        body = problem(post(api, **changes), 400)
        assert field in body["errors"], body
        assert not Payment.objects.exists() and not OutboxEvent.objects.exists()

    @pytest.mark.parametrize(
        "data", ['{"amount": "1.00",', "null", "[]", '"text"', "\x00", '{"amount": "1.00"} trailing']
    )
    def test_malformed_bodies_are_400(self, api, loan, data):
        problem(api.post(URL, data=data, content_type="application/json", **idem()), 400)
        assert not Payment.objects.exists()

    def test_other_content_types_are_415(self, api, loan):
        response = api.post(URL, data="amount=1", content_type="application/x-www-form-urlencoded", **idem())
        problem(response, 415)

    def test_oversize_body_is_413(self, api, loan):
        body = payment(external_ref="x" * (2 * 1024 * 1024))
        problem(api.post(URL, body, format="json", **idem()), 413)
        assert not Payment.objects.exists()

    @pytest.mark.parametrize(
        ("changes", "field"),
        [
            ({"currency": "USD"}, "currency"),
            ({"value_date": "2024-12-31"}, "value_date"),
        ],
    )
    def test_business_refusals_are_422(self, api, loan, changes, field):
        body = problem(post(api, **changes), 422)
        assert list(body["errors"]) == [field]
        assert not Payment.objects.exists() and not OutboxEvent.objects.exists()

    def test_duplicate_reference_is_422(self, api, loan):
        assert post(api).status_code == 201
        body = problem(post(api, amount="1.00"), 422)
        assert body["errors"] == {"external_ref": ["This partner already has a payment with this reference."]}
        assert Payment.objects.count() == 1 and OutboxEvent.objects.count() == 1

    def test_paid_off_loan_takes_no_payment(self, api, loan):
        post(api, amount="990.00", value_date="2025-04-01")
        body = problem(post(api, external_ref="P-2", amount="1.00"), 422)
        assert body["errors"] == {"loan": ["Loan L-1 is paid_off; it takes no payments."]}

    def test_another_partners_loan_is_404(self, api, other_partner):
        theirs = three_installments(other_partner, ref="L-THEIRS")
        body = problem(post(api, loan_ref=None, loan=theirs.pk), 404)
        assert body["errors"] == {"loan": ["No such loan."]}
        body = problem(post(api, loan_ref="L-THEIRS"), 404)
        assert body["errors"] == {"loan_ref": ["No such loan."]}
        assert not Payment.objects.exists()


class TestRead:
    def test_detail_by_id_and_reference_and_list_filters(self, api, loan, partner):
        first = post(api).json()
        post(api, external_ref="P-2", amount="10.00", value_date="2025-03-01")
        other_loan = three_installments(partner, ref="L-2")
        post(api, loan_ref="L-2", external_ref="P-3", amount="5.00", value_date="2025-02-15")
        assert api.get(f"{URL}{first['id']}/").json() == first
        assert api.get(f"{URL}ref:P-1/").json() == first

        def refs(query=""):
            response = api.get(URL + query)
            assert response.status_code == 200, response.content
            return sorted(r["external_ref"] for r in response.json()["results"])

        assert refs() == ["P-1", "P-2", "P-3"]
        assert refs(f"?loan={other_loan.pk}") == ["P-3"]
        assert refs("?loan_ref=L-1") == ["P-1", "P-2"]
        assert refs("?external_ref=P-2") == ["P-2"]
        assert refs("?value_date_from=2025-02-10") == ["P-2", "P-3"]
        assert refs("?value_date_to=2025-02-15") == ["P-1", "P-3"]
        assert refs("?value_date_from=2025-02-10&value_date_to=2025-02-28") == ["P-3"]
        services.payment_reverse(payment=Payment.objects.get(external_ref="P-3"), reason="bounced")
        assert refs("?status=reversed") == ["P-3"]
        assert refs("?status=posted") == ["P-1", "P-2"]

    @pytest.mark.parametrize("query", ["?loan=x", "?status=lost", "?value_date_from=yesterday", "?loan=-1"])
    def test_bad_filters_are_400(self, api, query):
        problem(api.get(URL + query), 400)

    def test_another_partners_payments_are_invisible(self, api, loan, other_partner):
        theirs = key_client(other_partner)
        their_loan = three_installments(other_partner, ref="L-1")
        mine = post(api).json()
        post(theirs, loan_ref="L-1", external_ref="P-1")
        assert [p["id"] for p in api.get(URL).json()["results"]] == [mine["id"]]
        their_id = Payment.objects.get(loan=their_loan).pk
        problem(api.get(f"{URL}{their_id}/"), 404)
        assert api.get(f"{URL}ref:P-1/").json()["id"] == mine["id"]


class TestReverse:
    def test_reversal_replays_the_loan_and_writes_its_event(self, api, loan):
        first = post(api).json()
        response = api.post(f"{URL}{first['id']}/reverse/", {"reason": "bounced transfer"}, format="json")
        assert response.status_code == 200, response.content
        body = response.json()
        assert body["status"] == "reversed" and body["reversal_reason"] == "bounced transfer"
        assert body["allocations"] == [] and body["reversed_at"]
        assert not Allocation.objects.exists()
        assert Loan.objects.get(pk=loan.pk).installments.get(number=1).principal_paid == 0
        event = OutboxEvent.objects.get(event_type="payment.reversed")
        assert event.subject_id == first["id"] and event.payload["reversal_reason"] == "bounced transfer"

    def test_by_reference(self, api, loan):
        post(api)
        response = api.post(f"{URL}ref:P-1/reverse/", {"reason": "chargeback"}, format="json")
        assert response.status_code == 200 and response.json()["status"] == "reversed"

    def test_twice_is_422(self, api, loan):
        first = post(api).json()
        api.post(f"{URL}{first['id']}/reverse/", {"reason": "bounced"}, format="json")
        body = problem(api.post(f"{URL}{first['id']}/reverse/", {"reason": "again"}, format="json"), 422)
        assert body["errors"] == {"payment": ["This payment was reversed already."]}
        assert OutboxEvent.objects.filter(event_type="payment.reversed").count() == 1

    @pytest.mark.parametrize(
        "body", [{}, {"reason": ""}, {"reason": "x" * 301}, {"reason": "ok", "extra": 1}]
    )
    def test_bad_input_is_400(self, api, loan, body):
        first = post(api).json()
        problem(api.post(f"{URL}{first['id']}/reverse/", body, format="json"), 400)
        assert Payment.objects.get().status == "posted"

    def test_another_partners_payment_is_404(self, api, other_partner):
        three_installments(other_partner)
        theirs = post(key_client(other_partner)).json()
        problem(api.post(f"{URL}{theirs['id']}/reverse/", {"reason": "mine?"}, format="json"), 404)
        assert Payment.objects.get().status == "posted"


class TestAccess:
    """Every payment endpoint x anonymous, wrong scope, other partner, collector, supervisor, compliance."""

    def endpoints(self, posted_id):
        return [
            ("get", URL, None),
            ("get", f"{URL}{posted_id}/", None),
            ("post", URL, payment(external_ref="P-NEW", amount="1.00")),
            ("post", f"{URL}{posted_id}/reverse/", {"reason": "test"}),
            ("post", f"{URL}batch/", {"payments": [payment(external_ref="P-B", amount="1.00")]}),
        ]

    def call(self, client, method, url, body):
        if method == "post":
            return client.post(url, body, format="json", **idem())
        return client.get(url)

    @pytest.fixture
    def posted(self, api, loan):
        return post(api).json()["id"]

    def test_anonymous_is_401(self, posted):
        for method, url, body in self.endpoints(posted):
            problem(self.call(APIClient(HTTP_ACCEPT_LANGUAGE="en"), method, url, body), 401)

    def test_wrong_scope_is_403(self, partner, posted):
        reader = key_client(partner, ["payments:read"])
        loans_only = key_client(partner, ["loans:read", "loans:write", "cases:read", "cases:write"])
        for method, url, body in self.endpoints(posted):
            if method == "get":
                assert self.call(reader, method, url, body).status_code == 200
            else:
                assert "payments:write" in problem(self.call(reader, method, url, body), 403)["detail"]
            problem(self.call(loans_only, method, url, body), 403)
        assert Payment.objects.count() == 1

    def test_write_scope_alone_cannot_read(self, partner, posted):
        writer = key_client(partner, ["payments:write"])
        problem(writer.get(URL), 403)
        assert post(writer, external_ref="P-W", amount="1.00").status_code == 201

    def test_other_partner(self, posted, other_partner):
        theirs = key_client(other_partner)
        for method, url, body in self.endpoints(posted):
            response = self.call(theirs, method, url, body)
            if url == URL and method == "get":
                assert response.json()["results"] == []
            elif url.endswith("batch/"):
                assert response.json()["results"][0]["errors"] == {"loan_ref": ["No such loan."]}
            else:
                problem(response, 404)
        assert Payment.objects.count() == 1

    @pytest.mark.parametrize("group", ["collector", "supervisor", "compliance_officer"])
    def test_staff_read_and_never_write(self, posted, group):
        client = staff_client(group)
        for method, url, body in self.endpoints(posted):
            response = self.call(client, method, url, body)
            if method == "get":
                assert response.status_code == 200, response.content
            else:
                assert problem(response, 403)["detail"] == "Only partner systems use this endpoint."
        assert Payment.objects.count() == 1 and Payment.objects.get().status == "posted"
