"""Contacts on a case: a collector logs a call, message, letter or field visit with a coded outcome,
and the outcome sets the next step.

Every outbound contact passes the contact rules first (``compliance.contact``): a denied one, not
covered by a supervisor's unused override, raises ``ContactDenied`` and nothing is written. The
compliance log's ``ContactAttempt`` (with the decision taken before it) is the record the rules
count; the ``CaseContact`` adds what the case needs. Notes are screened for threats and the like and
flagged for review, never refused (a note records what happened).

Outcomes and their next step, in the same transaction:

- dispute: a dispute hold on the case (escalation freezes);
- hardship: the case goes to the restructuring desk (moved up to restructuring if it is below it);
- wrong number: the contact point is marked invalid (the rules refuse it from then on);
- callback requested: the call-back date becomes the case's next action date;
- promise to pay: the promise (one or more instalments) is recorded;
- no answer, busy: try again tomorrow.
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime, timedelta

from django.contrib.auth import get_user_model
from django.core.files import File
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from simple_history.utils import bulk_update_with_history

from compliance.contact import contact_attempt_record
from compliance.models import Channel, Direction, Purpose
from compliance.screening import note_screen
from debt_collections import services, stages
from debt_collections.models import Case, CaseContact, CaseHold, ContactOutcome
from loans.exceptions import ValidationError, field_error
from loans.models import ContactPoint
from loans.services import contact_point_invalidate

__all__ = ["OUTCOME_FLAGS", "contact_log"]

NOTES_MAX = 5000
HARDSHIP_REASON = "hardship reported"

# (connected, answered, right party) for each coded outcome: what the contact rules count.
# A call that rang out reached the number (Reg F counts it); a busy line did not.
OUTCOME_FLAGS: dict[str, tuple[bool, bool, bool]] = {
    ContactOutcome.NO_ANSWER: (True, False, False),
    ContactOutcome.BUSY: (False, False, False),
    ContactOutcome.WRONG_NUMBER: (True, True, False),
    ContactOutcome.THIRD_PARTY: (True, True, False),
    ContactOutcome.RIGHT_PARTY: (True, True, True),
    ContactOutcome.PROMISE_TO_PAY: (True, True, True),
    ContactOutcome.REFUSED_TO_PAY: (True, True, True),
    ContactOutcome.DISPUTE: (True, True, True),
    ContactOutcome.HARDSHIP: (True, True, True),
    ContactOutcome.CALLBACK_REQUESTED: (True, True, True),
}
assert set(OUTCOME_FLAGS) == set(ContactOutcome.values)  # noqa: S101 - every outcome is mapped


def _sha256(recording: File) -> str:
    digest = hashlib.sha256()
    recording.seek(0)
    for chunk in recording.chunks():
        digest.update(chunk)
    recording.seek(0)
    return digest.hexdigest()


def _validate(
    *, case, channel, outcome, actor, direction, contact_point, notes, occurred_at, second_staff,
    recording, callback_on, promise_instalments, purpose, as_of,
) -> None:  # fmt: skip
    """Bad input, before anything is read under lock or written."""
    if channel not in Channel.values:
        raise field_error("channel", _("Unknown channel %(c)s.") % {"c": channel})
    if outcome not in ContactOutcome.values:
        raise field_error("outcome", _("Unknown outcome %(o)s.") % {"o": outcome})
    if direction not in Direction.values:
        raise field_error("direction", _("Unknown direction %(d)s.") % {"d": direction})
    if purpose not in Purpose.values:
        raise field_error("purpose", _("Unknown purpose %(p)s.") % {"p": purpose})
    if not isinstance(occurred_at, datetime) or timezone.is_naive(occurred_at):
        raise field_error("occurred_at", _("The time must be a datetime with a time zone."))
    if occurred_at > timezone.now():
        raise field_error("occurred_at", _("A contact cannot be logged before it happens."))
    if as_of < case.opened_on:  # the next step (a hardship move, say) would date before the case
        raise field_error("occurred_at", _("The case was opened after this contact."))
    if len(notes) > NOTES_MAX:
        raise field_error("notes", _("At most %(n)s characters.") % {"n": NOTES_MAX})
    if contact_point is not None and contact_point.borrower_id != case.loan.borrower_id:
        raise field_error("contact_point", _("The contact point belongs to another borrower."))
    if channel == Channel.VISIT:
        user_model = get_user_model()
        if not isinstance(second_staff, user_model) or not second_staff.is_active:
            raise field_error("second_staff", _("A field visit needs a second member of staff."))
        if second_staff.pk == actor.pk:
            raise field_error("second_staff", _("The second member of staff must be someone else."))
        if not isinstance(recording, File) or not recording.size:
            raise field_error("recording", _("Attach the recording of the visit."))
    elif second_staff is not None or recording is not None:
        field = "second_staff" if second_staff is not None else "recording"
        raise field_error(field, _("Only a field visit has a second member of staff and a recording."))
    if outcome == ContactOutcome.WRONG_NUMBER and contact_point is None:
        raise field_error("contact_point", _("Say which number or address was wrong."))
    if outcome == ContactOutcome.CALLBACK_REQUESTED:
        if not isinstance(callback_on, date) or isinstance(callback_on, datetime):
            raise field_error("callback_on", _("Say when to call back."))
        if callback_on < as_of:
            raise field_error("callback_on", _("The date cannot be in the past."))
    elif callback_on is not None:
        raise field_error("callback_on", _("A call-back date goes with a callback request."))
    if outcome == ContactOutcome.PROMISE_TO_PAY:
        if not promise_instalments:
            raise field_error("promise_instalments", _("Enter what the borrower promised to pay, and when."))
    elif promise_instalments:
        raise field_error("promise_instalments", _("Instalments go with a promise to pay."))


def _set_next_action(case: Case, day: date, *, actor, reason: str) -> None:
    if case.next_action_date == day:
        return
    case.next_action_date, case.updated_at = day, timezone.now()
    bulk_update_with_history(
        [case], Case, ["next_action_date", "updated_at"], default_user=actor, default_change_reason=reason
    )


@transaction.atomic
def contact_log(
    *,
    case: Case,
    channel: str,
    outcome: str,
    actor,
    direction: str = Direction.OUTBOUND,
    contact_point: ContactPoint | None = None,
    notes: str = "",
    occurred_at: datetime | None = None,
    second_staff=None,
    recording: File | None = None,
    callback_on: date | None = None,
    promise_instalments=None,
    purpose: str = Purpose.COLLECTION,
    as_of: date | None = None,
) -> CaseContact:
    """Log one contact on an open case and take the step its outcome calls for.

    ``promise_instalments``: ``(date, amount)`` pairs (a promise to pay); ``callback_on``: the day
    the borrower asked to be called back; ``second_staff`` and ``recording`` (a ``File``): a field
    visit. ``as_of``, the business date the next step counts from, defaults to the contact's local
    date. Raises ``ContactDenied`` (a ``ValidationError`` with the rules' reason codes) when the
    contact rules refuse an outbound contact and no supervisor's override covers it.
    """
    services._require_perm(actor, "debt_collections.add_casecontact")
    notes = (notes or "").strip()
    occurred_at = occurred_at or timezone.now()
    if as_of is None:  # the business day of the contact (a visit logged that evening, say)
        is_aware = isinstance(occurred_at, datetime) and timezone.is_aware(occurred_at)
        as_of = timezone.localdate(occurred_at) if is_aware else timezone.localdate()
    _validate(
        case=case, channel=channel, outcome=outcome, actor=actor, direction=direction,
        contact_point=contact_point, notes=notes, occurred_at=occurred_at, second_staff=second_staff,
        recording=recording, callback_on=callback_on, promise_instalments=promise_instalments,
        purpose=purpose, as_of=as_of,
    )  # fmt: skip
    case = services._locked_open_case(case)
    if outcome == ContactOutcome.PROMISE_TO_PAY:
        _promise_checked(case=case, instalments=promise_instalments, as_of=as_of)
    connected, answered, right_party = OUTCOME_FLAGS[outcome]
    is_visit = channel == Channel.VISIT
    attempt = contact_attempt_record(
        borrower=case.loan.borrower,
        channel=channel,
        at=occurred_at,
        direction=direction,
        contact_point=contact_point,
        purpose=purpose,
        loan=case.loan,
        connected=connected,
        answered=answered,
        right_party=right_party,
        outcome=outcome,
        actor=actor,
        staff_count=2 if is_visit else 1,
        recording=is_visit,
    )
    contact = CaseContact(
        case=case,
        attempt=attempt,
        outcome=outcome,
        notes=notes,
        second_staff=second_staff if is_visit else None,
        callback_on=callback_on,
        created_by=actor,
    )
    if is_visit:
        contact.recording_sha256 = _sha256(recording)
        contact.recording.save(recording.name or "recording", recording, save=False)
    contact.save()
    if notes:
        note_screen(source="case_contact", source_id=contact.pk, text=notes)
    _next_step(case=case, contact=contact, contact_point=contact_point, actor=actor,
               instalments=promise_instalments, as_of=as_of)  # fmt: skip
    return contact


def _promise_checked(*, case: Case, instalments, as_of: date) -> None:
    """The promise's own checks up front, under the promise field's name."""
    try:
        services.promise_instalments_clean(
            instalments=instalments, currency=case.loan.currency, made_on=as_of
        )
    except ValidationError as exc:
        raise ValidationError({"promise_instalments": exc.messages}) from None


def _next_step(*, case: Case, contact: CaseContact, contact_point, actor, instalments, as_of: date) -> None:
    outcome = contact.outcome
    if outcome == ContactOutcome.DISPUTE:
        services.case_hold_add(
            case=case,
            reason=CaseHold.Reason.DISPUTE,
            note=_("Dispute raised by the borrower (contact #%(id)s).") % {"id": contact.pk},
            actor=actor,
            as_of=as_of,
        )
    elif outcome == ContactOutcome.HARDSHIP:
        restructuring = stages.Stage.RESTRUCTURING
        if stages.Stage(case.stage).rank < restructuring.rank:
            services._apply_one(
                case=case, action="up", to_stage=restructuring.value, close_reason="",
                reason=HARDSHIP_REASON, actor=actor, as_of=as_of,
            )  # fmt: skip
        else:
            _set_next_action(case, as_of, actor=actor, reason=HARDSHIP_REASON)
    elif outcome == ContactOutcome.WRONG_NUMBER:
        contact_point_invalidate(
            contact_point=contact_point, reason=f"wrong number (case contact #{contact.pk})"
        )
    elif outcome == ContactOutcome.CALLBACK_REQUESTED:
        _set_next_action(case, contact.callback_on, actor=actor, reason="callback requested")
    elif outcome == ContactOutcome.PROMISE_TO_PAY:
        services.promise_record(case=case, actor=actor, instalments=instalments, as_of=as_of)
    elif outcome in (ContactOutcome.NO_ANSWER, ContactOutcome.BUSY):
        _set_next_action(case, as_of + timedelta(days=1), actor=actor, reason=f"contact: {outcome}")
