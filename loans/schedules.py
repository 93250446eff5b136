"""Repayment schedules: generated from loan terms, or validated when a partner sends one.

Pure domain maths, no Django. All arithmetic is ``Decimal`` in a local context with ample
precision; money is rounded only through :func:`loans.money.quantize`.

Annuity rounding
----------------
The exact (unrounded) amortisation is computed first: payment ``A``, cumulative principal
repaid after period ``k`` ``cum_k = P * ((1+r)**k - 1) / ((1+r)**n - 1)`` (``P * k / n`` at
rate 0), exact interest ``B_{k-1} * r`` on the exact balance, exact principal ``A`` minus that.

The rounded schedule keeps the cumulative principal repaid, ``C_k``, on the exact figure
rounded down or up (``|C_k - cum_k| < one minor unit``), so principal never drifts and sums
exactly to the loan. Installment ``k < n`` has principal ``C_k - C_{k-1}`` and total ``q(A)``
(interest ``q(A) - principal``) or, where no choice allows that, the other neighbour of ``A``
on the minor-unit grid (``q(A) -/+ one minor unit``). Every principal and interest must be
non-negative and within one minor unit of its exact figure. Among the schedules meeting those
rules, a small dynamic programme over the two choices of ``C_k`` per period picks the one
with the fewest totals off ``q(A)``, then the smallest summed distance from the exact split.
The last installment takes whatever principal remains and its own rounded exact interest.

Always paying ``q(A)`` with ``C_k = q(cum_k)`` is not enough: the interest can then land up
to 1.5 minor units from the exact figure, and at rate 0 it can go negative. That plain path
with the total switched where needed is always a valid schedule, so the programme always
finds one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation, localcontext
from enum import StrEnum

from dateutil.relativedelta import relativedelta

from loans.money import UnknownCurrency, minor_unit, quantize, split_evenly

# Working precision for the exact amortisation. 40 significant digits leaves well over ten
# digits of headroom below the minor unit for any amount a loan book will hold.
_PRECISION = 40

MAX_TERM = 600
MAX_ANNUAL_RATE = Decimal("10")


class RepaymentMethod(StrEnum):
    ANNUITY = "annuity"
    EQUAL_PRINCIPAL = "equal_principal"
    INTEREST_ONLY = "interest_only"
    BULLET = "bullet"


class Frequency(StrEnum):
    MONTHLY = "monthly"
    BIWEEKLY = "biweekly"
    WEEKLY = "weekly"


PERIODS_PER_YEAR: dict[Frequency, int] = {
    Frequency.MONTHLY: 12,
    Frequency.BIWEEKLY: 26,
    Frequency.WEEKLY: 52,
}


@dataclass(frozen=True)
class ScheduledInstallment:
    number: int  # 1-based
    due_date: date
    principal: Decimal
    interest: Decimal
    fee: Decimal

    @property
    def total(self) -> Decimal:
        return self.principal + self.interest + self.fee


@dataclass(frozen=True)
class ExplicitInstallment:
    """One row of a schedule as a partner sends it."""

    due_date: date
    principal: Decimal
    interest: Decimal
    fee: Decimal = Decimal("0")


class ScheduleError(ValueError):
    """Invalid schedule input; ``field`` names the offending input (e.g. ``installments[3].due_date``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


# --------------------------------------------------------------------------------------------
# Validation helpers
# --------------------------------------------------------------------------------------------


def _check_currency(currency: str) -> Decimal:
    try:
        return minor_unit(currency)
    except UnknownCurrency as exc:
        raise ScheduleError("currency", str(exc)) from None


def _check_decimal(value: object, field: str) -> Decimal:
    """A finite Decimal (ints accepted); floats and strings are refused."""
    if isinstance(value, bool) or not isinstance(value, Decimal | int):
        raise ScheduleError(field, f"must be a Decimal, got {type(value).__name__}")
    value = Decimal(value)
    if not value.is_finite():
        raise ScheduleError(field, f"must be a finite number, got {value}")
    return value


def _check_money(value: object, field: str, currency: str) -> Decimal:
    """A Decimal with no more decimal places than ``currency`` allows, returned quantised."""
    amount = _check_decimal(value, field)
    try:
        rounded = quantize(amount, currency)
    except InvalidOperation:
        raise ScheduleError(field, f"{amount} is too large") from None
    if rounded != amount:
        raise ScheduleError(
            field, f"{amount} has more decimal places than {currency} allows ({minor_unit(currency)})"
        )
    return rounded


def _check_date(value: object, field: str) -> date:
    if isinstance(value, datetime) or not isinstance(value, date):
        raise ScheduleError(field, f"must be a date, got {type(value).__name__}")
    return value


def _check_int(value: object, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ScheduleError(field, f"must be an integer, got {type(value).__name__}")
    return value


def _check_frequency(frequency: object) -> Frequency:
    try:
        return Frequency(frequency)
    except ValueError:
        raise ScheduleError("frequency", f"unknown frequency {frequency!r}") from None


def _check_method(method: object) -> RepaymentMethod:
    try:
        return RepaymentMethod(method)
    except ValueError:
        raise ScheduleError("method", f"unknown repayment method {method!r}") from None


# --------------------------------------------------------------------------------------------
# Due dates
# --------------------------------------------------------------------------------------------


def due_dates(*, first_due_date: date, frequency: Frequency | str, count: int) -> list[date]:
    """``count`` due dates starting at ``first_due_date``.

    Monthly dates are anchored on the first date (``first + relativedelta(months=i)``), so a
    Jan 31 start gives Feb 28/29 then Mar 31. Biweekly and weekly add 14 and 7 days.
    """
    first_due_date = _check_date(first_due_date, "first_due_date")
    frequency = _check_frequency(frequency)
    count = _check_int(count, "count")
    if count < 0:
        raise ScheduleError("count", f"must not be negative, got {count}")
    try:
        if frequency is Frequency.MONTHLY:
            return [first_due_date + relativedelta(months=i) for i in range(count)]
        step = 14 if frequency is Frequency.BIWEEKLY else 7
        return [first_due_date + timedelta(days=step * i) for i in range(count)]
    except (OverflowError, ValueError):
        raise ScheduleError("first_due_date", "the schedule runs past the last representable date") from None


# --------------------------------------------------------------------------------------------
# Generated schedules
# --------------------------------------------------------------------------------------------


def generate_schedule(
    *,
    principal: Decimal,
    annual_rate: Decimal,
    term: int,
    method: RepaymentMethod | str,
    frequency: Frequency | str,
    first_due_date: date,
    currency: str = "CNY",
    fee_per_installment: Decimal = Decimal("0"),
) -> list[ScheduledInstallment]:
    """The schedule for a loan of ``principal`` at ``annual_rate`` (a fraction: 0.18 = 18 %).

    ``term`` counts periods of ``frequency``; the periodic rate is
    ``annual_rate / PERIODS_PER_YEAR[frequency]``. Raises :class:`ScheduleError` on bad input.
    """
    _check_currency(currency)
    principal = _check_money(principal, "principal", currency)
    if principal <= 0:
        raise ScheduleError("principal", f"must be positive, got {principal}")
    annual_rate = _check_decimal(annual_rate, "annual_rate")
    if not 0 <= annual_rate < MAX_ANNUAL_RATE:
        raise ScheduleError(
            "annual_rate", f"must be at least 0 and below {MAX_ANNUAL_RATE}, got {annual_rate}"
        )
    term = _check_int(term, "term")
    if not 1 <= term <= MAX_TERM:
        raise ScheduleError("term", f"must be between 1 and {MAX_TERM}, got {term}")
    fee_raw = _check_decimal(fee_per_installment, "fee_per_installment")
    if fee_raw < 0:
        raise ScheduleError("fee_per_installment", f"must not be negative, got {fee_raw}")
    method = _check_method(method)
    frequency = _check_frequency(frequency)
    first_due_date = _check_date(first_due_date, "first_due_date")

    dates = due_dates(first_due_date=first_due_date, frequency=frequency, count=term)

    with localcontext() as ctx:
        ctx.prec = _PRECISION
        fee = quantize(fee_raw, currency)
        rate = annual_rate / PERIODS_PER_YEAR[frequency]
        if method is RepaymentMethod.ANNUITY:
            rows = _annuity(principal, rate, term, currency)
        elif method is RepaymentMethod.EQUAL_PRINCIPAL:
            rows = _equal_principal(principal, rate, term, currency)
        elif method is RepaymentMethod.INTEREST_ONLY:
            rows = _interest_only(principal, rate, term, currency)
        else:
            rows = [(principal, quantize(principal * rate * term, currency))]
            dates = dates[-1:]

    return [
        ScheduledInstallment(number=i, due_date=due, principal=p, interest=interest, fee=fee)
        for i, (due, (p, interest)) in enumerate(zip(dates, rows, strict=True), start=1)
    ]


def _annuity(principal: Decimal, rate: Decimal, term: int, currency: str) -> list[tuple[Decimal, Decimal]]:
    """(principal, interest) per period; see the module docstring for the rounding."""
    unit = minor_unit(currency)
    if rate == 0:
        payment = principal / term
        cumulative = [principal * k / term for k in range(term + 1)]
    else:
        growth = 1 + rate
        growth_n = growth**term
        payment = principal * rate * growth_n / (growth_n - 1)
        # P * (g**k - 1) / (g**n - 1): stable even when g**n is huge (no cancellation
        # against P * g**k as in the textbook balance formula).
        cumulative = [principal * (growth**k - 1) / (growth_n - 1) for k in range(term + 1)]
    cumulative[0] = Decimal(0)
    cumulative[term] = principal
    # Exact split of period k (1-based): interest on the exact balance, principal the rest.
    exact_interest = [Decimal(0)] + [(principal - cumulative[k - 1]) * rate for k in range(1, term + 1)]
    exact_principal = [Decimal(0)] + [cumulative[k] - cumulative[k - 1] for k in range(1, term + 1)]

    def within_unit(amount: Decimal, exact: Decimal) -> bool:
        return abs(amount - exact) <= unit

    rounded_payment = quantize(payment, currency)
    other_payment = rounded_payment - unit if rounded_payment > payment else rounded_payment + unit

    # Dynamic programme over the rounded cumulative principal C_k, which is always the exact
    # cumulative principal rounded down or up. Cost: (installments not totalling q(payment),
    # summed distance of principal and interest from the exact split); the plain q(cum_k)
    # path is always feasible, so a path exists.
    Cost = tuple[int, Decimal]
    # states[k][C_k] = (cost, C_{k-1}, principal_k, interest_k)
    states: list[dict[Decimal, tuple[Cost, Decimal, Decimal, Decimal]]] = [
        {Decimal(0): ((0, Decimal(0)), Decimal(0), Decimal(0), Decimal(0))}
    ]
    for k in range(1, term):
        step: dict[Decimal, tuple[Cost, Decimal, Decimal, Decimal]] = {}
        for repaid in _grid_neighbours(cumulative[k], unit, currency):
            for repaid_before, (cost, *_) in states[k - 1].items():
                amount = repaid - repaid_before
                if amount < 0 or not within_unit(amount, exact_principal[k]):
                    continue
                for deviation, total in ((0, rounded_payment), (1, other_payment)):
                    interest = total - amount
                    if interest >= 0 and within_unit(interest, exact_interest[k]):
                        error = abs(amount - exact_principal[k]) + abs(interest - exact_interest[k])
                        candidate = (cost[0] + deviation, cost[1] + error)
                        if repaid not in step or candidate < step[repaid][0]:
                            step[repaid] = (candidate, repaid_before, amount, interest)
                        break
        states.append(step)

    last_interest = quantize(exact_interest[term], currency)
    finish: tuple[Cost, Decimal] | None = None
    for repaid_before, (cost, *_) in states[term - 1].items():
        amount = principal - repaid_before
        if (
            amount >= 0
            and within_unit(amount, exact_principal[term])
            and within_unit(amount + last_interest, payment)
            and (finish is None or cost < finish[0])
        ):
            finish = (cost, repaid_before)
    if finish is None:  # pragma: no cover - the q(cum_k) path always qualifies
        raise AssertionError("no rounding of the annuity stays within one minor unit")

    repaid = finish[1]
    rows = [(principal - repaid, last_interest)]
    for k in range(term - 1, 0, -1):
        _, repaid, amount, interest = states[k][repaid]
        rows.append((amount, interest))
    rows.reverse()
    return rows


def _grid_neighbours(amount: Decimal, unit: Decimal, currency: str) -> list[Decimal]:
    """``amount`` rounded down and up to the minor unit (one value if it is on the grid)."""
    nearest = quantize(amount, currency)
    if nearest == amount:
        return [nearest]
    return [nearest - unit, nearest] if nearest > amount else [nearest, nearest + unit]


def _equal_principal(
    principal: Decimal, rate: Decimal, term: int, currency: str
) -> list[tuple[Decimal, Decimal]]:
    """Principal split evenly (``money.split_evenly``); interest on the balance outstanding."""
    rows: list[tuple[Decimal, Decimal]] = []
    outstanding = principal
    for amount in split_evenly(principal, term, currency):
        rows.append((amount, quantize(outstanding * rate, currency)))
        outstanding -= amount
    return rows


def _interest_only(
    principal: Decimal, rate: Decimal, term: int, currency: str
) -> list[tuple[Decimal, Decimal]]:
    interest = quantize(principal * rate, currency)
    return [(principal if k == term else quantize(0, currency), interest) for k in range(1, term + 1)]


# --------------------------------------------------------------------------------------------
# Explicit (partner-supplied) schedules
# --------------------------------------------------------------------------------------------


def validate_explicit_schedule(
    *,
    principal: Decimal,
    start_date: date,
    installments: Sequence[ExplicitInstallment],
    currency: str = "CNY",
) -> list[ScheduledInstallment]:
    """Check a partner's schedule and return it as numbered rows (amounts quantised).

    Field names in errors index ``installments`` from 0, as the input list does.
    """
    _check_currency(currency)
    principal = _check_money(principal, "principal", currency)
    if principal <= 0:
        raise ScheduleError("principal", f"must be positive, got {principal}")
    start_date = _check_date(start_date, "start_date")
    if not installments:
        raise ScheduleError("installments", "the schedule has no installments")

    rows: list[ScheduledInstallment] = []
    previous: date | None = None
    for i, row in enumerate(installments):
        if not isinstance(row, ExplicitInstallment):
            raise ScheduleError(
                f"installments[{i}]", f"must be an ExplicitInstallment, got {type(row).__name__}"
            )
        due = _check_date(row.due_date, f"installments[{i}].due_date")
        if previous is None:
            if due <= start_date:
                raise ScheduleError(
                    f"installments[{i}].due_date",
                    f"first due date {due} must be after the start date {start_date}",
                )
        elif due <= previous:
            raise ScheduleError(
                f"installments[{i}].due_date",
                f"due date {due} must be after the previous due date {previous}",
            )
        previous = due
        amounts = {}
        for name in ("principal", "interest", "fee"):
            field = f"installments[{i}].{name}"
            amount = _check_money(getattr(row, name), field, currency)
            if amount < 0:
                raise ScheduleError(field, f"must not be negative, got {amount}")
            amounts[name] = amount
        rows.append(ScheduledInstallment(number=i + 1, due_date=due, **amounts))

    scheduled = sum((row.principal for row in rows), Decimal(0))
    if scheduled != principal:
        raise ScheduleError(
            "installments",
            f"installment principal sums to {quantize(scheduled, currency)}"
            f" but the loan principal is {principal}",
        )
    return rows
