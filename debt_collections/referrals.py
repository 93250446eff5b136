"""Legal referrals: a collector or supervisor requests one, another supervisor approves (or rejects)
it, and the referral is then followed through filing and judgment to its end.

Maker-checker (DESIGN.md section 1): whoever requests a referral never decides it (the database
says so too: ``referral_four_eyes``). Approving is the only way a case enters legal referral: it
moves the case through ``services._apply_one`` (transition, history, outbox, stage-change audit),
builds the evidence pack (``debt_collections.evidence``), stores it with its SHA-256 and marks the
referral referred, all in one transaction.

Decisions taken here:

* **Recommendation.** A collector may request only a case the scan recommended (91 DPD under the
  default policy). A supervisor (``approve_referral``) may request one the scan did not recommend:
  that is a supervisor's judgement, and a second supervisor still has to approve it. Approval does
  not re-check the recommendation (the approver is that second judgement), but it does re-check
  every block below, as things may have changed since the request.
* **Blocks** (a field error on ``case``, nothing written), checked at request and at approval:
  time-barred debt (``loan.limitation_date`` on or before the business date: Reg F 1006.26(b),
  CONC 7.15), and anything that freezes escalation in the scan (``scan._plan_scan_sql``): a case
  hold in force, an open promise to pay, or a borrower flag in ``ESCALATION_HOLDS`` in force.
* **Forbearance.** The request records in writing which forbearance was considered (UK CONC 7.3,
  EU CCD art. 35); it is required.
* **Conclusion.** ``settled`` ends the proceedings and closes the case as ``legal_concluded`` (if
  it is still open). A judgment is a step, not the end: the debt is still owed and enforced, so the
  case stays open. ``withdrawn`` ends the referral but leaves the case open in legal referral, which
  only closes: a supervisor closes it (``services.case_close``) with the reason that fits, or the
  scan does when the loan is paid off or written off.
"""

from __future__ import annotations

from datetime import date

from django.core.exceptions import PermissionDenied
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from compliance.audit import audit_record
from compliance.models import ESCALATION_HOLDS, AuditEventType, BorrowerFlag
from debt_collections import stages
from debt_collections.evidence import evidence_pack_build, sha256_hex
from debt_collections.models import Case, CaseHold, LegalReferral, PromiseToPay
from debt_collections.services import _apply_one, _locked_open_case, _require_perm, _require_reason
from loans.exceptions import field_error

__all__ = [
    "referral_approve",
    "referral_block",
    "referral_reject",
    "referral_request",
    "referral_status_update",
    "referral_withdraw",
]

PERM_REQUEST = "debt_collections.add_legalreferral"
PERM_APPROVE = "debt_collections.approve_referral"
PERM_FOLLOW = "debt_collections.change_legalreferral"

S = LegalReferral.Status
# Where a referral may go next once referred, and which dates must not go backwards.
NEXT_STATUSES = {
    S.REFERRED: (S.FILED, S.SETTLED, S.WITHDRAWN),
    S.FILED: (S.JUDGMENT, S.SETTLED, S.WITHDRAWN),
    S.JUDGMENT: (S.SETTLED, S.WITHDRAWN),
}
CONCLUDING = (S.SETTLED, S.WITHDRAWN)
TEXT_MAX = 2000


def _require_text(field: str, value: str, message: str) -> str:
    value = (value or "").strip()
    if not value:
        raise field_error(field, message)
    if len(value) > TEXT_MAX:
        raise field_error(field, _("At most %(n)s characters.") % {"n": TEXT_MAX})
    return value


def referral_block(*, case: Case, as_of: date) -> str | None:
    """Why this case may not be referred to lawyers on ``as_of`` (a sentence), or None."""
    loan = case.loan
    if loan.limitation_date is not None and loan.limitation_date <= as_of:
        return _(
            "The debt is time-barred (limitation date %(date)s): it cannot be referred for legal action."
        ) % {"date": loan.limitation_date.isoformat()}
    hold = (
        CaseHold.objects.filter(case=case, released_at__isnull=True)
        .exclude(until__lt=as_of)
        .order_by("set_at")
        .first()
    )
    if hold is not None:
        return _("The case is on hold (%(reason)s): it cannot be referred while the hold is in force.") % {
            "reason": hold.get_reason_display()
        }
    if PromiseToPay.objects.filter(case=case, status=PromiseToPay.Status.OPEN).exists():
        return _("The borrower has an open promise to pay: wait until it is kept or broken.")
    flag = (
        BorrowerFlag.objects.filter(
            borrower_id=loan.borrower_id, kind__in=ESCALATION_HOLDS, released_at__isnull=True
        )
        .exclude(until__lt=as_of)
        .order_by("set_at")
        .first()
    )
    if flag is not None:
        return _(
            "The borrower is flagged (%(kind)s): the case cannot be referred while the flag is in force."
        ) % {"kind": flag.get_kind_display()}
    return None


