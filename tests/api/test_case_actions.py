"""Work on a case through the API: contacts (the contact rules refuse first, with their reason codes,
and nothing is written), promises to pay, notices; who may do which; bad input is 4xx, never 500."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from compliance.models import ContactAttempt
from debt_collections import channels, services
from debt_collections.models import CaseContact, CaseHold, Notice, PromiseToPay
from debt_collections.scan import scan_run
from tests.api.conftest import idem, staff_client
from tests.api.test_cases import assert_problem, case_of, join_team, loan_late, phone, shanghai, today
from tests.factories import BorrowerFactory

pytestmark = pytest.mark.django_db


def yesterday():
    return today() - timedelta(days=1)


def zone_where_it_is(hours: range) -> str:
    """A fixed-offset time zone whose local hour now is in ``hours`` (so a test about "now" is about
    day or night whenever it runs)."""
    now = timezone.now()
    for offset in range(-12, 15):
        if (now + timedelta(hours=offset)).hour in hours:
            return f"Etc/GMT{-offset:+d}" if offset else "Etc/GMT"
    raise AssertionError("no zone")  # pragma: no cover


@pytest.fixture
def case(partner):
    """A case in follow-up calls, opened three days ago (the contacts below happened yesterday)."""
    loan = loan_late(partner, 13)
    scan_run(as_of=today() - timedelta(days=3))
    case = case_of(loan)
    phone(case.loan.borrower)
    return case


@pytest.fixture
def point(case):
    return case.loan.borrower.contact_points.get(kind="phone")


def url(case, what: str) -> str:
    return f"/api/v1/cases/{case.pk}/{what}/"


def call(point, **extra) -> dict:
    """A right-party call yesterday at 10:00 in Shanghai."""
    return {
        "channel": "call", "outcome": "right_party", "contact_point": point.pk,
        "occurred_at": shanghai(yesterday(), 10).isoformat(), **extra,
    }  # fmt: skip


def nothing_written(case):
    assert not CaseContact.objects.filter(case=case).exists()
    assert not ContactAttempt.objects.filter(borrower=case.loan.borrower).exists()
    assert not PromiseToPay.objects.filter(case=case).exists()


# --- contacts --------------------------------------------------------------------------------------


def test_a_call_with_a_promise_is_logged_and_the_promise_recorded(api, case, point):
    plan = [
        {"due_date": (today() + timedelta(days=5)).isoformat(), "amount": "500.00"},
        {"due_date": (today() + timedelta(days=20)).isoformat(), "amount": "566.19"},
    ]
    body = call(point, outcome="promise_to_pay", notes="Will pay in two parts.", promise_instalments=plan)
    response = api.post(url(case, "contacts"), body, format="json", **idem())
    assert response.status_code == 201, response.content
    contact = response.json()
    assert contact["outcome"] == "promise_to_pay" and contact["channel"] == "call"
    assert contact["contact_point"] == point.pk and contact["created_by"] == "partner:acme"
    assert contact["decision"]["allowed"] is True and contact["decision"]["profile"] == "cn"
    promise = PromiseToPay.objects.get(case=case)
    assert str(promise.amount) == "1066.19" and promise.instalments.count() == 2
    listed = api.get(url(case, "contacts")).json()["results"]
    assert [c["id"] for c in listed] == [contact["id"]]
    assert api.get(url(case, "promises")).json()["results"][0]["amount"] == "1066.19"


def test_a_call_in_quiet_hours_is_422_with_the_reason_codes_and_nothing_is_written(api, case, point):
    body = call(point, occurred_at=shanghai(yesterday(), 22, 30).isoformat())
    problem = assert_problem(
        api.post(url(case, "contacts"), body, format="json", **idem()), 422, "contact-denied"
    )
    assert "quiet_hours" in problem["reasons"] and problem["citations"]["quiet_hours"]
    assert problem["next_allowed_at"].startswith(today().isoformat() + "T08:00:00")
    assert "quiet_hours" in problem["detail"]
    nothing_written(case)


def test_a_dispute_puts_the_case_on_hold(api, case, point):
    collector = staff_client("collector")
    join_team(collector.user, case)
    response = collector.post(url(case, "contacts"), call(point, outcome="dispute"), format="json", **idem())
    assert response.status_code == 201, response.content
    assert CaseHold.objects.get(case=case).reason == "dispute"
    assert [h["reason"] for h in api.get(f"/api/v1/cases/{case.pk}/").json()["holds"]] == ["dispute"]


def test_the_outcome_sets_the_next_step(api, case, point):
    borrower_in(case, zone_where_it_is(range(11, 17)))  # logged now, in the borrower's daytime
    now = call(point)
    del now["occurred_at"]
    callback = (today() + timedelta(days=4)).isoformat()
    body = {**now, "outcome": "callback_requested", "callback_on": callback}
    assert api.post(url(case, "contacts"), body, format="json", **idem()).status_code == 201
    assert api.get(f"/api/v1/cases/{case.pk}/").json()["next_action_date"] == callback
    hardship = api.post(url(case, "contacts"), {**now, "outcome": "hardship"}, format="json", **idem())
    assert hardship.status_code == 201, hardship.content
    assert api.get(f"/api/v1/cases/{case.pk}/").json()["stage"] == "restructuring"
    wrong = api.post(url(case, "contacts"), {**now, "outcome": "wrong_number"}, format="json", **idem())
    assert wrong.status_code == 201, wrong.content
    point.refresh_from_db()
    assert point.is_valid is False


def test_a_contact_dated_before_the_case_opened_is_422(api, case, point):
    before = shanghai(case.opened_on - timedelta(days=1), 10).isoformat()
    body = call(point, outcome="hardship", occurred_at=before)
    problem = assert_problem(api.post(url(case, "contacts"), body, format="json", **idem()), 422)
    assert "occurred_at" in problem["errors"]
    nothing_written(case)


def test_the_same_idempotency_key_logs_one_contact(api, case, point):
    key = idem()
    first = api.post(url(case, "contacts"), call(point), format="json", **key)
    again = api.post(url(case, "contacts"), call(point), format="json", **key)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again["Idempotent-Replayed"] == "true"
    assert CaseContact.objects.filter(case=case).count() == 1
    other = api.post(url(case, "contacts"), call(point, notes="changed"), format="json", **key)
    assert_problem(other, 422, "idempotency-key-reused")
    assert_problem(
        api.post(url(case, "contacts"), call(point), format="json"), 400, "idempotency-key-required"
    )


def test_another_borrowers_contact_point_is_refused_and_nothing_is_written(api, partner, case):
    stranger = phone(BorrowerFactory(partner=partner), "13900000000")
    problem = assert_problem(api.post(url(case, "contacts"), call(stranger), format="json", **idem()), 422)
    assert "contact_point" in problem["errors"]
    nothing_written(case)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"channel": "visit"}, "channel"),
        ({"channel": "pigeon"}, "channel"),
        ({"outcome": "maybe"}, "outcome"),
        ({"occurred_at": "2026-03-01T10:00:00"}, "occurred_at"),
        ({"occurred_at": "yesterday"}, "occurred_at"),
        ({"occurred_at": "1990-03-01T10:00:00+08:00"}, "occurred_at"),
        ({"contact_point": "one"}, "contact_point"),
        ({"contact_point": 0}, "contact_point"),
        ({"notes": "x" * 5001}, "notes"),
        ({"mood": "grumpy"}, "mood"),
        ({"outcome": "promise_to_pay", "promise_instalments": [{"due_date": "2030-01-01", "amount": 9}]},
         "promise_instalments.0.amount"),
        ({"outcome": "promise_to_pay", "promise_instalments": [{"due_date": "2030-01-01", "amount": "-5"}]},
         "promise_instalments.0.amount"),
    ],
)  # fmt: skip
def test_bad_contact_input_is_400_and_nothing_is_written(api, case, point, change, field):
    problem = assert_problem(
        api.post(url(case, "contacts"), call(point, **change), format="json", **idem()), 400
    )
    assert field in problem["errors"], problem
    nothing_written(case)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"occurred_at": (timezone.now() + timedelta(hours=2)).isoformat()}, "occurred_at"),
        ({"outcome": "callback_requested"}, "callback_on"),
        ({"outcome": "promise_to_pay"}, "promise_instalments"),
        ({"callback_on": "2030-01-01"}, "callback_on"),
    ],
)
def test_a_contact_the_service_refuses_is_422_naming_the_field(api, case, point, change, field):
    problem = assert_problem(
        api.post(url(case, "contacts"), call(point, **change), format="json", **idem()), 422
    )
    assert field in problem["errors"], problem
    nothing_written(case)


def test_malformed_json_is_400(api, case):
    response = api.post(url(case, "contacts"), "{not json", content_type="application/json", **idem())
    assert_problem(response, 400, "malformed")
    nothing_written(case)


def test_another_partners_case_is_404_and_a_read_only_key_is_403(
    case, point, other_partner, client_for, partner
):
    rival = client_for(other_partner)
    assert_problem(rival.post(url(case, "contacts"), call(point), format="json", **idem()), 404)
    reader = client_for(partner, scopes=["cases:read"])
    problem = assert_problem(reader.post(url(case, "contacts"), call(point), format="json", **idem()), 403)
    assert "cases:write" in problem["detail"]
    assert reader.get(url(case, "contacts")).status_code == 200
    nothing_written(case)


@pytest.mark.parametrize(
    ("group", "on_team", "read", "write"),
    [
        ("collector", True, 200, 201),
        ("collector", False, 404, 404),
        ("supervisor", False, 200, 201),
        ("compliance_officer", False, 200, 403),
        (None, False, 403, 403),
    ],
)
def test_staff_roles_on_contacts(case, point, group, on_team, read, write):
    client = staff_client(group)
    if on_team:
        join_team(client.user, case)
    assert client.get(url(case, "contacts")).status_code == read
    response = client.post(url(case, "contacts"), call(point), format="json", **idem())
    assert response.status_code == write, response.content
    if write == 201:
        assert response.json()["created_by"] == client.user.username


# --- promises --------------------------------------------------------------------------------------


def test_a_promise_of_one_amount_then_a_second_is_refused(api, case):
    body = {"amount": "1066.19", "promised_date": (today() + timedelta(days=7)).isoformat()}
    response = api.post(url(case, "promises"), body, format="json", **idem())
    assert response.status_code == 201, response.content
    promise = response.json()
    assert promise["amount"] == "1066.19" and promise["status"] == "open" and len(promise["instalments"]) == 1
    problem = assert_problem(
        api.post(url(case, "promises"), body, format="json", **idem()), 422, "validation"
    )
    assert "case" in problem["errors"]
    assert PromiseToPay.objects.filter(case=case).count() == 1


def test_a_promise_plan(api, case):
    plan = [{"due_date": (today() + timedelta(days=d)).isoformat(), "amount": "100.00"} for d in (3, 10, 17)]
    response = api.post(url(case, "promises"), {"instalments": plan}, format="json", **idem())
    assert response.status_code == 201, response.content
    assert [i["number"] for i in response.json()["instalments"]] == [1, 2, 3]
    assert response.json()["amount"] == "300.00"


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({}, 400, "non_field_errors"),
        ({"amount": "100.00"}, 400, "promised_date"),
        ({"amount": 100, "promised_date": "2030-01-01"}, 400, "amount"),
        ({"amount": "0.00", "promised_date": "2030-01-01"}, 400, "amount"),
        ({"amount": "1e400", "promised_date": "2030-01-01"}, 400, "amount"),
        ({"amount": "NaN", "promised_date": "2030-01-01"}, 400, "amount"),
        ({"amount": "100.00", "promised_date": "2030-02-30"}, 400, "promised_date"),
        ({"instalments": [], "amount": "1.00", "promised_date": "2030-01-01"}, 400, "non_field_errors"),
        ({"instalments": "monthly"}, 400, "instalments"),
        ({"amount": "100.00", "promised_date": "2020-01-01"}, 422, "promised_date"),
        ({"amount": "100.00", "promised_date": "2099-01-01"}, 422, "promised_date"),
        ({"instalments": []}, 422, "instalments"),
    ],
)
def test_bad_promises_are_refused_and_nothing_is_written(api, case, body, status, field):
    problem = assert_problem(api.post(url(case, "promises"), body, format="json", **idem()), status)
    assert any(name.startswith(field) for name in problem["errors"]), problem
    assert not PromiseToPay.objects.filter(case=case).exists()


# --- notices ---------------------------------------------------------------------------------------


@pytest.fixture
def sms_outbox():
    channels.outbox.clear()
    yield channels.outbox
    channels.outbox.clear()


def borrower_in(case, zone: str):
    borrower = case.loan.borrower
    borrower.time_zone = zone
    borrower.save()


def test_a_notice_sent_by_sms_in_the_borrowers_daytime(api, case, sms_outbox):
    borrower_in(case, zone_where_it_is(range(11, 17)))
    response = api.post(url(case, "notices"), {"channel": "sms"}, format="json", **idem())
    assert response.status_code == 201, response.content
    notice = response.json()
    assert notice["status"] == "sent" and notice["stage"] == "follow_up_call" and notice["body"]
    assert notice["reason_codes"] == [] and notice["template_version"] == 1
    assert len(sms_outbox) == 1 and sms_outbox[0].to == "13800138000"
    listed = api.get(url(case, "notices")).json()["results"]
    # The one the scan queued when the case entered its stage, and ours.
    assert [(n["status"], n["created_by"]) for n in listed] == [("queued", None), ("sent", "partner:acme")]
    assert listed[1]["id"] == notice["id"]


def test_a_notice_at_the_borrowers_night_is_refused_with_the_codes_and_nothing_is_sent(api, case, sms_outbox):
    borrower_in(case, zone_where_it_is(range(0, 6)))
    problem = assert_problem(
        api.post(url(case, "notices"), {"channel": "sms"}, format="json", **idem()), 422, "contact-denied"
    )
    assert "quiet_hours" in problem["reasons"] and problem["next_allowed_at"]
    assert not Notice.objects.filter(case=case, created_by__isnull=False).exists() and sms_outbox == []


def test_a_notice_without_a_contact_point_or_on_hold_is_422(api, case, sms_outbox):
    problem = assert_problem(
        api.post(url(case, "notices"), {"channel": "email"}, format="json", **idem()), 422
    )
    assert "channel" in problem["errors"]
    services.case_hold_add(
        case=case, reason="dispute", note="Disputes the debt.", actor=staff_client("supervisor").user
    )
    problem = assert_problem(api.post(url(case, "notices"), {"channel": "sms"}, format="json", **idem()), 422)
    assert "case" in problem["errors"]
    assert not Notice.objects.filter(case=case, created_by__isnull=False).exists() and sms_outbox == []


@pytest.mark.parametrize("body", [{"channel": "fax"}, {}, {"channel": "sms", "to": "me"}, [], "sms"])
def test_bad_notice_input_is_400(api, case, body):
    assert_problem(api.post(url(case, "notices"), body, format="json", **idem()), 400)
    assert not Notice.objects.filter(case=case, created_by__isnull=False).exists()


def test_who_may_send_notices(case, client_for, partner):
    reader = client_for(partner, scopes=["cases:read"])
    assert_problem(reader.post(url(case, "notices"), {"channel": "sms"}, format="json", **idem()), 403)
    officer = staff_client("compliance_officer")
    assert officer.get(url(case, "notices")).status_code == 200
    assert_problem(officer.post(url(case, "notices"), {"channel": "sms"}, format="json", **idem()), 403)
    assert not Notice.objects.filter(case=case, created_by__isnull=False).exists()


def test_a_case_action_on_an_unknown_case_is_404(api):
    assert_problem(api.post("/api/v1/cases/999999/contacts/", {}, format="json", **idem()), 404)
    assert_problem(api.get("/api/v1/cases/999999/promises/"), 404)
    assert_problem(api.post(f"/api/v1/cases/{uuid.uuid4()}/notices/", {}, format="json", **idem()), 404)
