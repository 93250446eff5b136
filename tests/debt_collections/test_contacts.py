"""Logging contacts on a case: the contact rules refuse first (nothing written), an override lets one
refused call through, field visits need two staff and a recording, and each coded outcome sets the
case's next step."""

from __future__ import annotations

import hashlib
from datetime import date, datetime, timedelta
from decimal import Decimal as D
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from compliance.contact import ContactDenied, contact_override_grant
from compliance.models import ContactAttempt, ContactOverride, ScreeningFlag
from debt_collections.contacts import contact_log
from debt_collections.models import Case, CaseContact, CaseHold, OutboxEvent, PromiseToPay, StageTransition
from debt_collections.scan import scan_run
from loans.models import ContactPoint
from tests.debt_collections.conftest import make_user
from tests.factories import BorrowerFactory, make_loan

pytestmark = pytest.mark.django_db

FEB1 = date(2025, 2, 1)  # make_loan's first due date
SHANGHAI = ZoneInfo("Asia/Shanghai")
NEW_YORK = ZoneInfo("America/New_York")


def days(n: int) -> date:
    return FEB1 + timedelta(days=n)


def at(day: date, hour: int, minute: int = 0, tz=SHANGHAI) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz)


def make_case(*, region="CN", tz="Asia/Shanghai", as_of: date | None = None) -> Case:
    as_of = as_of or days(9)
    loan = make_loan(borrower=BorrowerFactory(region=region, time_zone=tz))
    scan_run(as_of=as_of)
    return Case.objects.get(loan=loan, status="open")


def phone(case, value="13800000000", **extra) -> ContactPoint:
    return ContactPoint.objects.create(borrower=case.loan.borrower, kind="phone", value=value, **extra)


@pytest.fixture
def case(db):
    return make_case()


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


def call(case, actor, outcome="right_party", *, when=None, point=None, **kwargs):
    """A call on day 9 (the case's first day in follow-up), by default at 10:00 Shanghai time."""
    return contact_log(
        case=case,
        channel="call",
        outcome=outcome,
        actor=actor,
        contact_point=point or case.loan.borrower.contact_points.filter(kind="phone").first() or phone(case),
        occurred_at=when or at(days(9), 10),
        as_of=kwargs.pop("as_of", days(9)),
        **kwargs,
    )


def nothing_written(case, attempts_before=0):
    assert not CaseContact.objects.filter(case=case).exists()
    assert ContactAttempt.objects.filter(borrower=case.loan.borrower).count() == attempts_before


# --- the contact rules come first ----------------------------------------------------------------


def test_a_call_at_half_past_ten_at_night_in_shanghai_is_refused_and_nothing_is_written(case, collector):
    with pytest.raises(ContactDenied) as excinfo:
        call(case, collector, "no_answer", when=at(days(9), 22, 30))
    assert "quiet_hours" in excinfo.value.decision.reasons
    assert "contact" in excinfo.value.message_dict
    nothing_written(case)
    case.refresh_from_db()
    assert case.next_action_date == days(9)  # unchanged: the refused call set no "try tomorrow"


def test_an_allowed_call_is_logged_with_what_the_rules_count(case, collector):
    contact = call(case, collector, "no_answer", notes="Rang out.")
    attempt = contact.attempt
    assert (attempt.channel, attempt.direction, attempt.loan_id, attempt.actor_id) == (
        "call", "outbound", case.loan_id, collector.pk,
    )  # fmt: skip
    assert (attempt.connected, attempt.answered, attempt.right_party) == (True, False, False)
    assert attempt.decision["allowed"] is True and attempt.outcome == "no_answer"
    assert contact.created_by == collector and contact.notes == "Rang out."


@pytest.mark.parametrize(
    ("outcome", "flags"),
    [
        ("busy", (False, False, False)),
        ("wrong_number", (True, True, False)),
        ("third_party", (True, True, False)),
        ("refused_to_pay", (True, True, True)),
    ],
)
def test_the_outcome_decides_connected_answered_and_right_party(case, collector, outcome, flags):
    attempt = call(case, collector, outcome).attempt
    assert (attempt.connected, attempt.answered, attempt.right_party) == flags


def test_the_fourth_answered_call_of_a_day_is_refused_in_china(case, collector):
    for hour in (9, 10, 11):
        call(case, collector, "refused_to_pay", when=at(days(9), hour))
    with pytest.raises(ContactDenied) as excinfo:
        call(case, collector, "right_party", when=at(days(9), 15))
    assert "daily_connected_cap" in excinfo.value.decision.reasons
    nothing_written_after = CaseContact.objects.filter(case=case).count()
    assert nothing_written_after == 3
    # The next local day it is allowed again.
    call(case, collector, "right_party", when=at(days(10), 9), as_of=days(10))


