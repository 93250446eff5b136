"""``/api/v1/loans/``: booking a loan (from terms or with its own schedule), reading it with its
delinquency and open case, its schedule (current or superseded), and who may do what.

The helpers here (a product, a borrower, a loan booked through the API) are used by the payment and
batch tests too."""

from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import Decimal as D

import pytest
from django.utils import timezone

from debt_collections.models import Case
from loans import services
from loans.models import Installment, Loan
from loans.restructure import Row, schedule_version_write
from tests.api.conftest import idem, key_client, staff_client
from tests.factories import BorrowerFactory, LoanProductFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/loans/"


def problem(response, status: int) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status and body["type"].startswith("/api/problems/")
    return body


def product(code="consumer-12m", **extra):
    return LoanProductFactory(code=code, **extra)


def terms(**changes) -> dict:
    """A 12-month annuity of 12,000.00 at 12 %, booked in January 2025, for borrower B-1."""
    body = {
        "external_ref": "L-1",
        "borrower_ref": "B-1",
        "product": "consumer-12m",
        "principal": "12000.00",
        "annual_rate": "0.12",
        "term": 12,
        "start_date": "2025-01-01",
        "first_due_date": "2025-02-01",
    }
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


def three_rows(first=date(2025, 2, 1)) -> list[dict]:
    """300.00 + 30.00 a month for three months."""
    return [
        {"due_date": (first + timedelta(days=28 * n)).isoformat(), "principal": "300.00", "interest": "30.00"}
        for n in range(3)
    ]


def book(client, **changes):
    """Book a loan through the API; returns the response."""
    return client.post(URL, terms(**changes), format="json", **idem())


@pytest.fixture
def setup(partner):
    """The partner's product and borrower B-1."""
    return product(), BorrowerFactory(partner=partner, external_ref="B-1")


