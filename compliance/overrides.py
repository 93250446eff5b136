"""Override requests: a collector refused by the contact rules asks a supervisor to let that contact go
ahead; a supervisor who did not ask grants it (creating the one-use ``ContactOverride``) or declines.

* **Asking** (``compliance.add_overriderequest``): the reason codes named must be ones the rules give
  for that contact right now (``check_contact``), and none of the bars the law sets (``NOT_OVERRIDABLE``:
  a dispute, opt-out, cease request...), which no supervisor may lift. One request waits at a time per
  borrower, channel and contact point; a second is refused until the first is decided.
* **Deciding** (``compliance.override_contact_rules`` and ``compliance.change_overriderequest``): never
  the requester (the database says so too: ``override_request_not_own``). The request row is locked,
  so of two supervisors deciding at once the second finds it decided and is refused. Granting creates
  the override through ``contact.contact_override_grant`` in the same transaction: valid from now for
  ``valid_for`` (at most 72 hours), for the codes asked for, used up by the first contact it covers.

Every step writes an audit event of type ``override`` (the closest the log has: it is the override's
own type) whose ``details["step"]`` says which. The collector's note stays on the request: free text
about a borrower has no place in a log that can never be purged.

The selectors at the end read requests for the back-office pages; ``compliance`` never imports the
workflow, so the caller passes the borrowers whose cases the user may see.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from compliance.audit import audit_record
from compliance.contact import NOT_OVERRIDABLE, check_contact, contact_override_grant
from compliance.models import AuditEventType, Channel, OverrideRequest, Purpose
from loans.exceptions import field_error
from loans.models import Borrower, ContactPoint, Loan

__all__ = [
    "DEFAULT_VALID_FOR",
    "MAX_VALID_FOR",
    "MIN_VALID_FOR",
    "REASON_LABELS",
    "override_request_create",
    "override_request_decline",
    "override_request_grant",
    "override_requests_decided",
    "override_requests_pending",
    "reason_label",
]

PERM_ASK = "compliance.add_overriderequest"
PERM_DECIDE = ("compliance.override_contact_rules", "compliance.change_overriderequest")
MIN_VALID_FOR = timedelta(hours=1)
DEFAULT_VALID_FOR = timedelta(hours=24)
MAX_VALID_FOR = timedelta(hours=72)
NOTE_MAX = 500

# What each reason code ``check_contact`` gives means, for people reading a request.
REASON_LABELS = {
    "quiet_hours": gettext_lazy("quiet hours in the borrower's local time"),
    "daily_connected_cap": gettext_lazy("answered calls a day reached"),
    "daily_attempt_cap": gettext_lazy("unanswered calls a day on this number reached"),
    "seven_in_seven": gettext_lazy("calls in 7 days reached"),
    "post_conversation_cooldown": gettext_lazy("no calls for some days after a conversation"),
    "third_party_not_allowed": gettext_lazy("third-party contact not allowed"),
    "field_visit_requirements": gettext_lazy("field visit needs two staff and a recording"),
    "missing_timezone": gettext_lazy("borrower's time zone unknown"),
    "missing_region": gettext_lazy("borrower's region unknown"),
    "unknown_region": gettext_lazy("no rule profile for the borrower's region"),
    "do_not_contact": gettext_lazy("do not contact"),
    "dispute_hold": gettext_lazy("dispute hold"),
    "bankruptcy": gettext_lazy("bankruptcy"),
    "deceased": gettext_lazy("deceased"),
    "legal_representation": gettext_lazy("represented by a lawyer"),
    "cease_communication": gettext_lazy("asked to cease communication"),
    "vulnerable_no_visit": gettext_lazy("no field visits to a vulnerable borrower"),
    "channel_opt_out": gettext_lazy("opted out of this channel"),
    "no_consent": gettext_lazy("no consent to contact on this number or address"),
    "invalid_contact_point": gettext_lazy("number or address known to be wrong"),
    "time_barred": gettext_lazy("time-barred debt"),
}


def reason_label(code: str) -> str:
    """The reason code in words (the code itself when it is one this module does not know)."""
    return str(REASON_LABELS.get(code, code))


def overridable(codes) -> list[str]:
    """The codes a supervisor may lift, in order."""
    return sorted(set(codes) - NOT_OVERRIDABLE)


def _require_active(actor, *perms: str) -> None:
    if actor is None or not actor.is_active or not all(actor.has_perm(perm) for perm in perms):
        raise PermissionDenied(_("You are not allowed to do this."))


def _reason_text(reason: str, message: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise field_error("reason", message)
    if len(reason) > NOTE_MAX:
        raise field_error("reason", _("At most %(n)s characters.") % {"n": NOTE_MAX})
    return reason


@transaction.atomic
def override_request_create(
    *,
    borrower: Borrower,
    loan: Loan | None,
    channel: str,
    contact_point: ContactPoint | None,
    reasons,
    note: str,
    actor,
    purpose: str = Purpose.COLLECTION,
    at: datetime | None = None,
) -> OverrideRequest:
    """A collector refused a contact asks a supervisor to override the rules named in ``reasons``.

    ``reasons`` must be codes the rules give for this contact at ``at`` (default: now) and none that
    the law sets; ``purpose`` is the contact's (it changes which rules apply), as ``check_contact``.
    """
    _require_active(actor, PERM_ASK)
    note = (note or "").strip()
    if not note:
        raise field_error("note", _("Say why the contact is needed."))
    if len(note) > NOTE_MAX:
        raise field_error("note", _("At most %(n)s characters.") % {"n": NOTE_MAX})
    if channel not in Channel.values:
        raise field_error("channel", _("Unknown channel %(c)s.") % {"c": channel})
    codes = sorted({str(code).strip() for code in (reasons or []) if str(code).strip()})
    if not codes:
        raise field_error("reasons", _("Name the denial reasons to override."))
    barred = sorted(set(codes) & NOT_OVERRIDABLE)
    if barred:
        words = ", ".join(reason_label(code) for code in barred)
        raise field_error("reasons", _("These cannot be overridden: %(codes)s.") % {"codes": words})
    # One waiting request per borrower, channel and contact point: lock the borrower so that two
    # requests made at once are taken one after the other.
    borrower = Borrower.objects.select_for_update().get(pk=borrower.pk)
    # check_contact refuses a contact point or loan of another borrower, or a channel without one.
    decision = check_contact(
        borrower=borrower, channel=channel, at=at or timezone.now(), contact_point=contact_point,
        purpose=purpose, loan=loan,
    )  # fmt: skip
    if decision.allowed:
        raise field_error("reasons", _("The contact is allowed now: no override is needed."))
    stale = sorted(set(codes) - set(decision.reasons))
    if stale:
        raise field_error(
            "reasons",
            _("The contact is not refused for these reasons now: %(codes)s.")
            % {"codes": ", ".join(reason_label(c) for c in stale)},
        )
    waiting = OverrideRequest.objects.filter(
        borrower=borrower, channel=channel, contact_point=contact_point, status=OverrideRequest.Status.PENDING
    )
    if waiting.exists():
        raise field_error(
            NON_FIELD_ERRORS,
            _("A request for this contact is already waiting for a supervisor's decision."),
        )
    request = OverrideRequest(
        borrower=borrower, loan=loan, channel=channel, contact_point=contact_point, reasons=codes,
        note=note, requested_by=actor, requested_at=timezone.now(),
    )  # fmt: skip
    request._change_reason = "override requested"
    request.save()
    audit_record(
        event_type=AuditEventType.OVERRIDE,
        actor=actor,
        subject=request,
        details={
            "step": "requested",
            "request": request.pk,
            "borrower": borrower.pk,
            "loan": getattr(loan, "pk", None),
            "channel": channel,
            "contact_point": getattr(contact_point, "pk", None),
            "reasons": codes,
            "refused_for": list(decision.reasons),
        },
    )
    return request


def _locked_pending(request: OverrideRequest, actor) -> OverrideRequest:
    """The request, row-locked: still waiting, and not the actor's own."""
    locked = (
        OverrideRequest.objects.select_for_update(of=("self",))
        .select_related("borrower", "contact_point")
        .get(pk=request.pk)
    )
    if locked.status != OverrideRequest.Status.PENDING:
        raise field_error(NON_FIELD_ERRORS, _("This request has been decided already."))
    if locked.requested_by_id == actor.pk:
        raise field_error("decided_by", _("You asked for this override: another supervisor must decide it."))
    return locked


