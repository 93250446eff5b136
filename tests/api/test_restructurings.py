"""``/api/v1/restructurings/``: a partner or collector proposes, a supervisor who did not propose it
decides. Own proposals are refused with 422 (``decided_by``), partner keys never decide (403), a waiver
above the supervisor limit needs a senior supervisor (403); bad input writes nothing."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal as D

import pytest
from rest_framework.test import APIClient

from debt_collections.models import Case, CollectionPolicy, Restructuring
from loans.models import Loan
from tests.api.conftest import idem, staff_client
from tests.api.test_cases import assert_problem, ids, join_team, late_case, today

pytestmark = pytest.mark.django_db

URL = "/api/v1/restructurings/"


@pytest.fixture
def case(partner):
    return late_case(partner, 70)


def proposal(the_case, **extra) -> dict:
    return {
        "case": the_case.pk, "kind": "term_extension", "new_term": 24,
        "first_due_date": (today() + timedelta(days=10)).isoformat(), "reason": "Lost his job; can pay half.",
        **extra,
    }  # fmt: skip


def propose(client, the_case, **extra):
    response = client.post(URL, proposal(the_case, **extra), format="json", **idem())
    assert response.status_code == 201, response.content
    return response.json()


def decide(client, proposal_id: int, verb: str, reason="affordable"):
    return client.post(f"{URL}{proposal_id}/{verb}/", {"reason": reason}, format="json")


def test_a_partner_proposes_and_a_supervisor_approves(api, case):
    body = propose(api, case)
    assert (
        body["status"] == "proposed"
        and body["proposed_by"] == "partner:acme"
        and body["kind"] == "term_extension"
    )
    assert body["current_summary"]["periods"] < body["proposed_summary"]["periods"] == 24
    assert isinstance(body["waived_amount"], str) and body["decided_by"] is None
    supervisor = staff_client("supervisor")
    response = decide(supervisor, body["id"], "approve")
    assert response.status_code == 200, response.content
    decided = response.json()
    assert decided["status"] == "approved" and decided["decided_by"] == supervisor.user.username
    assert decided["schedule_version"] == 2 == Loan.objects.get(pk=case.loan_id).schedule_version
    case.refresh_from_db()
    assert case.status == "closed" and case.close_reason == "restructured_performing"
    assert api.get(f"{URL}{body['id']}/").json()["status"] == "approved"


def test_a_supervisor_cannot_approve_their_own_proposal_422(case):
    supervisor = staff_client("supervisor")
    body = propose(supervisor, case)
    problem = assert_problem(decide(supervisor, body["id"], "approve"), 422, "validation")
    assert "decided_by" in problem["errors"]
    assert_problem(decide(supervisor, body["id"], "reject"), 422)
    assert Restructuring.objects.get(pk=body["id"]).status == "proposed"
    assert Loan.objects.get(pk=case.loan_id).schedule_version == 1


def test_a_partner_key_or_a_collector_cannot_decide_403(api, case):
    body = propose(api, case)
    problem = assert_problem(decide(api, body["id"], "approve"), 403, "forbidden")
    assert problem["detail"] == "Partner keys may not use this endpoint."
    assert_problem(decide(api, body["id"], "reject"), 403)
    collector = staff_client("collector")
    join_team(collector.user, case)
    assert_problem(decide(collector, body["id"], "approve"), 403)
    assert Restructuring.objects.get(pk=body["id"]).status == "proposed"


def test_a_supervisor_rejects_and_the_loan_is_left_as_it_was(api, case):
    body = propose(api, case)
    response = decide(staff_client("supervisor"), body["id"], "reject", reason="Income not verified.")
    assert response.status_code == 200, response.content
    assert (
        response.json()["status"] == "rejected"
        and response.json()["decision_reason"] == "Income not verified."
    )
    assert Loan.objects.get(pk=case.loan_id).schedule_version == 1
    assert_problem(decide(staff_client("supervisor"), body["id"], "approve"), 422)  # decided already


def test_a_waiver_above_the_supervisor_limit_needs_a_senior_supervisor(api, case):
    CollectionPolicy.objects.filter(product__isnull=True).update(supervisor_waiver_limit=D("1.00"))
    body = propose(api, case, kind="settlement", new_term=None, settlement_amount="5000.00")
    assert D(body["waived_amount"]) > 1
    problem = assert_problem(decide(staff_client("supervisor"), body["id"], "approve"), 403)
    assert "senior supervisor" in problem["detail"]
    assert decide(staff_client("senior_supervisor"), body["id"], "approve").status_code == 200


def test_a_decision_needs_a_reason(api, case):
    body = propose(api, case)
    supervisor = staff_client("supervisor")
    assert_problem(supervisor.post(f"{URL}{body['id']}/approve/", {}, format="json"), 400)
    assert_problem(decide(supervisor, body["id"], "approve", reason=""), 400)
    late = {"reason": "ok", "as_of": "2020-01-01"}
    assert_problem(supervisor.post(f"{URL}{body['id']}/approve/", late, format="json"), 400)
    assert Restructuring.objects.get(pk=body["id"]).status == "proposed"


def test_the_preview_writes_nothing(api, case):
    body = {k: v for k, v in proposal(case).items() if k != "reason"}
    response = api.post(f"{URL}preview/", body, format="json")
    assert response.status_code == 200, response.content
    preview = response.json()
    assert preview["proposed"]["periods"] == 24 and preview["current"]["rows"]
    assert not Restructuring.objects.exists()


@pytest.mark.parametrize(
    ("change", "status", "field"),
    [
        ({"new_annual_rate": 0.06, "kind": "rate_reduction"}, 400, "new_annual_rate"),
        ({"settlement_amount": 5000, "kind": "settlement", "new_term": None}, 400, "settlement_amount"),
        ({"kind": "amnesty"}, 400, "kind"),
        ({"case": "one"}, 400, "case"),
        ({"new_term": 0}, 400, "new_term"),
        ({"first_due_date": "soon"}, 400, "first_due_date"),
        ({"reason": ""}, 400, "reason"),
        ({"colour": "red"}, 400, "colour"),
        ({"holiday_periods": 2}, 422, "holiday_periods"),
        ({"first_due_date": "2020-01-01"}, 422, "first_due_date"),
        ({"new_term": 3}, 422, "new_term"),
        (
            {"kind": "settlement", "new_term": None, "settlement_amount": "99999999.00"},
            422,
            "settlement_amount",
        ),
        ({"kind": "penalty_waiver", "new_term": None}, 422, None),
    ],
)
def test_bad_proposals_are_refused_and_nothing_is_written(api, case, change, status, field):
    problem = assert_problem(api.post(URL, proposal(case, **change), format="json", **idem()), status)
    if field:
        assert field in problem["errors"], problem
    assert not Restructuring.objects.exists()


def test_one_proposal_waits_per_case_and_the_key_is_required(api, case):
    propose(api, case)
    problem = assert_problem(api.post(URL, proposal(case), format="json", **idem()), 422)
    assert "case" in problem["errors"]
    assert_problem(api.post(URL, proposal(case), format="json"), 400, "idempotency-key-required")
    assert Restructuring.objects.count() == 1


def test_another_partners_case_or_proposal_is_404(api, case, other_partner, client_for):
    rival = client_for(other_partner)
    assert_problem(rival.post(URL, proposal(case), format="json", **idem()), 404)
    body = propose(api, case)
    assert_problem(rival.get(f"{URL}{body['id']}/"), 404)
    assert ids(rival.get(URL)) == set()
    terms = {k: v for k, v in proposal(case).items() if k != "reason"}
    assert_problem(rival.post(f"{URL}preview/", terms, format="json"), 404)


def test_filters_and_who_reads(api, partner, case, client_for):
    body = propose(api, case)
    assert ids(api.get(f"{URL}?status=proposed")) == {body["id"]}
    assert ids(api.get(f"{URL}?status=approved")) == set()
    assert ids(api.get(f"{URL}?case={case.pk}")) == {body["id"]}
    assert ids(api.get(f"{URL}?case={case.pk + 1000}")) == set()
    assert_problem(api.get(f"{URL}?status=pending"), 400)
    listed = api.get(URL).json()["results"][0]
    assert "current_summary" not in listed and listed["loan_ref"] == case.loan.external_ref
    assert_problem(APIClient(HTTP_ACCEPT_LANGUAGE="en").get(URL), 401)
    assert_problem(client_for(partner, scopes=["loans:read"]).get(URL), 403)
    reader = client_for(partner, scopes=["cases:read"])
    assert_problem(reader.post(URL, proposal(case), format="json", **idem()), 403)
    outsider, member = staff_client("collector"), staff_client("collector")
    join_team(member.user, case)
    assert ids(outsider.get(URL)) == set() and ids(member.get(URL)) == {body["id"]}
    for group in ("supervisor", "compliance_officer"):
        assert ids(staff_client(group).get(URL)) == {body["id"]}
    officer = staff_client("compliance_officer")
    assert_problem(officer.post(URL, proposal(case), format="json", **idem()), 403)
    assert Case.objects.get(pk=case.pk).status == "open"