def _check_blocks(case: Case, as_of: date) -> None:
    block = referral_block(case=case, as_of=as_of)
    if block:
        raise field_error("case", block, code="blocked")


def _locked_referral(referral: LegalReferral) -> LegalReferral:
    return LegalReferral.objects.select_for_update().select_related("case__loan").get(pk=referral.pk)


def _not_the_requester(referral: LegalReferral, actor) -> None:
    if referral.requested_by_id == actor.pk:
        raise PermissionDenied(_("You requested this referral: another supervisor must decide it."))


def _audit(referral: LegalReferral, actor, step: str, **details) -> None:
    audit_record(
        # The decisions are approvals; the other steps (request, withdrawal, filing...) referral steps.
        event_type=AuditEventType.APPROVAL
        if step in ("approved", "rejected")
        else AuditEventType.LEGAL_REFERRAL,
        actor=actor,
        subject=referral,
        details={"legal_referral": step, "referral": referral.pk, "case": referral.case_id, **details},
    )


@transaction.atomic
def referral_request(
    *, case: Case, actor, reason: str, forbearance_considered: str, as_of: date | None = None
) -> LegalReferral:
    """Ask for a case to be referred to lawyers. Needs ``add_legalreferral``; a collector only for a
    case the scan recommended."""
    _require_perm(actor, PERM_REQUEST)
    reason = _require_text("reason", reason, _("Say why the case should go to lawyers."))
    forbearance = _require_text(
        "forbearance_considered",
        forbearance_considered,
        _("Record which forbearance was considered (a longer term, a payment holiday, a lower rate...)."),
    )
    as_of = as_of or timezone.localdate()
    case = _locked_open_case(case)
    if case.stage == stages.Stage.LEGAL_REFERRAL:
        raise field_error("case", _("The case is in legal referral already."))
    if case.referral_recommended_on is None and not actor.has_perm(PERM_APPROVE):
        raise field_error(
            "case", _("The scan has not recommended this case for legal referral; ask a supervisor.")
        )
    _check_blocks(case, as_of)
    if case.referrals.filter(status__in=LegalReferral.ACTIVE).exists():
        raise field_error("case", _("This case already has a legal referral under way."))
    referral = LegalReferral(
        case=case,
        reason=reason,
        forbearance_considered=forbearance,
        requested_by=actor,
        requested_at=timezone.now(),
    )
    referral.full_clean(exclude=["evidence_pack"])
    referral._change_reason = "referral requested"
    referral.save()
    _audit(
        referral,
        actor,
        "requested",
        reason=reason,
        recommended_on=case.referral_recommended_on,
        as_of=as_of,
    )
    return referral


@transaction.atomic
def referral_approve(
    *, referral: LegalReferral, actor, reason: str, as_of: date | None = None
) -> LegalReferral:
    """A supervisor who did not request it approves: the case enters legal referral and the
    evidence pack is built and stored, in one transaction."""
    _require_perm(actor, PERM_APPROVE)
    reason = _require_reason(reason)
    # Lock the case, then the referral: the order a request takes (no deadlock between the two).
    case = _locked_open_case(
        Case(pk=LegalReferral.objects.values_list("case_id", flat=True).get(pk=referral.pk))
    )
    referral = _locked_referral(referral)
    _not_the_requester(referral, actor)
    if referral.status != S.REQUESTED:
        raise field_error("referral", _("Only a requested referral can be approved."))
    as_of = as_of or timezone.localdate()
    _check_blocks(case, as_of)
    try:
        stages.check_move(stages.Stage(case.stage), stages.Stage.LEGAL_REFERRAL, actor=stages.Actor.USER)
    except stages.MoveError as exc:
        raise field_error("case", str(exc)) from None
    recommended_on = case.referral_recommended_on
    case = _apply_one(
        case=case,
        action="up",
        to_stage=stages.Stage.LEGAL_REFERRAL.value,
        close_reason="",
        reason=reason,
        actor=actor,
        as_of=as_of,
    )
    referral.case = case
    referral.status = S.REFERRED
    referral.decided_by = actor
    referral.decided_at = timezone.now()
    referral.decision_reason = reason
    referral.referred_on = as_of
    content = evidence_pack_build(referral=referral, as_of=as_of)
    digest = sha256_hex(content)
    # The file is written before the transaction commits; if it rolls back, an unreferenced file is
    # left in storage, never a referral pointing at a missing or different pack.
    referral.evidence_pack.save(f"referral-{referral.pk}-{digest[:16]}.zip", ContentFile(content), save=False)
    referral.evidence_sha256 = digest
    referral._change_reason = "referral approved"
    referral.save()
    _audit(
        referral,
        actor,
        "approved",
        approved="legal_referral",
        reason=reason,
        requested_by=referral.requested_by_id,
        recommended_on=recommended_on,
        evidence_sha256=digest,
        evidence_size=len(content),
        as_of=as_of,
    )
    return referral