@transaction.atomic
def override_request_grant(
    *, request: OverrideRequest, actor, reason: str, valid_for: timedelta = DEFAULT_VALID_FOR
) -> OverrideRequest:
    """A supervisor who did not ask grants the request: the override, valid for ``valid_for`` from
    now (1 to 72 hours), covers the codes asked for and is used up by the first contact it covers."""
    _require_active(actor, *PERM_DECIDE)
    reason = _reason_text(reason, _("Write why the rule is overridden."))
    if not isinstance(valid_for, timedelta) or not MIN_VALID_FOR <= valid_for <= MAX_VALID_FOR:
        raise field_error(
            "valid_for",
            _("An override is valid for 1 to %(hours)s hours.") % {"hours": MAX_VALID_FOR // MIN_VALID_FOR},
        )
    locked = _locked_pending(request, actor)
    override = contact_override_grant(
        borrower=locked.borrower, channel=locked.channel, reasons=list(locked.reasons), reason=reason,
        actor=actor, contact_point=locked.contact_point, valid_for=valid_for,
    )  # fmt: skip
    locked.status = OverrideRequest.Status.GRANTED
    locked.decided_by, locked.decided_at, locked.decision_reason = actor, override.granted_at, reason
    locked.override = override
    locked._change_reason = "override granted"
    locked.save()
    audit_record(
        event_type=AuditEventType.OVERRIDE,
        actor=actor,
        subject=locked,
        details={
            "step": "granted",
            "request": locked.pk,
            "override": override.pk,
            "requested_by": locked.requested_by_id,
            "borrower": locked.borrower_id,
            "channel": locked.channel,
            "reasons": locked.reasons,
            "reason": reason,
            "valid_until": override.valid_until,
        },
    )
    return locked


@transaction.atomic
def override_request_decline(*, request: OverrideRequest, actor, reason: str) -> OverrideRequest:
    """A supervisor who did not ask declines the request, saying why; the rules stay as they are."""
    _require_active(actor, *PERM_DECIDE)
    reason = _reason_text(reason, _("Say why the request is declined."))
    locked = _locked_pending(request, actor)
    locked.status = OverrideRequest.Status.DECLINED
    locked.decided_by, locked.decided_at, locked.decision_reason = actor, timezone.now(), reason
    locked._change_reason = "override declined"
    locked.save()
    audit_record(
        event_type=AuditEventType.OVERRIDE,
        actor=actor,
        subject=locked,
        details={
            "step": "declined",
            "request": locked.pk,
            "requested_by": locked.requested_by_id,
            "borrower": locked.borrower_id,
            "channel": locked.channel,
            "reasons": locked.reasons,
            "reason": reason,
        },
    )
    return locked


# --- selectors ------------------------------------------------------------------------------------


def _for_page(queryset: QuerySet) -> QuerySet:
    return queryset.select_related(
        "borrower", "loan", "contact_point", "requested_by", "decided_by", "override"
    )


def override_requests_pending(*, borrowers: QuerySet) -> QuerySet[OverrideRequest]:
    """Waiting requests about ``borrowers`` (a queryset of borrower ids), oldest first."""
    queryset = OverrideRequest.objects.filter(status=OverrideRequest.Status.PENDING, borrower__in=borrowers)
    return _for_page(queryset).order_by("requested_at", "pk")


def override_requests_decided(*, borrowers: QuerySet) -> QuerySet[OverrideRequest]:
    """Decided requests about ``borrowers``, the latest decision first."""
    queryset = OverrideRequest.objects.filter(borrower__in=borrowers).exclude(
        status=OverrideRequest.Status.PENDING
    )
    return _for_page(queryset).order_by("-decided_at", "-pk")
