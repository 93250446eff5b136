"""Restructurings, maker-checker: a collector proposes, a supervisor who did not propose it decides.

The proposal freezes the schedule as it stood and as proposed (``loans.restructure.plan_restructuring``)
on the row, for the approver to compare. Approval recomputes the plan from the loan as it stands, as
of the proposal's date; if anything changed since (a payment, another schedule), it refuses and asks
for a new proposal. Then, in one transaction: the new schedule version (``schedule_version_write``),
the decision, the case closed as restructured and performing (through the scan's writer, with its
transition), an outbox event and an audit event.

Waivers above the case's policy limit (``CollectionPolicy.supervisor_waiver_limit``: the product's
policy, else the default) need ``approve_large_waiver`` (senior supervisors).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from compliance.audit import audit_record
from compliance.models import AuditEventType
from debt_collections.models import Case, CollectionPolicy, OutboxEvent, Restructuring
from debt_collections.services import _apply_one, _locked_open_case, _require_perm
from loans import restructure
from loans.exceptions import field_error
from loans.models import Loan
from loans.money import quantize

__all__ = [
    "restructuring_approve",
    "restructuring_preview",
    "restructuring_propose",
    "restructuring_reject",
    "restructuring_withdraw",
]

TERM_FIELDS = ("new_term", "new_annual_rate", "holiday_periods", "settlement_amount")
# Which of the optional terms each kind takes.
KIND_TERMS = {
    Restructuring.Kind.TERM_EXTENSION: {"new_term"},
    Restructuring.Kind.RATE_REDUCTION: {"new_annual_rate", "new_term"},
    Restructuring.Kind.PAYMENT_HOLIDAY: {"holiday_periods"},
    Restructuring.Kind.PENALTY_WAIVER: set(),
    Restructuring.Kind.SETTLEMENT: {"settlement_amount"},
}


def _messages() -> dict:
    """``loans.restructure`` says why by a code; the user reads it in their language."""
    return {
        "kind": _("Choose a kind of restructuring."),
        "required": _("This is required for this kind of restructuring."),
        "range": _("Enter a whole number from %(low)s to %(high)s."),
        "future": _("The new schedule must start after the restructuring date."),
        "not_lower": _("A rate reduction needs a rate below the current %(current)s."),
        "not_longer": _("A term extension must end after the current schedule (%(end)s)."),
        "settlement_range": _("A settlement must be more than 0 and less than the payoff amount %(payoff)s."),
        "no_penalty": _("There is no unpaid penalty to waive."),
        "no_principal": _("No principal is left to reschedule."),
        "paid": _("Nothing is left to pay on this loan."),
        "empty": _("The loan has no schedule."),
    }


def _error(exc: restructure.RestructureError):
    template = _messages().get(exc.code)
    return field_error(exc.field, template % exc.params if template else exc.message)


def _clean_terms(kind: str, terms: dict, currency: str) -> dict:
    if kind not in Restructuring.Kind.values:
        raise field_error("kind", _("Choose a kind of restructuring."))
    for name in TERM_FIELDS:
        if terms.get(name) is not None and name not in KIND_TERMS[kind]:
            raise field_error(name, _("This does not apply to this kind of restructuring."))
    unknown = set(terms) - set(TERM_FIELDS) - {"first_due_date"}
    if unknown:
        raise field_error(sorted(unknown)[0], _("Unknown term."))
    cleaned = dict(terms)
    for name, places in (("new_annual_rate", Decimal("0.000001")), ("settlement_amount", Decimal("0.01"))):
        value = cleaned.get(name)
        if value is None:
            continue
        try:
            value = Decimal(str(value))
        except (InvalidOperation, ValueError):
            raise field_error(name, _("Enter a number.")) from None
        if not value.is_finite() or value % places:
            raise field_error(
                name,
                _("Enter a number with at most %(n)s decimal places.") % {"n": -places.as_tuple().exponent},
            )
        # As the database will give it back (a rate with 6 places), so the approver's recomputation
        # gives the very summary the proposal froze.
        cleaned[name] = quantize(value, currency) if name == "settlement_amount" else value.quantize(places)
    for name in ("new_term", "holiday_periods"):
        value = cleaned.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise field_error(name, _("Enter a whole number."))
    return cleaned


def _plan(*, loan: Loan, kind: str, as_of: date, terms: dict) -> restructure.Plan:
    if loan.status != Loan.Status.ACTIVE:
        raise field_error("case", _("The loan is not active."))
    terms = _clean_terms(kind, terms, loan.currency)
    try:
        plan = restructure.plan_restructuring(
            rows=restructure.rows_of(loan),
            terms=restructure.terms_of(loan, annual_cost_cap=settings.PENALTY_ANNUAL_COST_CAP),
            change=restructure.Change(kind=kind, as_of=as_of, **terms),
        )
    except restructure.RestructureError as exc:
        raise _error(exc) from None
    plan.current["schedule_version"] = loan.schedule_version
    return plan


def restructuring_preview(*, case: Case, kind: str, as_of: date | None = None, **terms) -> dict:
    """The schedule as it stands and as it would be (no writes): ``{"current": {...}, "proposed":
    {...}, "waived_amount": "..."}``, each summary with the next instalment, total cost, end date, rows.
    Raises ``ValidationError`` naming the field when the change cannot be made."""
    loan = Loan.objects.select_related("product").get(pk=case.loan_id)
    plan = _plan(loan=loan, kind=kind, as_of=as_of or timezone.localdate(), terms=terms)
    return {"current": plan.current, "proposed": plan.proposed, "waived_amount": str(plan.waived_amount)}


@transaction.atomic
def restructuring_propose(
    *,
    case: Case,
    kind: str,
    actor,
    reason: str,
    first_due_date: date | None,
    new_term: int | None = None,
    new_annual_rate=None,
    holiday_periods: int | None = None,
    settlement_amount=None,
    as_of: date | None = None,
) -> Restructuring:
    """A collector proposes a restructuring of the case's loan; it waits for a supervisor's decision.
    One proposal at a time per case."""
    _require_perm(actor, "debt_collections.add_restructuring")
    reason = (reason or "").strip()
    if not reason:
        raise field_error("reason", _("Give a reason."))
    case = _locked_open_case(case)
    if case.restructurings.filter(status=Restructuring.Status.PROPOSED).exists():
        raise field_error("case", _("This case already has a restructuring waiting for a decision."))
    if first_due_date is None:
        raise field_error("first_due_date", _("This is required for this kind of restructuring."))
    as_of = as_of or timezone.localdate()
    terms = {
        "first_due_date": first_due_date,
        "new_term": new_term,
        "new_annual_rate": new_annual_rate,
        "holiday_periods": holiday_periods,
        "settlement_amount": settlement_amount,
    }
    loan = Loan.objects.select_related("product").get(pk=case.loan_id)
    plan = _plan(loan=loan, kind=kind, as_of=as_of, terms=terms)
    cleaned = _clean_terms(kind, terms, loan.currency)
    proposal = Restructuring(
        case=case,
        loan=loan,
        kind=kind,
        first_due_date=first_due_date,
        new_term=cleaned["new_term"],
        new_annual_rate=cleaned["new_annual_rate"],
        holiday_periods=cleaned["holiday_periods"],
        settlement_amount=cleaned["settlement_amount"],
        waived_amount=plan.waived_amount,
        reason=reason,
        current_summary=plan.current,
        proposed_summary=plan.proposed,
        proposed_by=actor,
        proposed_at=timezone.now(),
    )
    proposal._change_reason = "proposed"
    proposal.save()
    audit_record(
        event_type=AuditEventType.RESTRUCTURING,
        actor=actor,
        subject=proposal,
        details={
            "step": "proposed",
            "restructuring": proposal.pk,
            "case": case.pk,
            "loan": loan.pk,
            "kind": kind,
            "waived_amount": str(plan.waived_amount),
            "as_of": as_of,
        },
    )
    return proposal


def _locked_proposal(restructuring: Restructuring) -> Restructuring:
    proposal = Restructuring.objects.select_for_update().get(pk=restructuring.pk)
    if proposal.status != Restructuring.Status.PROPOSED:
        raise field_error("restructuring", _("This restructuring has been decided or withdrawn already."))
    return proposal


def _not_the_proposer(proposal: Restructuring, actor) -> None:
    if actor.pk == proposal.proposed_by_id:
        raise field_error("decided_by", _("The person who proposed a restructuring cannot decide it."))


def waiver_limit(case: Case) -> Decimal:
    """The largest waiver a supervisor may approve on this case: its product's policy, else the default."""
    policy = (
        CollectionPolicy.objects.filter(product_id=case.loan.product_id).first()
        or CollectionPolicy.objects.filter(product__isnull=True).first()
    )
    return (
        policy.supervisor_waiver_limit
        if policy
        else CollectionPolicy._meta.get_field("supervisor_waiver_limit").default
    )


