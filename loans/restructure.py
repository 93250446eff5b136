"""Restructuring a loan: the new schedule version, computed (pure) and written (``schedule_version_write``).

``plan_restructuring`` is domain maths with no Django in it: from the current installments, the loan's
terms and the change asked for, as of a business date, it gives the rows of the new schedule version
and a summary of the schedule before and after (the next instalment, the total still to pay, the end
date, the rows). The workflow (``debt_collections.restructuring``) proposes, approves and rejects; this
module knows nothing of cases or people (the loan book imports neither other app).

How the new version is built
----------------------------
* Every current installment with anything paid on it is kept as a *settled* row whose due amounts are
  what was paid of each component. Replaying the loan's payments over the new version therefore puts
  every earlier payment exactly where it went before: each component of a settled row is filled to the
  cent by the same payments, in the same order (the allocation is greedy and each cap is the amount the
  replay reached anyway). A settled row due after the restructuring date is dated that day, so that all
  settled rows come before the first new row and no earlier payment can reach a new row first.
* The unpaid principal ``P`` is rescheduled by the loan book's generator (``loans.schedules``) with the
  product's method, frequency and fee. Interest and fees in arrears (due on or before the date, unpaid)
  are spread evenly over the new rows' interest and fees; penalty accrued and unpaid is carried onto them
  as ``penalty_carried`` (which is also where their ``penalty_due`` starts). Interest and fees of
  installments not yet due are replaced by the new schedule's. Nothing of the principal is lost: the
  new rows' principal sums to ``P`` (a settlement aside).
* Penalty is taken as of the date (recomputed as the refresh would, ``installment_penalty``), so a
  preview needs no write and the approver's recomputation gives the same figures as the proposal.
* Rows are numbered 1..n in the new version: settled rows first, in their old order, then the new ones.

Kinds
-----
``term_extension``: ``P`` over ``new_term`` periods from ``first_due_date`` at the loan's rate; the new
schedule must end after the current one. ``rate_reduction``: ``P`` over the remaining number of unpaid
installments (or ``new_term``) at ``new_annual_rate``, which must be below the current rate; the loan's
rate becomes it. ``payment_holiday``: ``first_due_date`` is the first due date skipped; the remaining
number of installments is re-amortised starting ``holiday_periods`` periods after it. Interest for the
holiday (simple interest on ``P`` at the loan's rate for those periods) is not capitalised: it is
spread over the new rows' interest like arrears, so the principal stays ``P`` and the total cost shows
it. ``penalty_waiver``: the rows stay as they are, except that each row's accrued unpaid penalty is
added to its ``penalty_waived`` (the refresh keeps it waived; penalty accruing later is due again).
``settlement``: one installment of ``settlement_amount`` due on ``first_due_date``, applied to principal
first, then interest, fees and penalty in arrears; what is owed today beyond it is waived. It must be
positive and less than the payoff amount (unpaid principal, interest and fees in arrears, penalty).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal
from enum import StrEnum

from django.db import transaction
from simple_history.utils import bulk_create_with_history, bulk_update_with_history

from loans import delinquency
from loans.models import Installment, Loan
from loans.money import ZERO, quantize, split_evenly
from loans.schedules import (
    MAX_TERM,
    PERIODS_PER_YEAR,
    Frequency,
    RepaymentMethod,
    ScheduleError,
    due_dates,
    generate_schedule,
)
from loans.services import loan_replay

COMPONENTS = ("principal", "interest", "fee", "penalty")


class Kind(StrEnum):
    TERM_EXTENSION = "term_extension"
    RATE_REDUCTION = "rate_reduction"
    PENALTY_WAIVER = "penalty_waiver"
    PAYMENT_HOLIDAY = "payment_holiday"
    SETTLEMENT = "settlement"


class RestructureError(ValueError):
    """The change cannot be made. ``field`` names the input, ``code`` says why (the workflow turns it
    into a translated message), ``params`` fill that message."""

    def __init__(self, field: str, code: str, message: str, **params) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.code = code
        self.message = message
        self.params = params


@dataclass(frozen=True)
class Row:
    """One installment: what is due and paid of each component, and the restructuring adjustments."""

    number: int
    due_date: date
    principal_due: Decimal = ZERO
    interest_due: Decimal = ZERO
    fee_due: Decimal = ZERO
    penalty_due: Decimal = ZERO
    principal_paid: Decimal = ZERO
    interest_paid: Decimal = ZERO
    fee_paid: Decimal = ZERO
    penalty_paid: Decimal = ZERO
    penalty_carried: Decimal = ZERO
    penalty_waived: Decimal = ZERO

    def unpaid(self, component: str) -> Decimal:
        return getattr(self, f"{component}_due") - getattr(self, f"{component}_paid")

    @property
    def outstanding(self) -> Decimal:
        return sum((self.unpaid(c) for c in COMPONENTS), ZERO)

    @property
    def total_due(self) -> Decimal:
        return sum((getattr(self, f"{c}_due") for c in COMPONENTS), ZERO)

    @property
    def any_paid(self) -> bool:
        return any(getattr(self, f"{c}_paid") > 0 for c in COMPONENTS)


@dataclass(frozen=True)
class Terms:
    """The loan's terms as the restructuring needs them. ``penalty_rate`` is the effective (capped)
    yearly penalty rate, as ``loans.delinquency.effective_penalty_rate`` gives it."""

    currency: str
    annual_rate: Decimal
    method: str
    frequency: str
    fee_per_installment: Decimal = ZERO
    penalty_rate: Decimal = ZERO
    grace_days: int = 0


@dataclass(frozen=True)
class Change:
    kind: str
    as_of: date
    first_due_date: date | None = None
    new_term: int | None = None
    new_annual_rate: Decimal | None = None
    holiday_periods: int | None = None
    settlement_amount: Decimal | None = None


@dataclass(frozen=True)
class Plan:
    rows: tuple[Row, ...]  # the whole new version, numbered 1..n (settled rows first)
    annual_rate: Decimal | None  # the loan's new rate, when it changes
    waived_amount: Decimal
    current: dict  # summaries, JSON-ready (money and dates as strings)
    proposed: dict


# --- penalty as of a date ----------------------------------------------------------------------


def installment_penalty(row: Row, *, terms: Terms, as_of: date) -> Decimal:
    """The row's penalty due as the refresh would set it on ``as_of`` (``loans.refresh``): recomputed
    when the row accrues (late past grace, principal unpaid), else as stored."""
    unpaid_principal = row.unpaid("principal")
    accrues = (
        unpaid_principal > 0
        and row.due_date < as_of
        and (as_of - row.due_date).days > terms.grace_days
        and terms.penalty_rate > 0
    )
    if not accrues:
        return row.penalty_due
    accrued = delinquency.penalty_due(
        unpaid_principal=unpaid_principal,
        due_date=row.due_date,
        as_of=as_of,
        grace_days=terms.grace_days,
        annual_rate=terms.penalty_rate,
        currency=terms.currency,
    )
    return delinquency.installment_penalty_due(
        accrued=accrued,
        penalty_paid=row.penalty_paid,
        penalty_carried=row.penalty_carried,
        penalty_waived=row.penalty_waived,
    )


# --- summaries ---------------------------------------------------------------------------------


def schedule_summary(
    rows: Sequence[Row], *, as_of: date, currency: str, annual_rate: Decimal, version: int | None = None
) -> dict:
    """What a person compares: the next instalment (the first one due after ``as_of`` with anything
    to pay, else the last unpaid), the total still to pay (principal, interest, fees, penalty), the
    end date, and the rows still to pay with what is left of each."""
    unpaid = [r for r in sorted(rows, key=lambda r: (r.due_date, r.number)) if r.outstanding > 0]
    upcoming = [r for r in unpaid if r.due_date > as_of]
    nxt = upcoming[0] if upcoming else (unpaid[-1] if unpaid else None)

    def money(amount: Decimal) -> str:
        return str(quantize(amount, currency))

    summary = {
        "as_of": as_of.isoformat(),
        "annual_rate": str(annual_rate),
        "installment": money(nxt.outstanding if nxt else ZERO),
        "total_cost": money(sum((r.outstanding for r in unpaid), ZERO)),
        "unpaid_principal": money(sum((r.unpaid("principal") for r in unpaid), ZERO)),
        "end_date": unpaid[-1].due_date.isoformat() if unpaid else None,
        "periods": len(unpaid),
        "rows": [
            {
                "number": r.number,
                "due_date": r.due_date.isoformat(),
                **{c: money(r.unpaid(c)) for c in COMPONENTS},
                "total": money(r.outstanding),
            }
            for r in unpaid
        ],
    }
    if version is not None:
        summary["schedule_version"] = version
    return summary


# --- the plan ----------------------------------------------------------------------------------


def _settled(row: Row, as_of: date) -> Row:
    """A row reduced to what was paid of it (dated no later than ``as_of``; see the module doc)."""
    return Row(
        number=row.number,
        due_date=min(row.due_date, as_of),
        **{f"{c}_due": getattr(row, f"{c}_paid") for c in COMPONENTS},
        **{f"{c}_paid": getattr(row, f"{c}_paid") for c in COMPONENTS},
    )


def _generate(*, principal: Decimal, annual_rate: Decimal, term: int, first_due_date: date, terms: Terms):
    try:
        return generate_schedule(
            principal=principal,
            annual_rate=annual_rate,
            term=term,
            method=RepaymentMethod(terms.method),
            frequency=Frequency(terms.frequency),
            first_due_date=first_due_date,
            currency=terms.currency,
            fee_per_installment=terms.fee_per_installment,
        )
    except ScheduleError as exc:
        field = {"term": "new_term", "annual_rate": "new_annual_rate"}.get(exc.field, exc.field)
        raise RestructureError(field, "schedule", exc.message) from None


def _spread(amount: Decimal, parts: int, currency: str) -> list[Decimal]:
    return split_evenly(amount, parts, currency) if amount > 0 else [ZERO] * parts


def _check_int(value, field: str, low: int, high: int) -> int:
    if value is None:
        raise RestructureError(field, "required", "required for this kind")
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise RestructureError(
            field, "range", f"must be a whole number from {low} to {high}", low=low, high=high
        )
    return value


def plan_restructuring(*, rows: Sequence[Row], terms: Terms, change: Change) -> Plan:
    """The new schedule version for ``change`` and the summaries before and after. Raises
    ``RestructureError`` naming the input at fault."""
    try:
        kind = Kind(change.kind)
    except ValueError:
        raise RestructureError("kind", "kind", f"unknown kind {change.kind!r}") from None
    as_of, currency = change.as_of, terms.currency
    current = sorted(rows, key=lambda r: (r.due_date, r.number))
    if not current:
        raise RestructureError("loan", "empty", "the loan has no schedule")
    # Penalty as of the date, as the refresh would have it.
    current = [replace(r, penalty_due=installment_penalty(r, terms=terms, as_of=as_of)) for r in current]
    unpaid_principal = sum((r.unpaid("principal") for r in current), ZERO)
    if sum((r.outstanding for r in current), ZERO) <= 0:
        raise RestructureError("loan", "paid", "nothing is left to pay on the loan")
    arrears = {
        c: sum((r.unpaid(c) for r in current if r.due_date <= as_of), ZERO) for c in ("interest", "fee")
    }
    penalty_unpaid = sum((r.unpaid("penalty") for r in current), ZERO)
    remaining_periods = sum(1 for r in current if r.outstanding > 0)
    current_summary = schedule_summary(current, as_of=as_of, currency=currency, annual_rate=terms.annual_rate)

    if kind is Kind.PENALTY_WAIVER:
        if penalty_unpaid <= 0:
            raise RestructureError("kind", "no_penalty", "there is no unpaid penalty to waive")
        new_rows = [
            replace(r, penalty_waived=r.penalty_waived + r.unpaid("penalty"), penalty_due=r.penalty_paid)
            for r in current
        ]
        return Plan(
            rows=tuple(new_rows),
            annual_rate=None,
            waived_amount=quantize(penalty_unpaid, currency),
            current=current_summary,
            proposed=schedule_summary(
                new_rows, as_of=as_of, currency=currency, annual_rate=terms.annual_rate
            ),
        )

    first_due = change.first_due_date
    if first_due is None:
        raise RestructureError("first_due_date", "required", "required for this kind")
    if first_due <= as_of:
        raise RestructureError("first_due_date", "future", "must be after the restructuring date")

    settled = [_settled(r, as_of) for r in current if r.any_paid]
    rate, new_rate, waived = terms.annual_rate, None, ZERO
    extra_interest = ZERO
    if kind is Kind.SETTLEMENT:
        amount = change.settlement_amount
        if amount is None:
            raise RestructureError("settlement_amount", "required", "required for a settlement")
        payoff = unpaid_principal + arrears["interest"] + arrears["fee"] + penalty_unpaid
        if not ZERO < amount < payoff:
            raise RestructureError(
                "settlement_amount",
                "settlement_range",
                f"must be more than 0 and less than the payoff amount {quantize(payoff, currency)}",
                payoff=str(quantize(payoff, currency)),
            )
        amount = quantize(amount, currency)
        left = amount
        parts = {}
        for component, owed in (
            ("principal", unpaid_principal),
            ("interest", arrears["interest"]),
            ("fee", arrears["fee"]),
            ("penalty", penalty_unpaid),
        ):
            parts[component] = min(left, owed)
            left -= parts[component]
        fresh = [
            Row(
                number=0,
                due_date=first_due,
                principal_due=parts["principal"],
                interest_due=parts["interest"],
                fee_due=parts["fee"],
                penalty_due=parts["penalty"],
                penalty_carried=parts["penalty"],
            )
        ]
        waived = payoff - amount
    else:
        if unpaid_principal <= 0:
            raise RestructureError("kind", "no_principal", "no principal is left to reschedule")
        if kind is Kind.TERM_EXTENSION:
            term = _check_int(change.new_term, "new_term", 1, MAX_TERM)
            start = first_due
        elif kind is Kind.RATE_REDUCTION:
            if change.new_annual_rate is None:
                raise RestructureError("new_annual_rate", "required", "required for a rate reduction")
            if not ZERO <= change.new_annual_rate < terms.annual_rate:
                raise RestructureError(
                    "new_annual_rate",
                    "not_lower",
                    f"must be at least 0 and below the current rate {terms.annual_rate}",
                    current=str(terms.annual_rate),
                )
            rate = new_rate = change.new_annual_rate
            term = (
                remaining_periods
                if change.new_term is None
                else _check_int(change.new_term, "new_term", 1, MAX_TERM)
            )
            start = first_due
        else:  # payment holiday
            holiday = _check_int(change.holiday_periods, "holiday_periods", 1, 24)
            term = remaining_periods
            start = due_dates(first_due_date=first_due, frequency=terms.frequency, count=holiday + 1)[-1]
            periodic = terms.annual_rate / PERIODS_PER_YEAR[Frequency(terms.frequency)]
            extra_interest = quantize(unpaid_principal * periodic * holiday, currency)
        generated = _generate(
            principal=quantize(unpaid_principal, currency),
            annual_rate=rate,
            term=term,
            first_due_date=start,
            terms=terms,
        )
        n = len(generated)
        interest = _spread(arrears["interest"] + extra_interest, n, currency)
        fees = _spread(arrears["fee"], n, currency)
        penalty = _spread(penalty_unpaid, n, currency)
        fresh = [
            Row(
                number=0,
                due_date=g.due_date,
                principal_due=g.principal,
                interest_due=g.interest + interest[k],
                fee_due=g.fee + fees[k],
                penalty_due=penalty[k],
                penalty_carried=penalty[k],
            )
            for k, g in enumerate(generated)
        ]
        if kind is Kind.TERM_EXTENSION and fresh[-1].due_date <= current[-1].due_date:
            raise RestructureError(
                "new_term",
                "not_longer",
                f"the new schedule must end after the current one ({current[-1].due_date})",
                end=current[-1].due_date.isoformat(),
            )

    new_rows = [replace(r, number=k) for k, r in enumerate([*settled, *fresh], start=1)]
    return Plan(
        rows=tuple(new_rows),
        annual_rate=new_rate,
        waived_amount=quantize(waived, currency),
        current=current_summary,
        proposed=schedule_summary(new_rows, as_of=as_of, currency=currency, annual_rate=rate),
    )


# --- reading and writing the loan book -----------------------------------------------------------


_ROW_FIELDS = [f"{c}_{x}" for c in COMPONENTS for x in ("due", "paid")] + [
    "penalty_carried",
    "penalty_waived",
]


def rows_of(loan) -> list[Row]:
    """The loan's current installments as ``Row``s."""
    fields = _ROW_FIELDS
    return [
        Row(number=i.number, due_date=i.due_date, **{f: getattr(i, f) for f in fields})
        for i in Installment.objects.filter(loan=loan, superseded=False).order_by("due_date", "number")
    ]