class TestCreate:
    def test_from_terms_generates_the_schedule(self, api, setup):
        response = book(api)
        assert response.status_code == 201, response.content
        body = response.json()
        assert (
            body["external_ref"] == "L-1"
            and body["borrower_ref"] == "B-1"
            and body["product"] == "consumer-12m"
        )
        assert body["principal"] == "12000.00" and body["annual_rate"] == "0.120000"
        assert body["outstanding_principal"] == "12000.00" and body["status"] == "active"
        assert body["case"] is None and body["stage"] is None
        loan = Loan.objects.get(pk=body["id"])
        rows = list(loan.installments.order_by("number"))
        assert len(rows) == 12 and sum(r.principal_due for r in rows) == D("12000.00")

    def test_with_an_explicit_schedule_term_and_first_due_date_follow_from_it(self, api, setup):
        response = book(api, principal="900.00", term=None, first_due_date=None, schedule=three_rows())
        assert response.status_code == 201, response.content
        body = response.json()
        assert body["term"] == 3 and body["first_due_date"] == "2025-02-01"
        assert [r.interest_due for r in Installment.objects.filter(loan_id=body["id"])] == [D("30.00")] * 3

    def test_borrower_by_id(self, api, setup):
        _product, borrower = setup
        response = book(api, borrower_ref=None, borrower=borrower.pk)
        assert response.status_code == 201, response.content
        assert response.json()["borrower"] == borrower.pk

    def test_schedule_that_does_not_add_up_is_refused_naming_the_field(self, api, setup):
        rows = three_rows()
        rows[2]["principal"] = "200.00"
        body = problem(book(api, principal="900.00", term=None, first_due_date=None, schedule=rows), 422)
        assert "schedule" in body["errors"]
        assert not Loan.objects.exists()

    def test_schedule_row_error_is_dotted(self, api, setup):
        rows = three_rows()
        rows[1]["due_date"] = rows[0]["due_date"]
        body = problem(book(api, principal="900.00", term=None, first_due_date=None, schedule=rows), 422)
        assert list(body["errors"]) == ["schedule.1.due_date"]

    def test_business_rule_refusal_is_422(self, api, setup):
        body = problem(book(api, principal="50.00"), 422)  # under the product's minimum
        assert list(body["errors"]) == ["principal"]
        body = problem(book(api, first_due_date="2024-12-01"), 422)
        assert list(body["errors"]) == ["first_due_date"]

    @pytest.mark.parametrize(
        ("changes", "field"),
        [
            ({"principal": 12000.0}, "principal"),  # a JSON number: never a float for money
            ({"principal": "-100.00"}, "principal"),
            ({"principal": "0.00"}, "principal"),
            ({"principal": "12000.001"}, "principal"),
            ({"annual_rate": 0.12}, "annual_rate"),
            ({"annual_rate": "-0.01"}, "annual_rate"),
            ({"term": "twelve"}, "term"),
            ({"term": 0}, "term"),
            ({"start_date": "01/01/2025"}, "start_date"),
            ({"term": None}, "term"),  # no schedule: the term is needed
            ({"borrower": 5}, "borrower"),  # both borrower and borrower_ref
            ({"borrower_ref": None}, "borrower"),  # neither
            ({"colour": "red"}, "colour"),  # an unknown field is not silently dropped
            ({"schedule": []}, "schedule"),
            (
                {"schedule": [{"due_date": "2025-02-01", "principal": "1.00", "interest": "0", "x": 1}]},
                "schedule.0.x",
            ),
        ],
    )
    def test_bad_input_is_400_naming_the_field_and_writes_nothing(self, api, setup, changes, field):
        body = problem(book(api, **changes), 400)
        assert any(name == field or name.startswith(f"{field}.") for name in body["errors"]), body
        assert not Loan.objects.exists()

    def test_malformed_json_is_400(self, api, setup):
        response = api.post(URL, data='{"external_ref": "L-1",', content_type="application/json", **idem())
        assert problem(response, 400)["type"] == "/api/problems/malformed"
        body = problem(api.post(URL, data="[1, 2]", content_type="application/json", **idem()), 400)
        assert "non_field_errors" in body["errors"]
        assert not Loan.objects.exists()

    def test_unknown_product_is_422(self, api, setup):
        body = problem(book(api, product="no-such-product"), 422)
        assert body["errors"] == {"product": ["No such loan product."]}

    def test_another_partners_borrower_is_404(self, api, setup, other_partner):
        theirs = BorrowerFactory(partner=other_partner, external_ref="B-2")
        body = problem(book(api, borrower_ref=None, borrower=theirs.pk), 404)
        assert body["errors"] == {"borrower": ["No such borrower."]}
        problem(book(api, borrower_ref="B-2"), 404)
        assert not Loan.objects.exists()

    def test_duplicate_reference_is_422(self, api, setup):
        assert book(api).status_code == 201
        body = problem(book(api), 422)
        assert body["errors"] == {"external_ref": ["This partner already has a loan with this reference."]}

    def test_the_idempotency_key_is_required(self, api, setup):
        body = problem(api.post(URL, terms(), format="json"), 400)
        assert body["type"] == "/api/problems/idempotency-key-required"
        assert not Loan.objects.exists()


def late_loan(partner, days_late: int, ref="L-LATE", product_code="late-product"):
    """A loan of ``partner`` whose first installment fell due ``days_late`` days ago, unpaid, with its
    delinquency refreshed as of today."""
    today = timezone.localdate()
    first_due = today - timedelta(days=days_late)
    borrower = BorrowerFactory(partner=partner)
    loan = services.loan_create(
        partner=partner, borrower=borrower, product=product(product_code), external_ref=ref,
        principal="1200.00", annual_rate="0.12", term=12, start_date=first_due - timedelta(days=31),
        first_due_date=first_due,
    )  # fmt: skip
    services.delinquency_refresh(as_of=today, loan_ids=[loan.pk])
    return Loan.objects.get(pk=loan.pk)