def _outbox(proposal: Restructuring, loan: Loan, now) -> None:
    OutboxEvent.objects.create(
        event_type="restructuring.decided",
        partner_id=loan.partner_id,
        subject_id=proposal.pk,
        payload={
            "restructuring_id": proposal.pk,
            "case_id": proposal.case_id,
            "loan_id": loan.pk,
            "loan_ref": loan.external_ref,
            "kind": proposal.kind,
            "status": proposal.status,
            "waived_amount": str(proposal.waived_amount),
            "schedule_version": proposal.schedule_version,
            "decided_at": now.isoformat(),
        },
        created_at=now,
    )


def _begin_decision(restructuring: Restructuring, actor, reason: str) -> tuple[Restructuring, str]:
    """What approving and rejecting both check first: the right, a reason, the four eyes."""
    _require_perm(actor, "debt_collections.approve_restructuring")
    reason = (reason or "").strip()
    if not reason:
        raise field_error("reason", _("Give a reason."))
    proposal = _locked_proposal(restructuring)
    _not_the_proposer(proposal, actor)
    return proposal, reason


def _record_decision(proposal: Restructuring, status: str, *, actor, reason: str, at) -> None:
    proposal.status = status
    proposal.decided_by, proposal.decided_at, proposal.decision_reason = actor, at, reason
    proposal._change_reason = status
    proposal.save()


