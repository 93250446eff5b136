"""What people do to cases: move a case between stages, close it, reassign cases, put a case on hold
and release it, record a promise to pay. And the scan, for callers. (Legal referrals:
``debt_collections.referrals``.)

Stage changes go through ``debt_collections.scan.apply_plan``, the writer the scan uses, so a
person's move leaves the same transition, history row and outbox event as the scan's. Every function
takes keyword arguments, runs in one transaction and raises ``ValidationError`` naming the bad field
(``PermissionDenied`` when the actor may not do it). Each writes its audit event in that transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from simple_history.utils import bulk_update_with_history

from compliance.audit import audit_record
from compliance.models import AuditEventType
from debt_collections import stages
from debt_collections.models import Case, CaseHold, PromiseInstalment, PromiseToPay, Team
from debt_collections.permissions import require_perm as _require_perm
from debt_collections.scan import (
    PLAN_COLUMNS,
    PLAN_TABLE,
    ScanBusy,
    ScanRefused,
    ScanSummary,
    _create_temp,
    _drop_temp,
    apply_plan,
    scan_run,
)
from loans.exceptions import field_error
from loans.money import quantize

__all__ = [
    "ScanBusy",
    "ScanRefused",
    "ScanSummary",
    "case_close",
    "case_hold_add",
    "case_hold_release",
    "case_move",
    "cases_reassign",
    "promise_record",
    "scan_run",
]

MANUAL_CLOSE_REASONS = (
    Case.CloseReason.SETTLED,
    Case.CloseReason.WRITTEN_OFF,
    Case.CloseReason.LEGAL_CONCLUDED,
    Case.CloseReason.RESTRUCTURED_PERFORMING,
)


def _require_reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise field_error("reason", _("Give a reason."))
    if len(reason) > 300:
        raise field_error("reason", _("At most 300 characters."))
    return reason


def _locked_open_case(case: Case) -> Case:
    case = Case.objects.select_for_update().select_related("loan").get(pk=case.pk)
    if not case.is_open:
        raise field_error("case", _("The case is closed."))
    return case


def _apply_one(*, case: Case, action: str, to_stage: str, close_reason: str, reason: str, actor, as_of: date):
    """Write one person's stage change through the scan's writer, and its audit event (the scan's
    moves are counted in one event per run instead: ``scan.finish_run``)."""
    loan = case.loan
    dpd = loan.days_past_due(as_of)
    team = case.team_id
    assign = False
    if action in ("up", "down"):
        team = Team.objects.filter(stage=to_stage).values_list("pk", flat=True).first()
        assign = team is not None and team != case.team_id
    priority = 0
    if action != "close":
        priority = stages.priority_score(
            stage=stages.Stage(to_stage),
            dpd=dpd,
            overdue=loan.overdue_total,
            broken_promises=case.broken_promises,
        )
    row = {
        "loan_id": loan.pk,
        "partner_id": loan.partner_id,
        "loan_ref": loan.external_ref,
        "case_id": case.pk,
        "action": action,
        "from_stage": case.stage,
        "new_stage": to_stage,
        "close_reason": close_reason,
        "reason": reason,
        "dpd": dpd,
        "priority": priority,
        "old_team_id": case.team_id,
        "new_team_id": team,
        "old_assignee_id": case.assignee_id,
        "new_assignee_id": case.assignee_id,
        "assign": assign,
        "old_next_action": case.next_action_date,
        "new_next_action": as_of if action != "close" else case.next_action_date,
        "old_recommended": case.referral_recommended_on,
        "new_recommended": case.referral_recommended_on,
    }
    columns = ", ".join(row)
    placeholders = ", ".join(f"%({name})s" for name in row)
    with connection.cursor() as cursor:
        _create_temp(cursor, PLAN_TABLE, PLAN_COLUMNS)
        cursor.execute(f"INSERT INTO {PLAN_TABLE} ({columns}) VALUES ({placeholders})", row)  # noqa: S608
        apply_plan(cursor, as_of=as_of, now=timezone.now(), actor_id=actor.pk, chunk_id=None)
        _drop_temp(cursor, PLAN_TABLE)
    audit_record(
        event_type=AuditEventType.STAGE_CHANGE,
        actor=actor,
        subject=case,
        details={
            "from": case.stage,
            "to": None if action == "close" else to_stage,
            "reason": reason,
            "close_reason": close_reason,
            "as_of": as_of,
        },
    )
    case.refresh_from_db()
    return case


@transaction.atomic
def case_move(*, case: Case, to_stage: str, actor, reason: str, as_of: date | None = None) -> Case:
    """Move an open case to another stage by hand (a supervisor, ``reassign_case``: the right over
    queues). Never into legal referral: that is a referral request approved by another supervisor,
    with its evidence pack (``debt_collections.referrals``)."""
    reason = _require_reason(reason)
    try:
        target = stages.Stage(to_stage)
    except ValueError:
        raise field_error("to_stage", _("Unknown stage.")) from None
    if target is stages.Stage.LEGAL_REFERRAL:
        raise field_error(
            "to_stage",
            _("A case enters legal referral only by a referral request approved by another supervisor."),
        )
    _require_perm(actor, "debt_collections.reassign_case")
    case = _locked_open_case(case)
    current = stages.Stage(case.stage)
    try:
        stages.check_move(current, target, actor=stages.Actor.USER)
    except stages.MoveError as exc:
        raise field_error("to_stage", str(exc)) from None
    action = "up" if target.rank > current.rank else "down"
    return _apply_one(
        case=case,
        action=action,
        to_stage=target.value,
        close_reason="",
        reason=reason,
        actor=actor,
        as_of=as_of or timezone.localdate(),
    )


@transaction.atomic
def case_close(*, case: Case, close_reason: str, actor, reason: str, as_of: date | None = None) -> Case:
    """Close a case by hand: settled, written off, legal proceedings concluded, restructured and
    performing. (Cured and paid-off cases are closed by the scan from the payments.)"""
    reason = _require_reason(reason)
    if close_reason not in MANUAL_CLOSE_REASONS:
        raise field_error("close_reason", _("Choose settled, written off, legal concluded or restructured."))
    _require_perm(actor, "debt_collections.reassign_case")
    case = _locked_open_case(case)
    return _apply_one(
        case=case,
        action="close",
        to_stage=case.stage,
        close_reason=close_reason,
        reason=reason,
        actor=actor,
        as_of=as_of or timezone.localdate(),
    )


@transaction.atomic
def cases_reassign(*, cases: Iterable[Case], assignee, actor, reason: str) -> int:
    """Give one or many open cases to a collector (a supervisor's move). Returns how many changed."""
    reason = _require_reason(reason)
    _require_perm(actor, "debt_collections.reassign_case")
    user_model = get_user_model()
    if not isinstance(assignee, user_model) or not assignee.is_active:
        raise field_error("assignee", _("Choose an active user."))
    ids = sorted({c.pk for c in cases})
    if not ids:
        raise field_error("cases", _("Choose at least one case."))
    rows = list(Case.objects.select_for_update().filter(pk__in=ids))
    closed = [c.pk for c in rows if not c.is_open]
    if len(rows) != len(ids) or closed:
        raise field_error("cases", _("Only open cases can be reassigned."))
    changed = [c for c in rows if c.assignee_id != assignee.pk]
    previous = {str(c.pk): c.assignee_id for c in changed}
    now = timezone.now()
    for c in changed:
        c.assignee = assignee
        c.updated_at = now
    if changed:
        bulk_update_with_history(
            changed,
            Case,
            ["assignee", "updated_at"],
            default_user=actor,
            default_change_reason=reason[:100],
        )
        audit_record(
            event_type=AuditEventType.REASSIGNMENT,
            actor=actor,
            subject=assignee,
            details={
                "cases": [c.pk for c in changed],
                "assignee": assignee.pk,
                "assignee_username": assignee.get_username(),
                "previous_assignees": previous,
                "reason": reason,
            },
        )
    return len(changed)


@transaction.atomic
def case_hold_add(
    *, case: Case, reason: str, note: str, actor, until: date | None = None, as_of: date | None = None
) -> CaseHold:
    """Freeze a case's escalation (dispute, bankruptcy, ...), until a date or until released."""
    if reason not in CaseHold.Reason.values:
        raise field_error("reason", _("Unknown hold reason."))
    note = (note or "").strip()
    if not note:
        raise field_error("note", _("Say why the case is on hold."))
    if until is not None and until < (as_of or timezone.localdate()):
        raise field_error("until", _("The hold cannot end in the past."))
    _require_perm(actor, "debt_collections.add_casehold")
    case = _locked_open_case(case)
    hold = CaseHold(
        case=case, reason=reason, note=note[:500], until=until, set_by=actor, set_at=timezone.now()
    )
    hold._change_reason = "hold added"
    hold.save()
    # The note stays on the hold: free text about a borrower (health, say) has no place in a log
    # that can never be purged.
    audit_record(
        event_type=AuditEventType.FLAG_SET,
        actor=actor,
        subject=case,
        details={"hold": hold.pk, "reason": reason, "until": until},
    )
    return hold


@transaction.atomic
def case_hold_release(*, hold: CaseHold, actor) -> CaseHold:
    _require_perm(actor, "debt_collections.change_casehold")
    hold = CaseHold.objects.select_for_update().get(pk=hold.pk)
    if hold.released_at is not None:
        raise field_error("hold", _("The hold was released already."))
    hold.released_at, hold.released_by = timezone.now(), actor
    hold._change_reason = "hold released"
    hold.save()
    audit_record(
        event_type=AuditEventType.FLAG_RELEASED,
        actor=actor,
        subject=(Case._meta.label_lower, hold.case_id),
        details={"hold": hold.pk, "reason": hold.reason},
    )
    return hold


PROMISE_MAX_INSTALMENTS = 12
PROMISE_MAX_DAYS = 180


def promise_instalments_clean(
    *, instalments=None, amount=None, promised_date=None, currency: str, made_on: date
) -> list[tuple[date, Decimal]]:
    """The promise's instalments, checked: 1 to 12, dates strictly increasing, none before the day
    it is made, the last within 180 days, each amount positive (quantised to the currency). Either
    ``instalments`` (``(date, amount)`` pairs) or a single ``amount`` and ``promised_date``."""
    if instalments is None:
        if amount is None or amount == "":
            raise field_error("amount", _("Enter an amount."))
        if not isinstance(promised_date, date):
            raise field_error("promised_date", _("Enter the date the borrower will pay by."))
        field, amount_field, date_field = None, "amount", "promised_date"
        rows = [(promised_date, amount)]
    else:
        if amount is not None or promised_date is not None:
            raise field_error("instalments", _("Give either instalments or one amount and date, not both."))
        field = amount_field = date_field = "instalments"
        try:
            rows = [tuple(row) for row in instalments]
        except TypeError:
            raise field_error(field, _("Each instalment is a date and an amount.")) from None
        if not rows:
            raise field_error(field, _("Enter at least one instalment."))
        if len(rows) > PROMISE_MAX_INSTALMENTS:
            raise field_error(field, _("At most %(n)s instalments.") % {"n": PROMISE_MAX_INSTALMENTS})
    cleaned: list[tuple[date, Decimal]] = []
    for number, row in enumerate(rows, start=1):
        if len(row) != 2:
            raise field_error(field, _("Each instalment is a date and an amount."))
        due, value = row
        if not isinstance(due, date) or isinstance(due, datetime):
            raise field_error(date_field, _("Instalment %(n)s: enter a date.") % {"n": number})
        try:
            value = quantize(Decimal(str(value).strip()), currency)
            if not value.is_finite() or value >= Decimal("1e16"):
                raise ValueError(value)
        except (ArithmeticError, ValueError):
            raise field_error(amount_field, _("Instalment %(n)s: enter an amount.") % {"n": number}) from None
        if value <= 0:
            raise field_error(amount_field, _("The amount must be positive."))
        if due < made_on:
            raise field_error(date_field, _("The date cannot be in the past."))
        if cleaned and due <= cleaned[-1][0]:
            raise field_error(
                date_field, _("Instalment %(n)s: the dates must follow one another.") % {"n": number}
            )
        cleaned.append((due, value))
    if sum(value for _due, value in cleaned) >= Decimal("1e16"):
        raise field_error(amount_field, _("The amount is too large."))
    if (cleaned[-1][0] - made_on).days > PROMISE_MAX_DAYS:
        raise field_error(
            date_field,
            _("The last payment must fall within %(days)s days.") % {"days": PROMISE_MAX_DAYS},
        )
    return cleaned


@transaction.atomic
def promise_record(
    *,
    case: Case,
    actor,
    instalments=None,
    amount=None,
    promised_date: date | None = None,
    as_of: date | None = None,
) -> PromiseToPay:
    """A borrower's promise to pay: a plan of ``(date, amount)`` instalments, or one ``amount`` by a
    ``promised_date``. While open it freezes escalation; the scan decides it kept, partly kept or
    broken (``scan._promises``)."""
    _require_perm(actor, "debt_collections.add_promisetopay")
    case = _locked_open_case(case)
    made_on = as_of or timezone.localdate()
    rows = promise_instalments_clean(
        instalments=instalments,
        amount=amount,
        promised_date=promised_date,
        currency=case.loan.currency,
        made_on=made_on,
    )
    if case.promises.filter(status=PromiseToPay.Status.OPEN).exists():
        raise field_error("case", _("This case already has an open promise to pay."))
    promise = PromiseToPay(
        case=case,
        amount=sum((value for _due, value in rows), Decimal(0)),
        promised_date=rows[-1][0],
        made_on=made_on,
        created_by=actor,
    )
    promise._change_reason = "promise recorded"
    try:
        with transaction.atomic():
            promise.save()
    except IntegrityError:  # another open promise, committed since the check (the constraint)
        raise field_error("case", _("This case already has an open promise to pay.")) from None
    PromiseInstalment.objects.bulk_create(
        PromiseInstalment(promise=promise, number=number, amount=value, due_date=due)
        for number, (due, value) in enumerate(rows, start=1)
    )
    return promise
