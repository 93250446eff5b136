"""Override requests: a collector refused by the contact rules asks, a supervisor who did not ask grants
(the override then lets exactly one contact through) or declines; every refusal writes nothing; every
step is audited; two supervisors deciding at once cannot both win."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied, ValidationError
from django.db import connection
from django.utils import timezone, translation

from compliance import overrides
from compliance.contact import ContactDenied, check_contact, contact_attempt_record
from compliance.models import AuditEvent, BorrowerFlag, ContactAttempt, ContactOverride, OverrideRequest
from compliance.overrides import (
    override_request_create,
    override_request_decline,
    override_request_grant,
    override_requests_decided,
    override_requests_pending,
)
from loans.models import Borrower, ContactPoint
from tests.factories import BorrowerFactory, make_loan

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def english():
    with translation.override("en"):
        yield


def midday_zone(now: datetime | None = None) -> str:
    """A fixed-offset zone where it is now between 12:00 and 13:00: no quiet hours, and a whole local
    day around this moment, whenever the test runs."""
    now = now or timezone.now()
    offset = 12 - now.astimezone(UTC).hour  # from -11 to +12 hours
    # POSIX signs are inverted: Etc/GMT-8 is UTC+8.
    return "Etc/UTC" if offset == 0 else f"Etc/GMT{'-' if offset > 0 else '+'}{abs(offset)}"


def user(name, group=None):
    person = get_user_model().objects.create_user(username=name, password="x-unused-x")
    if group:
        person.groups.add(Group.objects.get(name=group))
    return person


@pytest.fixture
def collector():
    return user("col", "collector")


@pytest.fixture
def supervisor():
    return user("sup", "supervisor")


@pytest.fixture
def supervisor2():
    return user("sup2", "supervisor")


@pytest.fixture
def borrower():
    """A borrower in China whose local time is midday now, with a mobile phone and a loan."""
    borrower = BorrowerFactory(time_zone=midday_zone(), region="CN")
    ContactPoint.objects.create(borrower=borrower, kind="phone", value="13800138000", is_primary=True)
    make_loan(borrower=borrower)
    return borrower


def mobile(borrower) -> ContactPoint:
    return borrower.contact_points.get(value="13800138000")


def answered_calls(borrower, n=3):
    """``n`` answered calls in the last minutes: the CN profile's daily cap of 3 is reached."""
    now = timezone.now()
    for minute in range(n, 0, -1):
        ContactAttempt.objects.create(
            borrower=borrower, contact_point=mobile(borrower), channel="call", direction="outbound",
            at=now - timedelta(minutes=minute), connected=True, answered=True, right_party=True,
        )  # fmt: skip


def ask(borrower, actor, *, reasons=("daily_connected_cap",), note="He asked us to call back today.", **kw):
    fields = {
        "borrower": borrower,
        "loan": borrower.loans.first(),
        "channel": "call",
        "contact_point": mobile(borrower),
        "reasons": list(reasons),
        "note": note,
        "actor": actor,
        **kw,
    }
    return override_request_create(**fields)


def call(borrower, actor, at=None):
    return contact_attempt_record(
        borrower=borrower, channel="call", at=at or timezone.now(), contact_point=mobile(borrower),
        connected=True, answered=True, right_party=True, actor=actor,
    )  # fmt: skip


def audit_steps():
    return [
        (e.details.get("step"), e.actor.username, e.subject_type)
        for e in AuditEvent.objects.filter(event_type="override").select_related("actor").order_by("id")
    ]


def error_fields(exc_info) -> set[str]:
    return set(exc_info.value.message_dict)


# --- asking ---------------------------------------------------------------------------------------