@transaction.atomic
def referral_reject(*, referral: LegalReferral, actor, reason: str) -> LegalReferral:
    """A supervisor who did not request it turns the request down, saying why."""
    _require_perm(actor, PERM_APPROVE)
    reason = _require_text("reason", reason, _("Give a reason."))
    referral = _locked_referral(referral)
    _not_the_requester(referral, actor)
    if referral.status != S.REQUESTED:
        raise field_error("referral", _("Only a requested referral can be rejected."))
    referral.status = S.REJECTED
    referral.decided_by, referral.decided_at, referral.decision_reason = actor, timezone.now(), reason
    referral._change_reason = "referral rejected"
    referral.save()
    _audit(referral, actor, "rejected", reason=reason)
    return referral


@transaction.atomic
def referral_withdraw(
    *, referral: LegalReferral, actor, reason: str, as_of: date | None = None
) -> LegalReferral:
    """Withdraw a referral: a request not yet decided (its requester, or a supervisor), or one
    already with the lawyers (a supervisor: ``referral_status_update`` to withdrawn)."""
    reason = _require_text("reason", reason, _("Give a reason."))
    current = _locked_referral(referral)
    if current.status in NEXT_STATUSES:
        return referral_status_update(
            referral=current,
            actor=actor,
            status=S.WITHDRAWN,
            on=as_of or timezone.localdate(),
            outcome=reason,
        )
    if current.status != S.REQUESTED:
        raise field_error("referral", _("This referral has ended already."))
    if current.requested_by_id != getattr(actor, "pk", None):
        _require_perm(actor, PERM_FOLLOW)
    else:
        _require_perm(actor, PERM_REQUEST)
    current.status = S.WITHDRAWN
    current.decision_reason = reason
    current._change_reason = "referral withdrawn"
    current.save()
    _audit(current, actor, "withdrawn", reason=reason)
    return current


@transaction.atomic
def referral_status_update(
    *, referral: LegalReferral, actor, status: str, on: date, outcome: str = ""
) -> LegalReferral:
    """Record the proceedings: referred -> filed -> judgment -> settled or withdrawn (settled or
    withdrawn also straight from referred or filed), each on a date not before the last one.
    Settled closes the case as legal proceedings concluded."""
    _require_perm(actor, PERM_FOLLOW)
    if status not in S.values:
        raise field_error("status", _("Unknown status."))
    if not isinstance(on, date):
        raise field_error("on", _("Enter a date."))
    outcome = (outcome or "").strip()
    if len(outcome) > TEXT_MAX:
        raise field_error("outcome", _("At most %(n)s characters.") % {"n": TEXT_MAX})
    referral = _locked_referral(referral)
    current = referral.status
    if status not in NEXT_STATUSES.get(current, ()):
        raise field_error(
            "status",
            _("A referral that is %(current)s cannot become %(next)s.")
            % {"current": S(current).label, "next": S(status).label},
        )
    last = max(d for d in (referral.referred_on, referral.filed_on, referral.judgment_on) if d is not None)
    if on < last:
        raise field_error("on", _("The date cannot be before the last step (%(date)s).") % {"date": last})
    if on > timezone.localdate():
        raise field_error("on", _("The date cannot be in the future."))
    if status in CONCLUDING and not outcome:
        raise field_error("outcome", _("Say how the proceedings ended."))
    referral.status = status
    if status == S.FILED:
        referral.filed_on = on
    elif status == S.JUDGMENT:
        referral.judgment_on = on
    else:
        referral.concluded_on = on
    if outcome:
        referral.outcome = outcome
    referral._change_reason = f"referral {status}"
    referral.save()
    case_closed = False
    if status == S.SETTLED:
        case = Case.objects.select_for_update().select_related("loan").get(pk=referral.case_id)
        if case.is_open:
            _apply_one(
                case=case,
                action="close",
                to_stage=case.stage,
                close_reason=Case.CloseReason.LEGAL_CONCLUDED,
                reason=_("Legal referral settled: %(outcome)s") % {"outcome": outcome[:250]},
                actor=actor,
                as_of=max(on, case.stage_entered_on),
            )
            case_closed = True
    _audit(
        referral,
        actor,
        status,
        previous=current,
        on=on,
        outcome=outcome,
        case_closed=case_closed,
    )
    return referral