@transaction.atomic
def restructuring_approve(*, restructuring: Restructuring, actor, reason: str, as_of: date | None = None):
    """A supervisor approves: the new schedule version is written, the case closes as restructured and
    performing (when nothing is overdue any more), and the partner is told."""
    proposal, reason = _begin_decision(restructuring, actor, reason)
    case = _locked_open_case(proposal.case)
    limit = waiver_limit(case)
    if proposal.waived_amount > limit and not actor.has_perm("debt_collections.approve_large_waiver"):
        raise PermissionDenied(
            _("A waiver above %(limit)s needs a senior supervisor's approval.") % {"limit": limit}
        )
    as_of = as_of or timezone.localdate()
    loan = Loan.objects.select_for_update().select_related("product").get(pk=proposal.loan_id)
    proposed_on = date.fromisoformat(proposal.current_summary["as_of"])
    if as_of < proposed_on:
        raise field_error("as_of", _("The decision cannot be dated before the proposal."))
    terms = {name: getattr(proposal, name) for name in (*TERM_FIELDS, "first_due_date")}
    try:
        plan = _plan(loan=loan, kind=proposal.kind, as_of=proposed_on, terms=terms)
    except ValidationError:  # a refusal now means the loan changed under the proposal
        plan = None
    if (
        plan is None
        or plan.current != proposal.current_summary
        or plan.proposed != proposal.proposed_summary
        or plan.waived_amount != proposal.waived_amount
    ):
        raise field_error(
            "restructuring",
            _("The loan has changed since this was proposed (a payment, say): reject it and propose again."),
        )
    if proposal.kind != Restructuring.Kind.PENALTY_WAIVER and proposal.first_due_date <= as_of:
        raise field_error(
            "first_due_date", _("The new schedule would start in the past: reject it and propose again.")
        )
    version_before = loan.schedule_version
    loan = restructure.schedule_version_write(
        loan=loan, rows=plan.rows, annual_rate=plan.annual_rate, as_of=as_of
    )
    now = timezone.now()
    proposal.schedule_version = loan.schedule_version
    _record_decision(proposal, Restructuring.Status.APPROVED, actor=actor, reason=reason, at=now)
    case = _locked_open_case(case)  # the loan's figures changed: read them again
    closed = loan.days_past_due(as_of) == 0
    if closed:
        _apply_one(
            case=case,
            action="close",
            to_stage=case.stage,
            close_reason=Case.CloseReason.RESTRUCTURED_PERFORMING,
            reason=_("restructured: %(kind)s") % {"kind": proposal.get_kind_display()},
            actor=actor,
            as_of=as_of,
        )
    _outbox(proposal, loan, now)
    audit_record(
        event_type=AuditEventType.APPROVAL,
        actor=actor,
        subject=proposal,
        details={
            "approved": "restructuring",
            "restructuring": proposal.pk,
            "case": case.pk,
            "loan": loan.pk,
            "kind": proposal.kind,
            "waived_amount": str(proposal.waived_amount),
            "total_cost_before": proposal.current_summary["total_cost"],
            "total_cost_after": proposal.proposed_summary["total_cost"],
            "schedule_version_from": version_before,
            "schedule_version_to": loan.schedule_version,
            "annual_rate": str(loan.annual_rate),
            "case_closed": closed,
            "reason": reason,
            "as_of": as_of,
        },
    )
    return proposal


@transaction.atomic
def restructuring_reject(*, restructuring: Restructuring, actor, reason: str) -> Restructuring:
    """A supervisor turns the proposal down; the loan is left as it is."""
    proposal, reason = _begin_decision(restructuring, actor, reason)
    now = timezone.now()
    _record_decision(proposal, Restructuring.Status.REJECTED, actor=actor, reason=reason, at=now)
    loan = Loan.objects.get(pk=proposal.loan_id)
    _outbox(proposal, loan, now)
    audit_record(
        event_type=AuditEventType.APPROVAL,
        actor=actor,
        subject=proposal,
        details={
            "rejected": "restructuring",
            "restructuring": proposal.pk,
            "case": proposal.case_id,
            "kind": proposal.kind,
            "reason": reason,
        },
    )
    return proposal


@transaction.atomic
def restructuring_withdraw(*, restructuring: Restructuring, actor) -> Restructuring:
    """The proposer takes the proposal back (before anyone decided it)."""
    proposal = _locked_proposal(restructuring)
    if actor is None or not actor.is_active or actor.pk != proposal.proposed_by_id:
        raise PermissionDenied(_("Only the person who proposed it can withdraw it."))
    proposal.status = Restructuring.Status.WITHDRAWN
    proposal._change_reason = "withdrawn"
    proposal.save()
    audit_record(
        event_type=AuditEventType.RESTRUCTURING,
        actor=actor,
        subject=proposal,
        details={"step": "withdrawn", "restructuring": proposal.pk, "case": proposal.case_id},
    )
    return proposal