def test_a_collector_refused_a_call_asks_and_the_request_waits(borrower, collector):
    answered_calls(borrower)
    request = ask(borrower, collector)
    request.refresh_from_db()
    assert request.status == "pending" and request.reasons == ["daily_connected_cap"]
    assert request.requested_by == collector and request.loan == borrower.loans.first()
    assert request.contact_point == mobile(borrower) and request.decided_at is None
    event = AuditEvent.objects.get(event_type="override")
    assert event.subject_type == "compliance.overriderequest" and event.subject_id == str(request.pk)
    assert event.details["step"] == "requested" and event.details["reasons"] == ["daily_connected_cap"]
    assert event.details["refused_for"] == ["daily_connected_cap"]
    assert "note" not in event.details  # free text stays on the request, out of the unpurgeable log
    assert request.history.count() == 1


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"note": "   "}, "note"),
        ({"note": "x" * 501}, "note"),
        ({"reasons": []}, "reasons"),
        ({"reasons": ["  "]}, "reasons"),
        ({"channel": "pigeon"}, "channel"),
        ({"reasons": ["quiet_hours"]}, "reasons"),  # midday: not a reason the call is refused now
        ({"reasons": ["daily_connected_cap", "seven_in_seven"]}, "reasons"),  # one of them is not
        ({"reasons": ["do_not_contact"]}, "reasons"),  # the law's bar: never overridable
        ({"contact_point": None}, "contact_point"),  # a call needs a number
    ],
)
def test_a_bad_request_is_refused_naming_the_field_and_nothing_is_written(borrower, collector, change, field):
    answered_calls(borrower)
    with pytest.raises(ValidationError) as exc:
        ask(borrower, collector, **change)
    assert field in error_fields(exc)
    assert not OverrideRequest.objects.exists() and not AuditEvent.objects.exists()


def test_a_contact_point_or_loan_of_another_borrower_is_refused(borrower, collector):
    answered_calls(borrower)
    other = BorrowerFactory()
    theirs = ContactPoint.objects.create(borrower=other, kind="phone", value="13900000000")
    with pytest.raises(ValidationError) as exc:
        ask(borrower, collector, contact_point=theirs)
    assert error_fields(exc) == {"contact_point"}
    with pytest.raises(ValidationError) as exc:
        ask(borrower, collector, loan=make_loan(borrower=other))
    assert error_fields(exc) == {"loan"}
    assert not OverrideRequest.objects.exists()


def test_nothing_to_override_when_the_contact_is_allowed(borrower, collector):
    with pytest.raises(ValidationError) as exc:
        ask(borrower, collector)
    assert "allowed now" in str(exc.value)
    assert not OverrideRequest.objects.exists()


def test_a_bar_the_law_sets_cannot_be_asked_for_even_among_others(borrower, collector, supervisor):
    answered_calls(borrower)
    BorrowerFlag.objects.create(
        borrower=borrower, kind="do_not_contact", reason="asked", set_by=supervisor, set_at=timezone.now()
    )
    decision = check_contact(
        borrower=borrower, channel="call", at=timezone.now(), contact_point=mobile(borrower)
    )
    assert set(decision.reasons) == {"do_not_contact", "daily_connected_cap"}
    with pytest.raises(ValidationError, match="cannot be overridden"):
        ask(borrower, collector, reasons=["daily_connected_cap", "do_not_contact"])
    assert not OverrideRequest.objects.exists()


def test_only_people_who_may_ask_can_ask(borrower):
    answered_calls(borrower)
    for person in (user("comp", "compliance_officer"), user("nobody")):
        with pytest.raises(PermissionDenied):
            ask(borrower, person)
    inactive = user("gone", "collector")
    inactive.is_active = False
    inactive.save()
    with pytest.raises(PermissionDenied):
        ask(borrower, inactive)
    assert not OverrideRequest.objects.exists()


def test_one_waiting_request_per_borrower_channel_and_contact_point(borrower, collector, supervisor):
    answered_calls(borrower)
    first = ask(borrower, collector)
    with pytest.raises(ValidationError) as exc:
        ask(borrower, user("col2", "collector"), note="Again.")
    assert error_fields(exc) == {NON_FIELD_ERRORS}
    # Another number of the same borrower is another contact.
    work = ContactPoint.objects.create(borrower=borrower, kind="phone", label="work", value="13700000000")
    second = ask(borrower, collector, contact_point=work)
    assert second.pk != first.pk
    # Once decided, the contact may be asked for again.
    override_request_decline(request=first, actor=supervisor, reason="Not today.")
    third = ask(borrower, collector)
    assert OverrideRequest.objects.filter(status="pending").count() == 2 and third.status == "pending"