def test_the_eighth_call_in_seven_days_is_refused_for_a_us_borrower(collector):
    case = make_case(region="US-NY", tz="America/New_York")
    point = phone(case, "+12125550100")
    for n in range(7):  # one call a day that rang out, day 9 to day 15, at 10:00 New York time
        call(
            case,
            collector,
            "no_answer",
            point=point,
            when=at(days(9 + n), 10, tz=NEW_YORK),
            as_of=days(9 + n),
        )
    with pytest.raises(ContactDenied) as excinfo:
        call(case, collector, "no_answer", point=point, when=at(days(15), 16, tz=NEW_YORK), as_of=days(15))
    assert "seven_in_seven" in excinfo.value.decision.reasons
    assert CaseContact.objects.filter(case=case).count() == 7
    # Day 16: the first call (day 9) has left the seven-day window.
    call(case, collector, "no_answer", point=point, when=at(days(16), 10, tz=NEW_YORK), as_of=days(16))


def test_a_supervisors_override_lets_one_refused_call_through_once(case, collector, supervisor):
    point = phone(case)
    late = at(days(9), 22, 30)
    override = contact_override_grant(
        borrower=case.loan.borrower, channel="call", reasons=["quiet_hours"],
        reason="The borrower asked to be called after work.", actor=supervisor,
    )  # fmt: skip
    # Granted that evening (the grant stamps the wall clock; the test's day is in the past).
    ContactOverride.objects.filter(pk=override.pk).update(
        granted_at=late - timedelta(minutes=5), valid_until=late + timedelta(hours=1)
    )
    contact = call(case, collector, "right_party", point=point, when=late)
    assert contact.attempt.override_id == override.pk
    override.refresh_from_db()
    assert override.used_at is not None
    with pytest.raises(ContactDenied) as excinfo:
        call(case, collector, "right_party", point=point, when=late + timedelta(minutes=10))
    assert "quiet_hours" in excinfo.value.decision.reasons
    assert CaseContact.objects.filter(case=case).count() == 1


def test_an_inbound_call_is_logged_even_in_quiet_hours(case, collector):
    contact = call(case, collector, "right_party", direction="inbound", when=at(days(9), 23))
    assert contact.attempt.direction == "inbound"


# --- field visits --------------------------------------------------------------------------------


def recording(content=b"audio and video"):
    return ContentFile(content, name="visit.mp4")


def visit(case, actor, **kwargs):
    return contact_log(
        case=case, channel="visit", outcome="right_party", actor=actor, occurred_at=at(days(9), 14),
        as_of=days(9), **kwargs,
    )  # fmt: skip


def test_a_field_visit_needs_a_second_member_of_staff_and_a_recording(case, collector, media):
    colleague = make_user("colleague", "collector")
    with pytest.raises(ValidationError) as excinfo:
        visit(case, collector, recording=recording())
    assert "second_staff" in excinfo.value.message_dict
    with pytest.raises(ValidationError) as excinfo:
        visit(case, collector, second_staff=collector, recording=recording())
    assert "second_staff" in excinfo.value.message_dict
    with pytest.raises(ValidationError) as excinfo:
        visit(
            case,
            collector,
            second_staff=make_user("gone", "collector", is_active=False),
            recording=recording(),
        )
    assert "second_staff" in excinfo.value.message_dict
    with pytest.raises(ValidationError) as excinfo:
        visit(case, collector, second_staff=colleague)
    assert "recording" in excinfo.value.message_dict
    with pytest.raises(ValidationError) as excinfo:
        visit(case, collector, second_staff=colleague, recording=recording(b""))
    assert "recording" in excinfo.value.message_dict
    nothing_written(case)

    contact = visit(case, collector, second_staff=colleague, recording=recording())
    assert contact.second_staff == colleague
    assert contact.recording_sha256 == hashlib.sha256(b"audio and video").hexdigest()
    with contact.recording.open("rb") as stored:
        assert stored.read() == b"audio and video"
    assert contact.attempt.channel == "visit" and contact.attempt.decision["allowed"] is True


def test_only_a_visit_takes_a_second_member_of_staff(case, collector):
    with pytest.raises(ValidationError) as excinfo:
        call(case, collector, second_staff=make_user("colleague", "collector"))
    assert "second_staff" in excinfo.value.message_dict


# --- outcomes and their next step ----------------------------------------------------------------


def test_a_dispute_puts_the_case_on_a_dispute_hold(case, collector):
    contact = call(case, collector, "dispute", notes="Says the fee was never agreed.")
    hold = CaseHold.objects.get(case=case)
    assert (hold.reason, hold.set_by, hold.released_at) == ("dispute", collector, None)
    assert str(contact.pk) in hold.note
    # The hold freezes escalation: at 32 DPD the case stays in follow-up.
    scan_run(as_of=days(32))
    case.refresh_from_db()
    assert case.stage == "follow_up_call"


