"""check_contact: every rule of every profile at its boundary minutes, in several time zones, with
DST; flags, opt-outs, third parties, visits, time-barred debt; fail-closed data; overrides."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied, ValidationError

from compliance import contact
from compliance.contact import ContactDenied, check_contact, contact_attempt_record
from compliance.models import AuditEvent, BorrowerFlag, ContactAttempt, ContactOverride
from loans.models import ContactPoint, Loan
from tests.factories import BorrowerFactory, make_loan

pytestmark = pytest.mark.django_db

ZONES = {
    "cn": "Asia/Shanghai",
    "us": "America/New_York",
    "us-west": "America/Los_Angeles",
    "uk": "Europe/London",
}
REGIONS = {"cn": "CN", "us": "US-NY", "us-west": "US-CA", "uk": "GB"}


def local(zone: str, *args) -> datetime:
    return datetime(*args, tzinfo=ZoneInfo(zone))


def make_borrower(profile="cn", **extra):
    borrower = BorrowerFactory(time_zone=ZONES[profile], region=REGIONS[profile], **extra)
    return borrower


def phone(borrower, value="13800000000", **extra) -> ContactPoint:
    return ContactPoint.objects.create(borrower=borrower, kind="phone", value=value, **extra)


def log_call(borrower, at, point=None, *, direction="outbound", connected=False, answered=False,
             right_party=False, consented=False, purpose="collection"):  # fmt: skip
    """A call already made (test setup writes the log directly)."""
    answered = answered or right_party
    return ContactAttempt.objects.create(
        borrower=borrower, contact_point=point, channel="call", direction=direction, at=at,
        connected=connected or answered, answered=answered, right_party=right_party,
        consented=consented, purpose=purpose,
    )  # fmt: skip


def decide(borrower, at, point=None, channel="call", **kwargs):
    if point is None and channel in ("call", "sms"):
        point = borrower.contact_points.filter(kind="phone", is_third_party=False).first() or phone(borrower)
    return check_contact(borrower=borrower, channel=channel, at=at, contact_point=point, **kwargs)


def user(name, group):
    u = get_user_model().objects.create_user(username=name, password="x-unused-x")
    u.groups.add(Group.objects.get(name=group))
    return u


# --- quiet hours ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("profile", "hour", "minute", "allowed"),
    [
        ("cn", 7, 59, False), ("cn", 8, 0, True), ("cn", 21, 59, True), ("cn", 22, 0, False),
        ("cn", 3, 0, False),
        ("us", 7, 59, False), ("us", 8, 0, True), ("us", 20, 59, True), ("us", 21, 0, False),
        ("us-west", 7, 59, False), ("us-west", 8, 0, True), ("us-west", 20, 59, True),
        ("us-west", 21, 0, False),
        ("uk", 7, 59, False), ("uk", 8, 0, True), ("uk", 20, 59, True), ("uk", 21, 0, False),
    ],
)  # fmt: skip
def test_quiet_hours_at_the_boundary_minutes_in_the_borrowers_time(profile, hour, minute, allowed):
    borrower = make_borrower(profile)
    decision = decide(borrower, local(ZONES[profile], 2026, 6, 10, hour, minute))
    assert decision.allowed is allowed
    assert decision.reasons == (() if allowed else ("quiet_hours",))
    if not allowed:
        expected = local(ZONES[profile], 2026, 6, 10 if hour < 8 else 11, 8, 0)
        assert decision.next_allowed_at == expected
        assert (
            "1006.6" in decision.details[0].citation
            or "45251" in decision.details[0].citation
            or "CONC" in (decision.details[0].citation)
        )


def test_the_same_utc_moment_is_allowed_or_not_by_the_borrowers_zone():
    moment = datetime(2026, 6, 10, 14, 30, tzinfo=UTC)  # 22:30 Shanghai, 10:30 New York, 15:30 London
    assert not decide(make_borrower("cn"), moment).allowed
    assert decide(make_borrower("us"), moment).allowed
    assert decide(make_borrower("uk"), moment).allowed


def test_letters_are_not_held_by_quiet_hours():
    borrower = make_borrower("cn")
    address = ContactPoint.objects.create(borrower=borrower, kind="address", value="北京市朝阳区1号")
    assert decide(borrower, local(ZONES["cn"], 2026, 6, 10, 23, 0), address, channel="letter").allowed


@pytest.mark.parametrize(
    ("at", "next_allowed"),
    [
        # Spring forward: 21:30 EST on Saturday; 08:00 on Sunday is EDT (UTC-4), 12:00 UTC.
        (datetime(2026, 3, 8, 2, 30, tzinfo=UTC), datetime(2026, 3, 8, 12, 0, tzinfo=UTC)),
        # Fall back: 22:00 EDT on Saturday; 08:00 on Sunday is EST (UTC-5), 13:00 UTC.
        (datetime(2026, 11, 1, 2, 0, tzinfo=UTC), datetime(2026, 11, 1, 13, 0, tzinfo=UTC)),
    ],
)
def test_next_allowed_time_follows_us_daylight_saving(at, next_allowed):
    decision = decide(make_borrower("us"), at)
    assert decision.reasons == ("quiet_hours",)
    assert decision.next_allowed_at == next_allowed


# --- daily caps (China) --------------------------------------------------------------------------


def test_china_third_answered_call_is_the_last_of_the_day():
    borrower = make_borrower("cn")
    own = phone(borrower)
    tz = ZONES["cn"]
    log_call(borrower, local(tz, 2026, 6, 9, 23, 30), own, answered=True)  # yesterday: does not count
    for hour in (9, 10):
        log_call(borrower, local(tz, 2026, 6, 10, hour, 0), own, answered=True)
    assert decide(borrower, local(tz, 2026, 6, 10, 11, 0), own).allowed  # the 3rd
    log_call(borrower, local(tz, 2026, 6, 10, 11, 0), own, answered=True)
    decision = decide(borrower, local(tz, 2026, 6, 10, 12, 0), own)
    assert decision.reasons == ("daily_connected_cap",)
    # Tomorrow at midnight the count resets, but quiet hours run to 08:00.
    assert decision.next_allowed_at == local(tz, 2026, 6, 11, 8, 0)


def test_china_six_unanswered_attempts_per_contact_method():
    borrower = make_borrower("cn")
    mobile, home = phone(borrower, "13800000001"), phone(borrower, "01088888888", label="home")
    tz = ZONES["cn"]
    for minute in range(5):
        log_call(borrower, local(tz, 2026, 6, 10, 9, minute * 10), mobile)
    assert decide(borrower, local(tz, 2026, 6, 10, 10, 0), mobile).allowed  # the 6th
    log_call(borrower, local(tz, 2026, 6, 10, 10, 0), mobile)
    assert decide(borrower, local(tz, 2026, 6, 10, 10, 30), mobile).reasons == ("daily_attempt_cap",)
    assert decide(borrower, local(tz, 2026, 6, 10, 10, 30), home).allowed


def test_a_dst_day_is_counted_by_local_dates():
    """US 7-in-7 on the spring-forward day: calls at 00:30 EST and 23:30 EDT are both on 8 March."""
    borrower = make_borrower("us")
    own = phone(borrower, "+12125550100")
    tz = ZONES["us"]
    dates = [date(2026, 3, 2) + timedelta(days=k) for k in range(5)]
    for day in dates:
        log_call(borrower, local(tz, day.year, day.month, day.day, 10, 0), own, connected=True)
    log_call(borrower, local(tz, 2026, 3, 8, 0, 30), own, connected=True)
    log_call(borrower, local(tz, 2026, 3, 8, 23, 30), own, connected=True)  # 7 in 2-8 March
    decision = decide(borrower, local(tz, 2026, 3, 8, 23, 45), own)
    assert "seven_in_seven" in decision.reasons
    # The window 3-9 March holds 6: allowed on 9 March from 08:00 EDT.
    assert decision.next_allowed_at == local(tz, 2026, 3, 9, 8, 0)


# --- Reg F (US) ----------------------------------------------------------------------------------


def test_us_seventh_call_in_seven_days_is_allowed_the_eighth_is_not():
    borrower = make_borrower("us")
    own = phone(borrower, "+12125550101")
    tz = ZONES["us"]
    for k in range(6):  # 4-9 June, connected
        log_call(borrower, local(tz, 2026, 6, 4 + k, 10, 0), own, connected=True)
    log_call(borrower, local(tz, 2026, 6, 9, 11, 0), own)  # did not connect: outside the count
    log_call(borrower, local(tz, 2026, 6, 9, 12, 0), own, connected=True, consented=True)  # consent: outside
    assert decide(borrower, local(tz, 2026, 6, 10, 10, 0), own).allowed  # the 7th
    log_call(borrower, local(tz, 2026, 6, 10, 10, 0), own, connected=True)
    decision = decide(borrower, local(tz, 2026, 6, 10, 15, 0), own)
    assert decision.reasons == ("seven_in_seven",)
    # 4 June leaves the window on 11 June (5-11 June holds 6).
    assert decision.next_allowed_at == local(tz, 2026, 6, 11, 8, 0)


@pytest.mark.parametrize(("day", "allowed"), [(6, False), (7, False), (8, True)])
def test_us_no_call_for_seven_days_after_a_conversation_that_day_counting_as_day_one(day, allowed):
    borrower = make_borrower("us")
    own = phone(borrower, "+12125550102")
    tz = ZONES["us"]
    log_call(borrower, local(tz, 2026, 6, 1, 16, 0), own, right_party=True)  # day 1
    decision = decide(borrower, local(tz, 2026, 6, day, 12, 0), own)
    assert decision.allowed is allowed
    if not allowed:
        assert decision.reasons == ("post_conversation_cooldown",)
        assert decision.next_allowed_at == local(tz, 2026, 6, 8, 8, 0)


def test_us_an_inbound_conversation_starts_the_cooldown_too():
    borrower = make_borrower("us")
    own = phone(borrower, "+12125550103")
    log_call(borrower, local(ZONES["us"], 2026, 6, 1, 16, 0), own, direction="inbound", right_party=True)
    assert decide(borrower, local(ZONES["us"], 2026, 6, 3, 12, 0), own).reasons == (
        "post_conversation_cooldown",
    )


def test_china_has_no_seven_day_rule_and_the_us_no_daily_cap():
    cn, us = make_borrower("cn"), make_borrower("us")
    cn_phone, us_phone = phone(cn), phone(us, "+12125550104")
    for k in range(9):
        log_call(cn, local(ZONES["cn"], 2026, 6, 1 + k, 10, 0), cn_phone, answered=True)
    for k in range(3):
        log_call(us, local(ZONES["us"], 2026, 6, 10, 9 + k, 0), us_phone, connected=True)
    assert decide(cn, local(ZONES["cn"], 2026, 6, 10, 12, 0), cn_phone).allowed
    assert decide(us, local(ZONES["us"], 2026, 6, 10, 12, 0), us_phone).allowed


# --- flags, opt-outs, data ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "code"),
    [
        ("do_not_contact", "do_not_contact"),
        ("dispute", "dispute_hold"),
        ("bankruptcy", "bankruptcy"),
        ("deceased", "deceased"),
        ("legal_representation", "legal_representation"),
        ("cease_communication", "cease_communication"),
    ],
)
def test_each_borrower_flag_denies_with_its_code_until_released(kind, code, django_user_model):
    borrower = make_borrower("us")
    own = phone(borrower, "+12125550105")
    officer = user("officer", "compliance_officer")
    at = local(ZONES["us"], 2026, 6, 10, 12, 0)
    flag = contact.borrower_flag_set(borrower=borrower, kind=kind, reason="Letter received", actor=officer)
    assert decide(borrower, at, own).reasons == (code,)
    contact.borrower_flag_release(flag=flag, actor=officer)
    assert decide(borrower, at, own).allowed
    assert list(AuditEvent.objects.values_list("event_type", flat=True)) == ["flag_set", "flag_released"]


def test_a_flag_with_an_end_date_lapses_and_cease_still_allows_the_permitted_notices():
    borrower = make_borrower("us")
    own = phone(borrower, "+12125550106")
    set_by = user("sup", "supervisor")
    BorrowerFlag.objects.create(
        borrower=borrower, kind="dispute", reason="r", set_by=set_by, set_at=datetime(2026, 6, 1, tzinfo=UTC),
        until=date(2026, 6, 9),
    )  # fmt: skip
    assert decide(borrower, local(ZONES["us"], 2026, 6, 9, 12, 0), own).reasons == ("dispute_hold",)
    assert decide(borrower, local(ZONES["us"], 2026, 6, 10, 12, 0), own).allowed
    BorrowerFlag.objects.create(
        borrower=borrower,
        kind="cease_communication",
        reason="r",
        set_by=set_by,
        set_at=datetime(2026, 6, 1, tzinfo=UTC),
    )
    letter_to = ContactPoint.objects.create(borrower=borrower, kind="address", value="1 Main St, New York")
    at = local(ZONES["us"], 2026, 6, 10, 12, 0)
    assert not decide(borrower, at, letter_to, channel="letter").allowed
    assert decide(borrower, at, letter_to, channel="letter", purpose="cease_confirmation").allowed


def test_opt_outs_are_per_address_and_per_channel():
    borrower = make_borrower("cn")
    own = phone(borrower)
    at = local(ZONES["cn"], 2026, 6, 10, 12, 0)
    contact.channel_opt_out_record(borrower=borrower, channel="sms", contact_point=own, note="回复TD退订")
    assert decide(borrower, at, own, channel="sms").reasons == ("channel_opt_out",)
    assert decide(borrower, at, own, channel="call").allowed
    own.opted_out, own.opted_out_at = True, at
    own.save()
    assert decide(borrower, at, own, channel="call").reasons == ("channel_opt_out",)


@pytest.mark.parametrize(
    ("time_zone", "region", "code"),
    [
        ("", "CN", "missing_timezone"),
        ("Mars/Olympus", "CN", "missing_timezone"),
        ("Asia/Shanghai", "", "missing_region"),
        ("Europe/Paris", "FR", "unknown_region"),
    ],
)
def test_missing_data_fails_closed(time_zone, region, code):
    borrower = BorrowerFactory(time_zone=time_zone, region=region)
    decision = decide(borrower, datetime(2026, 6, 10, 4, 0, tzinfo=UTC))
    assert not decision.allowed and code in decision.reasons and decision.next_allowed_at is None


def test_a_us_state_falls_back_to_the_us_profile():
    assert decide(make_borrower("us-west"), local(ZONES["us-west"], 2026, 6, 10, 12, 0)).profile == "us"


def test_bad_input_is_a_clear_error():
    borrower, other = make_borrower("cn"), make_borrower("cn")
    own, theirs = phone(borrower), phone(other, "13900000000")
    at = local(ZONES["cn"], 2026, 6, 10, 12, 0)
    cases = [
        (dict(channel="pigeon", contact_point=own, at=at), "channel"),
        (dict(channel="call", contact_point=own, at=datetime(2026, 6, 10, 12, 0)), "at"),  # noqa: DTZ001
        (dict(channel="call", contact_point=theirs, at=at), "contact_point"),
        (dict(channel="email", contact_point=own, at=at), "contact_point"),
        (dict(channel="call", contact_point=None, at=at), "contact_point"),
        (dict(channel="call", contact_point=own, at=at, purpose="legal"), "loan"),
        (dict(channel="call", contact_point=own, at=at, purpose="gossip"), "purpose"),
    ]
    for kwargs, field in cases:
        with pytest.raises(ValidationError) as excinfo:
            check_contact(borrower=borrower, **kwargs)
        assert field in excinfo.value.message_dict, kwargs


def test_every_reason_that_applies_is_reported():
    borrower = make_borrower("cn")
    own = phone(borrower)
    tz = ZONES["cn"]
    for hour in (9, 10, 11):
        log_call(borrower, local(tz, 2026, 6, 10, hour, 0), own, answered=True)
    BorrowerFlag.objects.create(
        borrower=borrower, kind="dispute", reason="r", set_by=user("s", "supervisor"),
        set_at=datetime(2026, 6, 1, tzinfo=UTC),
    )  # fmt: skip
    decision = decide(borrower, local(tz, 2026, 6, 10, 22, 30), own)
    assert set(decision.reasons) == {"dispute_hold", "quiet_hours", "daily_connected_cap"}
    assert decision.next_allowed_at is None  # the dispute needs a person


# --- third parties, visits, time-barred debt --------------------------------------------------


def test_china_third_parties_only_when_the_borrower_is_unreachable():
    borrower = make_borrower("cn")
    own = phone(borrower)
    sister = phone(
        borrower, "13700000000", is_third_party=True, third_party_name="王芳", relationship="sister"
    )
    tz = ZONES["cn"]
    at = local(tz, 2026, 6, 10, 12, 0)
    assert decide(borrower, at, sister).reasons == ("third_party_not_allowed",)
    for hour in (9, 10):
        log_call(borrower, local(tz, 2026, 6, 10, hour, 0), own)
    assert not decide(borrower, at, sister).allowed  # two failed attempts are not three
    log_call(borrower, local(tz, 2026, 6, 10, 11, 0), own)
    assert decide(borrower, at, sister).allowed
    # Or the borrower's own number is known to be wrong.
    other = make_borrower("cn")
    phone(other, is_valid=False)
    friend = phone(other, "13600000000", is_third_party=True, relationship="friend")
    assert decide(other, at, friend).allowed


def test_us_third_parties_location_once_and_the_debt_only_with_permitted_roles():
    borrower = make_borrower("us")
    phone(borrower, "+12125550107")
    neighbour = phone(borrower, "+12125550108", is_third_party=True, relationship="neighbour")
    lawyer = phone(borrower, "+12125550109", is_third_party=True, relationship="attorney")
    at = local(ZONES["us"], 2026, 6, 10, 12, 0)
    assert decide(borrower, at, neighbour).reasons == ("third_party_not_allowed",)
    assert decide(borrower, at, neighbour, purpose="location").allowed
    log_call(borrower, at - timedelta(days=1), neighbour, purpose="location")
    assert not decide(borrower, at, neighbour, purpose="location").allowed
    assert decide(borrower, at, lawyer).allowed


def test_uk_third_parties_never_learn_of_the_debt():
    borrower = make_borrower("uk")
    mother = phone(borrower, "+447700900001", is_third_party=True, relationship="mother")
    at = local(ZONES["uk"], 2026, 6, 10, 12, 0)
    assert decide(borrower, at, mother).reasons == ("third_party_not_allowed",)
    assert decide(borrower, at, mother, purpose="location").allowed


def test_field_visits_china_two_staff_and_a_recording_uk_none_for_the_vulnerable():
    cn = make_borrower("cn")
    home = ContactPoint.objects.create(borrower=cn, kind="address", value="上海市浦东新区2号")
    at = local(ZONES["cn"], 2026, 6, 10, 10, 0)
    assert decide(cn, at, home, channel="visit").reasons == ("field_visit_requirements",)
    assert decide(cn, at, home, channel="visit", staff_count=2).reasons == ("field_visit_requirements",)
    assert decide(cn, at, home, channel="visit", staff_count=2, recording=True).allowed
    uk = make_borrower("uk")
    flat = ContactPoint.objects.create(borrower=uk, kind="address", value="1 High St, Leeds")
    BorrowerFlag.objects.create(
        borrower=uk, kind="vulnerable", reason="carer", set_by=user("s2", "supervisor"),
        set_at=datetime(2026, 6, 1, tzinfo=UTC),
    )  # fmt: skip
    at_uk = local(ZONES["uk"], 2026, 6, 10, 10, 0)
    assert decide(uk, at_uk, flat, channel="visit").reasons == ("vulnerable_no_visit",)
    assert decide(uk, at_uk, flat, channel="letter").allowed


def test_no_legal_threat_on_time_barred_debt():
    borrower = make_borrower("us")
    own = phone(borrower, "+12125550110")
    loan = make_loan(borrower=borrower)
    Loan.objects.filter(pk=loan.pk).update(limitation_date=date(2026, 1, 1))
    loan.refresh_from_db()
    at = local(ZONES["us"], 2026, 6, 10, 12, 0)
    assert decide(borrower, at, own, purpose="legal", loan=loan).reasons == ("time_barred",)
    assert decide(borrower, at, own, loan=loan).allowed  # asking for payment is still allowed


# --- the contact log and overrides -------------------------------------------------------------


def test_a_denied_contact_is_refused_and_not_logged():
    borrower = make_borrower("cn")
    own = phone(borrower)
    with pytest.raises(ContactDenied) as excinfo:
        contact_attempt_record(
            borrower=borrower, channel="call", contact_point=own, at=local(ZONES["cn"], 2026, 6, 10, 23, 0)
        )
    assert excinfo.value.decision.reasons == ("quiet_hours",)
    assert not ContactAttempt.objects.exists()
    attempt = contact_attempt_record(
        borrower=borrower, channel="call", contact_point=own, at=local(ZONES["cn"], 2026, 6, 10, 10, 0),
        connected=True, answered=True, right_party=True, outcome="promise_to_pay",
    )  # fmt: skip
    assert attempt.decision["allowed"] is True and attempt.decision["profile"] == "cn"


def test_a_supervisor_overrides_a_denial_once_with_a_reason_a_collector_cannot():
    borrower = make_borrower("cn")
    own = phone(borrower)
    at = local(ZONES["cn"], 2026, 6, 10, 22, 15)
    supervisor, collector = user("sup3", "supervisor"), user("col3", "collector")
    with pytest.raises(PermissionDenied):
        contact.contact_override_grant(
            borrower=borrower, channel="call", reasons=["quiet_hours"], reason="asked", actor=collector
        )
    with pytest.raises(ValidationError) as excinfo:
        contact.contact_override_grant(
            borrower=borrower, channel="call", reasons=["bankruptcy"], reason="x", actor=supervisor
        )
    assert "reasons" in excinfo.value.message_dict
    override = contact.contact_override_grant(
        borrower=borrower, channel="call", contact_point=own, reasons=["quiet_hours"],
        reason="Borrower asked to be called back after 22:00 (recorded)", actor=supervisor,
    )  # fmt: skip
    ContactOverride.objects.filter(pk=override.pk).update(granted_at=at - timedelta(minutes=5))
    attempt = contact_attempt_record(
        borrower=borrower, channel="call", contact_point=own, at=at, connected=True
    )
    assert attempt.override_id == override.pk and attempt.decision["override_id"] == override.pk
    override.refresh_from_db()
    assert override.used_at is not None
    with pytest.raises(ContactDenied):  # used once
        contact_attempt_record(
            borrower=borrower, channel="call", contact_point=own, at=at + timedelta(minutes=1)
        )
    event = AuditEvent.objects.get(event_type="override")
    assert event.actor == supervisor and event.details["reasons"] == ["quiet_hours"]