# --- granting -------------------------------------------------------------------------------------


def test_a_grant_creates_an_override_that_lets_exactly_one_call_through(borrower, collector, supervisor):
    answered_calls(borrower)
    with pytest.raises(ContactDenied):
        call(borrower, collector)
    request = ask(borrower, collector)
    granted = override_request_grant(
        request=request, actor=supervisor, reason="Borrower asked for a call about payment.",
        valid_for=timedelta(hours=6),
    )  # fmt: skip
    request.refresh_from_db()
    assert request.status == "granted" and request.decided_by == supervisor and granted.override_id
    override = request.override
    assert override.reasons == ["daily_connected_cap"] and override.contact_point == mobile(borrower)
    assert override.granted_by == supervisor and override.valid_until - override.granted_at == timedelta(
        hours=6
    )
    assert request.decided_at == override.granted_at
    assert request.decision_reason == override.reason == "Borrower asked for a call about payment."

    attempt = call(borrower, collector)  # allowed now: the override covers the refusal
    assert attempt.override == override
    override.refresh_from_db()
    assert override.used_at is not None
    with pytest.raises(ContactDenied):  # used once
        call(borrower, collector)
    assert audit_steps() == [
        ("requested", "col", "compliance.overriderequest"),
        (None, "sup", "compliance.contactoverride"),  # contact_override_grant's own event
        ("granted", "sup", "compliance.overriderequest"),
    ]
    granted_event = AuditEvent.objects.filter(event_type="override").order_by("id").last()
    assert (
        granted_event.details["override"] == override.pk
        and granted_event.details["requested_by"] == collector.pk
    )


def test_the_default_validity_is_24_hours_and_72_is_the_most(borrower, collector, supervisor):
    answered_calls(borrower)
    request = ask(borrower, collector)
    override_request_grant(request=request, actor=supervisor, reason="ok")
    override = ContactOverride.objects.get()
    assert override.valid_until - override.granted_at == timedelta(hours=24)
    assert timedelta(hours=72) == overrides.MAX_VALID_FOR


@pytest.mark.parametrize(
    "valid_for", [timedelta(0), timedelta(minutes=30), timedelta(hours=72, seconds=1), 24]
)
def test_a_validity_outside_1_to_72_hours_is_refused(borrower, collector, supervisor, valid_for):
    answered_calls(borrower)
    request = ask(borrower, collector)
    with pytest.raises(ValidationError) as exc:
        override_request_grant(request=request, actor=supervisor, reason="ok", valid_for=valid_for)
    assert error_fields(exc) == {"valid_for"}
    request.refresh_from_db()
    assert request.status == "pending" and not ContactOverride.objects.exists()


def test_72_hours_is_accepted(borrower, collector, supervisor):
    answered_calls(borrower)
    override_request_grant(
        request=ask(borrower, collector), actor=supervisor, reason="ok", valid_for=timedelta(hours=72)
    )
    override = ContactOverride.objects.get()
    assert override.valid_until - override.granted_at == timedelta(hours=72)


def test_the_requester_cannot_decide_their_own_request(borrower, supervisor):
    answered_calls(borrower)
    request = ask(borrower, supervisor)  # supervisors may ask too
    for decide in (override_request_grant, override_request_decline):
        with pytest.raises(ValidationError) as exc:
            decide(request=request, actor=supervisor, reason="mine")
        assert error_fields(exc) == {"decided_by"}
    request.refresh_from_db()
    assert request.status == "pending" and request.decided_by is None
    assert not ContactOverride.objects.exists()
    assert [step for step, *_ in audit_steps()] == ["requested"]


def test_collectors_and_compliance_officers_cannot_decide(borrower, collector):
    answered_calls(borrower)
    request = ask(borrower, collector)
    for person in (user("col2", "collector"), user("comp", "compliance_officer")):
        for decide in (override_request_grant, override_request_decline):
            with pytest.raises(PermissionDenied):
                decide(request=request, actor=person, reason="no")
    request.refresh_from_db()
    assert request.status == "pending" and not ContactOverride.objects.exists()