def test_hardship_routes_the_case_to_the_restructuring_desk(case, collector):
    assert case.stage == "follow_up_call"
    call(case, collector, "hardship", notes="Lost her job in January.")
    case.refresh_from_db()
    assert case.stage == "restructuring" and case.stage_entered_on == days(9)
    transition = StageTransition.objects.filter(case=case).latest("id")
    assert (transition.from_stage, transition.to_stage) == ("follow_up_call", "restructuring")
    assert (transition.reason, transition.actor) == ("hardship reported", collector)
    assert OutboxEvent.objects.filter(event_type="case.stage_changed", subject_id=case.pk).exists()
    assert case.history.latest("history_id").history_change_reason == "hardship reported"


def test_hardship_on_a_case_already_at_the_desk_only_brings_the_next_action_forward(collector):
    case = make_case(as_of=days(62))
    assert case.stage == "restructuring"
    Case.objects.filter(pk=case.pk).update(next_action_date=days(70))
    transitions = StageTransition.objects.filter(case=case).count()
    call(case, collector, "hardship", when=at(days(63), 10), as_of=days(63))
    case.refresh_from_db()
    assert case.stage == "restructuring" and case.next_action_date == days(63)
    assert StageTransition.objects.filter(case=case).count() == transitions


def test_a_wrong_number_is_marked_invalid_and_not_called_again(case, collector):
    point = phone(case)
    call(case, collector, "wrong_number", point=point)
    point.refresh_from_db()
    assert point.is_valid is False
    assert point.history.latest("history_id").history_change_reason.startswith("wrong number")
    with pytest.raises(ContactDenied) as excinfo:
        call(case, collector, "no_answer", point=point, when=at(days(9), 11))
    assert "invalid_contact_point" in excinfo.value.decision.reasons


def test_a_callback_request_sets_the_next_action_date(case, collector):
    contact = call(case, collector, "callback_requested", callback_on=days(12))
    case.refresh_from_db()
    assert contact.callback_on == days(12) and case.next_action_date == days(12)
    for bad in (None, days(8)):
        with pytest.raises(ValidationError) as excinfo:
            call(case, collector, "callback_requested", callback_on=bad, when=at(days(9), 11))
        assert "callback_on" in excinfo.value.message_dict
    assert CaseContact.objects.filter(case=case).count() == 1


def test_a_promise_to_pay_is_recorded_with_its_instalments(case, collector):
    plan = [(days(12), "300.00"), (days(20), "700")]
    contact = call(case, collector, "promise_to_pay", promise_instalments=plan)
    promise = PromiseToPay.objects.get(case=case)
    assert (promise.amount, promise.promised_date, promise.made_on, promise.status) == (
        D("1000.00"), days(20), days(9), "open",
    )  # fmt: skip
    assert [(i.number, i.due_date, i.amount) for i in promise.instalments.all()] == [
        (1, days(12), D("300.00")),
        (2, days(20), D("700.00")),
    ]
    assert contact.outcome == "promise_to_pay"


@pytest.mark.parametrize(
    "plan",
    [None, [], [(days(20), "300"), (days(12), "700")], [(days(12), "0")], [(days(5), "100")]],
    ids=["missing", "empty", "out-of-order", "zero", "past"],
)
def test_a_bad_promise_writes_nothing_at_all(case, collector, plan):
    with pytest.raises(ValidationError) as excinfo:
        call(case, collector, "promise_to_pay", promise_instalments=plan)
    assert "promise_instalments" in excinfo.value.message_dict
    nothing_written(case)
    assert not PromiseToPay.objects.filter(case=case).exists()


def test_a_second_promise_while_one_is_open_is_refused_with_its_contact(case, collector):
    call(case, collector, "promise_to_pay", promise_instalments=[(days(12), "300")])
    with pytest.raises(ValidationError) as excinfo:
        call(case, collector, "promise_to_pay", promise_instalments=[(days(14), "300")], when=at(days(9), 11))
    assert "case" in excinfo.value.message_dict
    assert CaseContact.objects.filter(case=case).count() == 1
    assert ContactAttempt.objects.filter(borrower=case.loan.borrower).count() == 1


@pytest.mark.parametrize("outcome", ["no_answer", "busy"])
def test_no_answer_or_busy_tries_again_tomorrow(case, collector, outcome):
    call(case, collector, outcome)
    case.refresh_from_db()
    assert case.next_action_date == days(10)
    assert case.history.latest("history_id").history_user == collector


# --- notes, and input that is refused ------------------------------------------------------------


