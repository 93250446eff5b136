"""``/api/v1/legal-referrals/``: staff request, another supervisor approves (the case enters legal
referral with its evidence pack) or rejects; the requester deciding is 403, partner keys read only."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from debt_collections.models import LegalReferral
from tests.api.conftest import idem, staff_client
from tests.api.test_cases import assert_problem, ids, join_team, late_case

pytestmark = pytest.mark.django_db

URL = "/api/v1/legal-referrals/"
FORBEARANCE = "Offered a 6-month term extension and a payment holiday; both refused."


@pytest.fixture
def case(partner):
    """95 days past due: the scan recommends it for legal referral."""
    case = late_case(partner, 95)
    assert case.referral_recommended_on is not None
    return case


def request_body(the_case, **extra) -> dict:
    return {
        "case": the_case.pk,
        "reason": "No payment for 95 days.",
        "forbearance_considered": FORBEARANCE,
        **extra,
    }


def request_referral(client, the_case, **extra) -> dict:
    response = client.post(URL, request_body(the_case, **extra), format="json", **idem())
    assert response.status_code == 201, response.content
    return response.json()


def decide(client, referral_id: int, verb: str, reason="Forbearance exhausted."):
    return client.post(f"{URL}{referral_id}/{verb}/", {"reason": reason}, format="json")


@pytest.fixture
def collector(case):
    client = staff_client("collector")
    join_team(client.user, case)
    return client


def test_a_collector_requests_and_a_supervisor_approves(api, case, collector):
    body = request_referral(collector, case)
    assert body["status"] == "requested" and body["requested_by"] == collector.user.username
    assert body["loan_ref"] == case.loan.external_ref and body["evidence_sha256"] == ""
    supervisor = staff_client("supervisor")
    response = decide(supervisor, body["id"], "approve")
    assert response.status_code == 200, response.content
    referred = response.json()
    assert referred["status"] == "referred" and referred["decided_by"] == supervisor.user.username
    assert len(referred["evidence_sha256"]) == 64 and referred["referred_on"]
    case.refresh_from_db()
    assert case.stage == "legal_referral"
    seen = api.get(f"{URL}{body['id']}/").json()
    assert seen["status"] == "referred" and seen["case"] == case.pk


def test_the_requester_cannot_decide_403(case):
    supervisor = staff_client("supervisor")
    body = request_referral(supervisor, case)
    problem = assert_problem(decide(supervisor, body["id"], "approve"), 403, "forbidden")
    assert "another supervisor" in problem["detail"]
    assert_problem(decide(supervisor, body["id"], "reject"), 403)
    assert LegalReferral.objects.get(pk=body["id"]).status == "requested"


def test_a_supervisor_rejects(case, collector):
    body = request_referral(collector, case)
    response = decide(staff_client("supervisor"), body["id"], "reject", reason="Try a settlement first.")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "rejected"
    case.refresh_from_db()
    assert case.stage == "restructuring"


def test_partner_keys_and_collectors_never_request_or_decide(api, case, collector):
    problem = assert_problem(api.post(URL, request_body(case), format="json", **idem()), 403)
    assert problem["detail"] == "Partner keys may not use this endpoint."
    body = request_referral(collector, case)
    assert_problem(decide(api, body["id"], "approve"), 403)
    assert_problem(decide(collector, body["id"], "approve"), 403)
    assert_problem(decide(staff_client("compliance_officer"), body["id"], "reject"), 403)
    assert LegalReferral.objects.get().status == "requested"


def test_a_collector_may_not_request_a_case_the_scan_did_not_recommend(partner):
    case = late_case(partner, 70)
    collector = staff_client("collector")
    join_team(collector.user, case)
    problem = assert_problem(
        collector.post(URL, request_body(case), format="json", **idem()), 422, "validation"
    )
    assert "case" in problem["errors"]
    assert not LegalReferral.objects.exists()


@pytest.mark.parametrize(
    ("change", "status", "field"),
    [
        ({"forbearance_considered": ""}, 400, "forbearance_considered"),
        ({"reason": "x" * 2001}, 400, "reason"),
        ({"case": None}, 400, "case"),
        ({"urgent": True}, 400, "urgent"),
        ({"forbearance_considered": "   "}, 400, "forbearance_considered"),
    ],
)
def test_bad_requests_write_nothing(case, collector, change, status, field):
    problem = assert_problem(
        collector.post(URL, request_body(case, **change), format="json", **idem()), status
    )
    assert field in problem["errors"]
    assert not LegalReferral.objects.exists()


def test_a_case_the_collector_cannot_see_is_404_and_a_second_request_422(case, collector):
    outsider = staff_client("collector")
    assert_problem(outsider.post(URL, request_body(case), format="json", **idem()), 404)
    request_referral(collector, case)
    problem = assert_problem(collector.post(URL, request_body(case), format="json", **idem()), 422)
    assert "case" in problem["errors"]
    assert_problem(collector.post(URL, request_body(case), format="json"), 400, "idempotency-key-required")


def test_filters_and_who_reads(api, partner, case, collector, other_partner, client_for):
    body = request_referral(collector, case)
    assert ids(api.get(URL)) == {body["id"]}
    assert ids(api.get(f"{URL}?status=requested&case={case.pk}")) == {body["id"]}
    assert ids(api.get(f"{URL}?status=referred")) == set()
    assert_problem(api.get(f"{URL}?status=lost"), 400)
    rival = client_for(other_partner)
    assert ids(rival.get(URL)) == set()
    assert_problem(rival.get(f"{URL}{body['id']}/"), 404)
    assert_problem(APIClient(HTTP_ACCEPT_LANGUAGE="en").get(URL), 401)
    assert_problem(client_for(partner, scopes=["payments:read"]).get(URL), 403)
    assert ids(staff_client("collector").get(URL)) == set()
    for group in ("supervisor", "compliance_officer"):
        assert ids(staff_client(group).get(URL)) == {body["id"]}
    assert_problem(staff_client(None).get(URL), 403)