def test_a_decided_request_cannot_be_decided_again(borrower, collector, supervisor, supervisor2):
    answered_calls(borrower)
    request = ask(borrower, collector)
    override_request_grant(request=request, actor=supervisor, reason="first")
    for decide in (override_request_grant, override_request_decline):
        with pytest.raises(ValidationError, match="decided already"):
            decide(request=request, actor=supervisor2, reason="second")
    request.refresh_from_db()
    assert request.decided_by == supervisor and request.decision_reason == "first"
    assert ContactOverride.objects.count() == 1


def test_a_reason_is_required_to_decide(borrower, collector, supervisor):
    answered_calls(borrower)
    request = ask(borrower, collector)
    for decide in (override_request_grant, override_request_decline):
        with pytest.raises(ValidationError) as exc:
            decide(request=request, actor=supervisor, reason="  ")
        assert error_fields(exc) == {"reason"}
    request.refresh_from_db()
    assert request.status == "pending"


# --- declining ------------------------------------------------------------------------------------


def test_a_decline_records_why_and_the_contact_stays_refused(borrower, collector, supervisor):
    answered_calls(borrower)
    request = ask(borrower, collector)
    override_request_decline(request=request, actor=supervisor, reason="Three calls today is enough.")
    request.refresh_from_db()
    assert request.status == "declined" and request.override is None
    assert request.decided_by == supervisor and request.decision_reason == "Three calls today is enough."
    assert not ContactOverride.objects.exists()
    with pytest.raises(ContactDenied):
        call(borrower, collector)
    assert audit_steps()[-1] == ("declined", "sup", "compliance.overriderequest")
    assert AuditEvent.objects.order_by("id").last().details["reason"] == "Three calls today is enough."


# --- selectors ------------------------------------------------------------------------------------


def test_selectors_narrow_to_the_borrowers_given(borrower, collector, supervisor):
    answered_calls(borrower)
    other = BorrowerFactory(time_zone=midday_zone(), region="CN")
    ContactPoint.objects.create(borrower=other, kind="phone", value="13800138000", is_primary=True)
    answered_calls(other)
    mine, theirs = ask(borrower, collector), ask(other, collector)
    seen = Borrower.objects.filter(pk=borrower.pk).values("pk")
    assert list(override_requests_pending(borrowers=seen)) == [mine]
    override_request_decline(request=mine, actor=supervisor, reason="no")
    override_request_decline(request=theirs, actor=supervisor, reason="no")
    assert list(override_requests_pending(borrowers=seen)) == []
    assert list(override_requests_decided(borrowers=seen)) == [mine]


def test_reason_labels_cover_every_code_the_rules_give():
    import re
    from pathlib import Path

    import compliance.contact as rules

    source = Path(rules.__file__).read_text()
    codes = set(re.findall(r'Reason\("([a-z_]+)"', source)) | set(rules.FLAG_CODES.values())
    codes |= set(re.findall(r'code = "([a-z_]+)"', source))
    assert codes <= set(overrides.REASON_LABELS)
    assert overrides.reason_label("made_up") == "made_up"


# --- two supervisors at once (PostgreSQL: row locks) ----------------------------------------------


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_supervisors_granting_at_once_only_one_wins(on_postgres):
    borrower = BorrowerFactory(time_zone=midday_zone(), region="CN")
    ContactPoint.objects.create(borrower=borrower, kind="phone", value="13800138000", is_primary=True)
    answered_calls(borrower)
    request = ask(borrower, user("col", "collector"))
    deciders = [user("sup", "supervisor"), user("sup2", "supervisor")]
    start = threading.Barrier(2)
    outcomes = []

    def grant(actor):
        try:
            start.wait(timeout=30)
            override_request_grant(request=request, actor=actor, reason=f"by {actor.username}")
            outcomes.append("granted")
        except ValidationError as exc:
            outcomes.append(next(iter(exc.message_dict)))
        finally:
            connection.close()

    threads = [threading.Thread(target=grant, args=(actor,)) for actor in deciders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes) == [NON_FIELD_ERRORS, "granted"]
    assert ContactOverride.objects.count() == 1
    request.refresh_from_db()
    assert request.status == "granted" and request.override_id == ContactOverride.objects.get().pk