def terms_of(loan, *, annual_cost_cap: Decimal) -> Terms:
    product = loan.product
    return Terms(
        currency=loan.currency,
        annual_rate=loan.annual_rate,
        method=product.repayment_method,
        frequency=product.frequency,
        fee_per_installment=product.installment_fee,
        penalty_rate=delinquency.effective_penalty_rate(
            penalty_rate=product.penalty_rate, contract_rate=loan.annual_rate, annual_cost_cap=annual_cost_cap
        ),
        grace_days=product.grace_days,
    )


def schedule_version_write(*, loan, rows: Sequence[Row], annual_rate: Decimal | None = None, as_of: date):
    """Write ``rows`` as the loan's next schedule version and replay its payments over it.

    Locks the loan, marks the current rows superseded (kept, with history), inserts the new version,
    moves the loan to it (and to ``annual_rate`` when given; the loan's history records it), then
    replays the payments (``loans.services.loan_replay``), which re-allocates them and refreshes the
    delinquency state. Runs in the caller's transaction (or its own). Returns the loan.
    """
    if not rows:
        raise ValueError("a schedule version needs at least one row")
    with transaction.atomic():
        loan = Loan.objects.select_for_update().select_related("product").get(pk=loan.pk)
        version = loan.schedule_version + 1
        old = list(Installment.objects.filter(loan=loan, superseded=False))
        for inst in old:
            inst.superseded = True
        # Superseded before the insert: on PostgreSQL an exclusion constraint forbids current rows of
        # two versions (loans/migrations/0002).
        bulk_update_with_history(old, Installment, ["superseded"], default_change_reason="restructured")
        fields = _ROW_FIELDS
        bulk_create_with_history(
            [
                Installment(
                    loan=loan,
                    schedule_version=version,
                    number=r.number,
                    due_date=r.due_date,
                    **{f: getattr(r, f) for f in fields},
                )
                for r in rows
            ],
            Installment,
            default_change_reason="restructured",
        )
        loan.schedule_version = version
        update = ["schedule_version"]
        if annual_rate is not None and annual_rate != loan.annual_rate:
            loan.annual_rate = annual_rate
            update.append("annual_rate")
        loan._change_reason = "restructured"
        loan.save(update_fields=update)
        loan_replay(loan=loan, as_of=as_of)
        loan.refresh_from_db()
        return loan


__all__ = [
    "Change",
    "Kind",
    "Plan",
    "RestructureError",
    "Row",
    "Terms",
    "installment_penalty",
    "plan_restructuring",
    "rows_of",
    "schedule_summary",
    "schedule_version_write",
    "terms_of",
]