def test_a_threatening_note_is_kept_and_flagged_for_review(case, collector):
    contact = call(case, collector, "refused_to_pay", notes="告诉他再不还就爆通讯录")
    flag = ScreeningFlag.objects.get(source="case_contact", source_id=str(contact.pk))
    assert flag.reviewed_at is None and flag.matches
    assert contact.notes == "告诉他再不还就爆通讯录"
    calm = call(case, collector, "refused_to_pay", notes="Will call again on Friday.", when=at(days(9), 11))
    assert not ScreeningFlag.objects.filter(source="case_contact", source_id=str(calm.pk)).exists()


def test_bad_input_names_the_field_and_writes_nothing(case, collector):
    stranger = ContactPoint.objects.create(borrower=BorrowerFactory(), kind="phone", value="13900000000")
    point = phone(case)
    cases = [
        ({"channel": "pigeon"}, "channel"),
        ({"outcome": "maybe"}, "outcome"),
        ({"contact_point": stranger}, "contact_point"),
        ({"occurred_at": datetime(2025, 2, 10, 10, 0)}, "occurred_at"),  # naive
        ({"occurred_at": datetime.now(SHANGHAI) + timedelta(hours=1)}, "occurred_at"),
        ({"callback_on": days(12)}, "callback_on"),  # not a callback request
        ({"promise_instalments": [(days(12), "10")]}, "promise_instalments"),  # not a promise
    ]
    for overrides, field in cases:
        kwargs = {
            "case": case, "channel": "call", "outcome": "right_party", "actor": collector,
            "contact_point": point, "occurred_at": at(days(9), 10), "as_of": days(9), **overrides,
        }  # fmt: skip
        with pytest.raises(ValidationError) as excinfo:
            contact_log(**kwargs)
        assert field in excinfo.value.message_dict, overrides
    nothing_written(case)


def test_only_staff_with_the_right_may_log_and_only_on_open_cases(case, collector):
    with pytest.raises(PermissionDenied):
        call(case, make_user("nobody"))
    Case.objects.filter(pk=case.pk).update(status="closed", closed_on=days(9), close_reason="settled")
    with pytest.raises(ValidationError) as excinfo:
        call(case, collector)
    assert "case" in excinfo.value.message_dict
    nothing_written(case)


# --- the admin -----------------------------------------------------------------------------------


def test_the_admin_logs_a_contact_through_the_service_and_shows_a_refusals_reasons(client, case, media):
    staff = make_user("desk", "collector", is_staff=True)
    client.force_login(staff)
    point = phone(case)
    url = reverse("admin:debt_collections_casecontact_add")
    form = {
        "case": case.pk, "channel": "call", "direction": "outbound", "purpose": "collection",
        "contact_point": point.pk, "outcome": "callback_requested", "callback_on": str(days(12)),
        "notes": "Asked to be called on Thursday.",
    }  # fmt: skip
    refused = client.post(url, {**form, "occurred_at": "2025-02-10 22:30"})  # Asia/Shanghai
    assert refused.status_code == 200
    assert "quiet_hours" in " ".join(refused.context["adminform"].form.non_field_errors()), refused.context[
        "adminform"
    ].form.errors
    nothing_written(case)

    done = client.post(url, {**form, "occurred_at": "2025-02-10 10:30"})
    assert done.status_code == 302
    contact = CaseContact.objects.get(case=case)
    assert (contact.created_by, contact.outcome, contact.callback_on) == (
        staff,
        "callback_requested",
        days(12),
    )
    page = client.get(reverse("admin:debt_collections_casecontact_change", args=[contact.pk]))
    assert page.status_code == 200 and "Asked to be called on Thursday." in page.content.decode()
    assert client.get(reverse("admin:debt_collections_casecontact_changelist")).status_code == 200
    case_page = client.get(reverse("admin:debt_collections_case_change", args=[case.pk]))
    assert "Asked to be called on Thursday." in case_page.content.decode()


def test_the_admin_uploads_a_field_visits_recording(client, case, media):
    staff = make_user("desk", "collector", is_staff=True)
    colleague = make_user("colleague", "collector")
    client.force_login(staff)
    url = reverse("admin:debt_collections_casecontact_add")
    form = {
        "case": case.pk, "channel": "visit", "direction": "outbound", "purpose": "collection",
        "outcome": "right_party", "occurred_at": "2025-02-10 14:00", "second_staff": colleague.pk,
    }  # fmt: skip
    missing = client.post(url, form)
    assert "recording" in missing.context["adminform"].form.errors
    upload = SimpleUploadedFile("visit.mp4", b"the whole visit", content_type="video/mp4")
    done = client.post(url, {**form, "recording": upload})
    assert done.status_code == 302
    contact = CaseContact.objects.get(case=case)
    assert contact.recording_sha256 == hashlib.sha256(b"the whole visit").hexdigest()
