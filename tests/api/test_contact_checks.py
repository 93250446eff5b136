"""``POST /api/v1/contact-checks/``: a dialer asks before it dials. 200 whether allowed or not, with the
reason codes, their citations and the next allowed time; nothing is written; another partner's borrower
is 404."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from compliance.models import ContactAttempt
from tests.api.conftest import staff_client
from tests.api.test_cases import assert_problem, phone, shanghai, today
from tests.factories import BorrowerFactory, make_loan

pytestmark = pytest.mark.django_db

URL = "/api/v1/contact-checks/"


@pytest.fixture
def borrower(partner):
    return BorrowerFactory(partner=partner, external_ref="B-001")


@pytest.fixture
def point(borrower):
    return phone(borrower)


def ask(client, borrower, point, when=None, **extra):
    body = {"borrower_ref": borrower.external_ref, "channel": "call", "contact_point": point.pk, **extra}
    if when is not None:
        body["at"] = when.isoformat()
    return client.post(URL, body, format="json")


def tomorrow_at_8():
    return shanghai(today() + timedelta(days=1), 8)


def test_a_call_at_night_is_refused_with_its_reasons_and_when_it_may_happen(api, borrower, point):
    response = ask(api, borrower, point, shanghai(today(), 22, 30) + timedelta(days=1))
    assert response.status_code == 200, response.content
    decision = response.json()
    assert decision["allowed"] is False and decision["reasons"] == ["quiet_hours"]
    assert decision["citations"]["quiet_hours"]
    assert decision["next_allowed_at"] == (tomorrow_at_8() + timedelta(days=1)).isoformat()
    assert decision["profile"] == "cn" and decision["local_time"].endswith("22:30:00+08:00")
    assert not ContactAttempt.objects.exists()


def test_a_call_in_the_day_is_allowed(api, borrower, point):
    decision = ask(api, borrower, point, tomorrow_at_8() + timedelta(hours=2)).json()
    assert decision["allowed"] is True and decision["reasons"] == [] and decision["citations"] == {}


def test_the_time_defaults_to_now_and_the_borrower_may_be_named_by_id(api, borrower, point):
    body = {"borrower": borrower.pk, "channel": "call", "contact_point": point.pk}
    response = api.post(URL, body, format="json")
    assert response.status_code == 200, response.content
    local = datetime.fromisoformat(response.json()["local_time"])
    assert abs(local - timezone.now()) < timedelta(minutes=1) and local.utcoffset() == timedelta(hours=8)


def test_missing_data_fails_closed_with_no_next_time(api, partner):
    borrower = BorrowerFactory(partner=partner, external_ref="B-NOZONE", time_zone="")
    decision = ask(api, borrower, phone(borrower), tomorrow_at_8()).json()
    assert decision["allowed"] is False and "missing_timezone" in decision["reasons"]
    assert decision["next_allowed_at"] is None


def test_a_letter_needs_no_contact_point_and_ignores_quiet_hours(api, borrower):
    body = {"borrower_ref": "B-001", "channel": "letter", "at": shanghai(today(), 23).isoformat()}
    assert api.post(URL, body, format="json").json()["allowed"] is True


def test_another_partners_borrower_is_404(api, other_partner):
    theirs = BorrowerFactory(partner=other_partner, external_ref="B-RIVAL")
    point = phone(theirs)
    assert_problem(ask(api, theirs, point, tomorrow_at_8()), 404, "not-found")
    body = {"borrower": theirs.pk, "channel": "call", "contact_point": point.pk}
    assert_problem(api.post(URL, body, format="json"), 404)


def test_the_loan_it_is_about(api, partner, borrower, point):
    loan = make_loan(borrower=borrower)
    for extra in ({"loan": loan.pk}, {"loan_ref": loan.external_ref}):
        assert ask(api, borrower, point, tomorrow_at_8(), **extra).status_code == 200
    stranger_loan = make_loan(borrower=BorrowerFactory(partner=partner))
    problem = assert_problem(ask(api, borrower, point, tomorrow_at_8(), loan=stranger_loan.pk), 422)
    assert "loan" in problem["errors"]
    problem = assert_problem(ask(api, borrower, point, tomorrow_at_8(), purpose="legal"), 422)
    assert "loan" in problem["errors"]


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"channel": "call"}, 400, "non_field_errors"),
        ({"borrower": 1, "borrower_ref": "B-001", "channel": "call"}, 400, "non_field_errors"),
        ({"borrower_ref": "B-001", "channel": "carrier pigeon"}, 400, "channel"),
        ({"borrower_ref": "B-001", "channel": "call", "at": "2026-03-01T22:30:00"}, 400, "at"),
        ({"borrower_ref": "B-001", "channel": "call", "at": "9999-12-31T23:59:59+14:00"}, 400, "at"),
        ({"borrower_ref": "B-001", "channel": "call", "at": "0001-01-01T00:00:00-12:00"}, 400, "at"),
        ({"borrower_ref": "B-001", "channel": "call", "purpose": "threats"}, 400, "purpose"),
        ({"borrower_ref": "B-001", "channel": "call", "contact_point": "x"}, 400, "contact_point"),
        ({"borrower_ref": "B-001", "channel": "call", "dial": True}, 400, "dial"),
        ({"borrower_ref": "B-001", "channel": "call"}, 422, "contact_point"),
        ({"borrower_ref": "B-001", "channel": "email", "contact_point": "PHONE"}, 422, "contact_point"),
        ({"borrower_ref": "B-001", "channel": "call", "contact_point": 999999}, 422, "contact_point"),
    ],
)
def test_bad_questions_are_4xx(api, borrower, point, body, status, field):
    if body.get("contact_point") == "PHONE":
        body = {**body, "contact_point": point.pk}
    problem = assert_problem(api.post(URL, body, format="json"), status)
    assert field in problem["errors"], problem


def test_who_may_ask(partner, client_for, borrower, point):
    assert_problem(APIClient(HTTP_ACCEPT_LANGUAGE="en").post(URL, {}, format="json"), 401)
    assert_problem(ask(client_for(partner, scopes=["payments:write"]), borrower, point), 403)
    assert ask(client_for(partner, scopes=["cases:read"]), borrower, point).status_code == 200
    for group in ("collector", "supervisor", "compliance_officer"):
        response = staff_client(group).post(
            URL, {"borrower": borrower.pk, "channel": "letter"}, format="json"
        )
        assert response.status_code == 200, (group, response.content)
    assert_problem(
        staff_client(None).post(URL, {"borrower": borrower.pk, "channel": "letter"}, format="json"), 403
    )
    assert_problem(client_for(partner).get(URL), 405)


def test_a_reference_two_partners_share_is_409_for_staff(borrower, other_partner):
    BorrowerFactory(partner=other_partner, external_ref=borrower.external_ref)
    problem = assert_problem(
        staff_client("collector").post(URL, {"borrower_ref": "B-001", "channel": "letter"}, format="json"),
        409,
        "ambiguous-reference",
    )
    assert problem["detail"] == "Address the record by its id."