class TestRead:
    def test_detail_by_id_and_by_reference_with_delinquency(self, api, partner):
        loan = late_loan(partner, 40)
        late = [i for i in loan.installments.all() if i.due_date < timezone.localdate()]
        assert len(late) == 2  # 40 and about 10 days ago
        by_id = api.get(f"{URL}{loan.pk}/").json()
        assert api.get(f"{URL}ref:L-LATE/").json() == by_id
        assert by_id["dpd"] == 40 and by_id["bucket"] == "31-60"
        principal, interest = sum(i.principal_due for i in late), sum(i.interest_due for i in late)
        assert by_id["overdue"] == {
            "principal": f"{principal:.2f}",
            "interest": f"{interest:.2f}",
            "fee": "0.00",
            "penalty": "0.00",
            "total": f"{principal + interest:.2f}",
        }
        assert by_id["outstanding_principal"] == "1200.00"

    def test_detail_shows_the_open_case_and_its_stage(self, api, partner):
        loan = late_loan(partner, 10)
        today = timezone.localdate()
        Case.objects.create(
            loan=loan, status="closed", stage="follow_up_call", stage_entered_on=today, opened_on=today,
            closed_on=today, close_reason="cured",
        )  # fmt: skip
        case = Case.objects.create(loan=loan, stage="follow_up_call", stage_entered_on=today, opened_on=today)
        body = api.get(f"{URL}{loan.pk}/").json()
        assert body["case"] == case.pk and body["stage"] == "follow_up_call"

    def test_list_filters(self, api, partner):
        late = late_loan(partner, 40)
        current = late_loan(partner, -5, ref="L-NEW", product_code="p2")
        Loan.objects.filter(pk=current.pk).update(status="paid_off", closed_on=timezone.localdate())

        def refs(query=""):
            response = api.get(URL + query)
            assert response.status_code == 200, response.content
            return sorted(r["external_ref"] for r in response.json()["results"])

        assert refs() == ["L-LATE", "L-NEW"]
        assert refs("?external_ref=L-NEW") == ["L-NEW"]
        assert refs(f"?borrower={late.borrower_id}") == ["L-LATE"]
        assert refs(f"?borrower_ref={late.borrower.external_ref}") == ["L-LATE"]
        assert refs("?bucket=31-60") == ["L-LATE"]
        assert refs("?status=paid_off") == ["L-NEW"]

    @pytest.mark.parametrize(
        "query", ["?bucket=M9", "?status=lost", "?borrower=abc", "?borrower=1.5", "?borrower=0"]
    )
    def test_bad_filters_are_400(self, api, partner, query):
        problem(api.get(URL + query), 400)

    def test_list_is_cursor_paginated(self, api, partner):
        for n in range(3):
            late_loan(partner, 5, ref=f"L-{n}", product_code=f"p{n}")
        page = api.get(URL + "?page_size=2").json()
        assert len(page["results"]) == 2 and page["next"]
        rest = api.get(page["next"]).json()
        assert len(rest["results"]) == 1 and rest["next"] is None

    def test_another_partners_loan_is_404_by_id_and_by_reference(self, api, other_partner):
        theirs = late_loan(other_partner, 5)
        problem(api.get(f"{URL}{theirs.pk}/"), 404)
        problem(api.get(f"{URL}ref:L-LATE/"), 404)
        problem(api.get(f"{URL}{theirs.pk}/schedule/"), 404)
        assert api.get(URL).json()["results"] == []


class TestSchedule:
    def test_current_schedule_with_paid_partly_and_unpaid(self, api, partner, setup):
        loan_id = book(api, principal="900.00", term=None, first_due_date=None, schedule=three_rows()).json()[
            "id"
        ]
        loan = Loan.objects.get(pk=loan_id)
        services.payment_post(
            loan=loan, external_ref="P-1", amount="400.00", currency="CNY", value_date=date(2025, 2, 1)
        )
        body = api.get(f"{URL}{loan_id}/schedule/").json()
        assert (body["version"], body["current"], body["currency"]) == (1, True, "CNY")
        first, second, third = body["installments"]
        assert (
            first["status"] == "paid" and first["outstanding"] == "0.00" and first["total_paid"] == "330.00"
        )
        assert second["status"] == "partly" and second["principal_paid"] == "40.00"
        assert second["interest_paid"] == "30.00" and second["outstanding"] == "260.00"
        assert third["status"] == "unpaid" and third["total_due"] == "330.00"
        assert api.get(f"{URL}ref:L-1/schedule/").json() == body

    def test_a_superseded_version(self, api, partner, setup):
        loan_id = book(api, principal="900.00", term=None, first_due_date=None, schedule=three_rows()).json()[
            "id"
        ]
        loan = Loan.objects.get(pk=loan_id)
        rows = [Row(number=n, due_date=date(2025, 3, 1) + timedelta(days=30 * n), principal_due=D("150.00"))
                for n in range(1, 7)]  # fmt: skip
        schedule_version_write(loan=loan, rows=rows, as_of=date(2025, 1, 15))
        current = api.get(f"{URL}{loan_id}/schedule/").json()
        assert (current["version"], current["current"], len(current["installments"])) == (2, True, 6)
        old = api.get(f"{URL}{loan_id}/schedule/?version=1").json()
        assert (old["version"], old["current"], len(old["installments"])) == (1, False, 3)
        assert api.get(f"{URL}{loan_id}/schedule/?version=2").json() == current

    @pytest.mark.parametrize(
        ("query", "status"), [("?version=9", 404), ("?version=x", 400), ("?version=0", 400)]
    )
    def test_bad_versions(self, api, setup, query, status):
        loan_id = book(api).json()["id"]
        problem(api.get(f"{URL}{loan_id}/schedule/{query}"), status)


class TestAccess:
    """Every loan endpoint x anonymous, wrong scope, other partner, collector, supervisor, compliance."""

    @pytest.fixture
    def loan(self, partner, setup):
        return late_loan(partner, 10)

    def requests(self, loan):
        return [
            ("get", URL, None),
            ("get", f"{URL}{loan.pk}/", None),
            ("get", f"{URL}{loan.pk}/schedule/", None),
            ("post", URL, terms(external_ref="L-NEW")),
        ]

    def call(self, client, method, url, body):
        if method == "post":
            return client.post(url, body, format="json", **idem())
        return client.get(url)

    def test_anonymous_is_401(self, loan):
        from rest_framework.test import APIClient

        for method, url, body in self.requests(loan):
            problem(self.call(APIClient(HTTP_ACCEPT_LANGUAGE="en"), method, url, body), 401)

    def test_wrong_scope_is_403(self, partner, loan):
        reader = key_client(partner, ["loans:read"])
        writer = key_client(partner, ["loans:write"])
        other = key_client(partner, ["payments:read", "payments:write", "cases:read"])
        for method, url, body in self.requests(loan):
            if method == "get":
                assert self.call(reader, method, url, body).status_code == 200
                problem(self.call(writer, method, url, body), 403)
            else:
                problem(self.call(reader, method, url, body), 403)
                assert self.call(writer, method, url, body).status_code == 201
            problem(self.call(other, method, url, body), 403)
        assert "loans:read" in problem(other.get(URL), 403)["detail"]

    def test_other_partner_sees_nothing(self, loan, other_partner):
        theirs = key_client(other_partner)
        assert theirs.get(URL).json()["results"] == []
        problem(theirs.get(f"{URL}{loan.pk}/"), 404)
        problem(theirs.get(f"{URL}{loan.pk}/schedule/"), 404)
        # Their B-1 does not exist: 404, not a loan for our borrower.
        problem(self.call(theirs, "post", URL, terms(external_ref="L-NEW")), 404)
        assert Loan.objects.count() == 1

    @pytest.mark.parametrize("group", ["collector", "supervisor", "compliance_officer"])
    def test_staff_read_and_never_write(self, loan, group):
        client = staff_client(group)
        for method, url, body in self.requests(loan):
            response = self.call(client, method, url, body)
            if method == "get":
                assert response.status_code == 200, response.content
            else:
                assert problem(response, 403)["detail"] == "Only partner systems use this endpoint."
        assert Loan.objects.count() == 1

    def test_staff_without_a_role_is_403(self, loan):
        problem(staff_client(None).get(URL), 403)


def test_amounts_are_strings_with_two_decimals(api, setup):
    body = book(api).json()
    raw = json.dumps(body)
    assert '"principal": "12000.00"' in raw and '"total": "0.00"' in raw
