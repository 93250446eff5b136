"""Payment allocation: which payment paid which component of which installment.

A pure function of the schedule and the loan's payments, so the allocation is never stored as a
running state to be patched: a reversal (drop the payment) or a back-dated payment (give it an
early ``value_date``) is handled by replaying the loan from scratch, and a rerun over the same
input gives the same answer. No Django here, so the maths stays testable without a database.

The product's default waterfall, "oldest installment first":

1. Payments are applied in ``(value_date, sequence)`` order, whatever order they are given in.
   Installments are processed in ``(due_date, number)`` order.
2. For each payment, every installment due on or before the payment's ``value_date``, plus the
   first installment due after it (the current period: people pay a few days early), receives
   money in installment order, component by component in ``order`` (default penalty, fee,
   interest, principal), up to what is still unpaid on it after the earlier payments.
3. What is left is an overpayment: it prepays only the PRINCIPAL of the later installments,
   nearest due date first (never their interest, fee or penalty).
4. What is still left once all principal of the whole schedule is paid is the payment's excess.

Amounts are ``Decimal`` already in the currency's minor unit; the arithmetic here only adds,
subtracts and compares them, so nothing is rounded. An amount finer than the minor unit is
rejected rather than rounded (``loans.money`` stays the only place money is rounded).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from loans.money import quantize

COMPONENTS = ("penalty", "fee", "interest", "principal")  # default waterfall order within an installment
DEFAULT_ORDER = COMPONENTS


class AllocationError(ValueError):
    """The input cannot be allocated (bad amount, bad order, duplicate or ambiguous keys)."""


@dataclass(frozen=True)
class InstallmentDue:
    key: object  # opaque id of the installment (the caller's pk)
    number: int
    due_date: date
    principal: Decimal
    interest: Decimal
    fee: Decimal
    penalty: Decimal  # penalty currently due on it (computed elsewhere)


@dataclass(frozen=True)
class PaymentIn:
    key: object  # opaque id of the payment
    value_date: date  # the date the money counts from (a back-dated payment has an early value_date)
    amount: Decimal  # > 0
    sequence: int = 0  # tie-break for payments on the same value_date (e.g. the payment's pk)


@dataclass(frozen=True)
class AllocationLine:
    payment_key: object
    installment_key: object
    principal: Decimal
    interest: Decimal
    fee: Decimal
    penalty: Decimal

    @property
    def total(self) -> Decimal:
        return self.principal + self.interest + self.fee + self.penalty


@dataclass(frozen=True)
class AllocationResult:
    # one line per (payment, installment) that got money, in application order
    lines: tuple[AllocationLine, ...]
    # installment key -> {"principal", "interest", "fee", "penalty"} totals paid
    # (every installment present, zeros included)
    paid: dict[object, dict[str, Decimal]]
    # payment key -> amount left unapplied once all principal of the schedule is paid (only > 0 entries)
    excess: dict[object, Decimal]


def allocate(
    *,
    installments: Sequence[InstallmentDue],
    payments: Sequence[PaymentIn],
    order: Sequence[str] = DEFAULT_ORDER,
    currency: str = "CNY",
) -> AllocationResult:
    """Replay ``payments`` over ``installments`` with the default waterfall (see the module doc).

    Raises ``AllocationError`` (a ``ValueError``) on a non-positive payment amount, a negative due
    amount, an amount that is not a finite ``Decimal`` in ``currency``'s minor unit, an ``order``
    that is not a permutation of ``COMPONENTS``, duplicate installment or payment keys, or an
    ambiguous processing order (two installments with the same ``(due_date, number)``, two
    payments with the same ``(value_date, sequence)``). An unknown currency raises
    ``loans.money.UnknownCurrency`` (also a ``ValueError``).
    """
    zero = quantize(0, currency)  # also rejects an unknown currency
    waterfall = _check_order(order)
    schedule = _check_installments(installments, currency)
    ledger = _check_payments(payments, currency)

    due = [
        {c: _amount(getattr(inst, c), currency, f"installment {inst.key!r} {c}") for c in COMPONENTS}
        for inst in schedule
    ]
    paid = [dict.fromkeys(COMPONENTS, zero) for _ in schedule]
    due_dates = [inst.due_date for inst in schedule]

    lines: list[AllocationLine] = []
    excess: dict[object, Decimal] = {}

    for payment in ledger:
        left = _amount(payment.amount, currency, f"payment {payment.key!r} amount")
        # schedule[:current] is due on/before the value date; schedule[current] is the current period.
        current = bisect_right(due_dates, payment.value_date)
        # Rule 2 (due installments + current period, every component), then rule 3 (later principal).
        slots = [(i, c) for i in range(min(current + 1, len(schedule))) for c in waterfall]
        slots += [(i, "principal") for i in range(current + 1, len(schedule))]
        applied: dict[int, dict[str, Decimal]] = {}
        for i, component in slots:
            if left == 0:
                break
            amount = min(left, due[i][component] - paid[i][component])
            if amount > 0:
                paid[i][component] += amount
                applied.setdefault(i, dict.fromkeys(COMPONENTS, zero))[component] += amount
                left -= amount

        lines.extend(
            AllocationLine(payment_key=payment.key, installment_key=schedule[i].key, **parts)
            for i, parts in applied.items()
        )
        if left > 0:
            excess[payment.key] = left

    return AllocationResult(
        lines=tuple(lines),
        paid={inst.key: dict(paid[i]) for i, inst in enumerate(schedule)},
        excess=excess,
    )


def _check_order(order: Sequence[str]) -> tuple[str, ...]:
    if isinstance(order, str):
        raise AllocationError(f"order must be a sequence of component names, got the string {order!r}")
    waterfall = tuple(order)
    unknown = [c for c in waterfall if c not in COMPONENTS]
    if unknown:
        raise AllocationError(f"unknown component(s) in order: {unknown!r}; expected names from {COMPONENTS}")
    if len(waterfall) != len(COMPONENTS) or set(waterfall) != set(COMPONENTS):
        raise AllocationError(f"order must be a permutation of {COMPONENTS}, got {waterfall!r}")
    return waterfall


def _check_installments(installments: Sequence[InstallmentDue], currency: str) -> list[InstallmentDue]:
    schedule = list(installments)
    for inst in schedule:
        _check_date(inst.due_date, f"installment {inst.key!r} due_date")
        _check_int(inst.number, f"installment {inst.key!r} number")
        for c in COMPONENTS:
            amount = _amount(getattr(inst, c), currency, f"installment {inst.key!r} {c}")
            if amount < 0:
                raise AllocationError(f"installment {inst.key!r} {c} must not be negative, got {amount}")
    _check_unique([inst.key for inst in schedule], "installment key")
    _check_unique([(inst.due_date, inst.number) for inst in schedule], "installment (due_date, number)")
    return sorted(schedule, key=lambda inst: (inst.due_date, inst.number))


def _check_payments(payments: Sequence[PaymentIn], currency: str) -> list[PaymentIn]:
    ledger = list(payments)
    for payment in ledger:
        _check_date(payment.value_date, f"payment {payment.key!r} value_date")
        _check_int(payment.sequence, f"payment {payment.key!r} sequence")
        if _amount(payment.amount, currency, f"payment {payment.key!r} amount") <= 0:
            raise AllocationError(f"payment {payment.key!r} amount must be positive, got {payment.amount}")
    _check_unique([payment.key for payment in ledger], "payment key")
    _check_unique(
        [(payment.value_date, payment.sequence) for payment in ledger], "payment (value_date, sequence)"
    )
    return sorted(ledger, key=lambda payment: (payment.value_date, payment.sequence))


def _amount(value: object, currency: str, what: str) -> Decimal:
    """``value`` as an exact Decimal in ``currency``'s minor unit; never rounds, rejects instead."""
    if not isinstance(value, Decimal) or not value.is_finite():
        raise AllocationError(f"{what} must be a finite Decimal, got {value!r}")
    try:
        exact = quantize(value, currency)
    except InvalidOperation:
        raise AllocationError(f"{what} {value} is too large") from None
    if exact != value:
        raise AllocationError(f"{what} {value} is finer than the minor unit of {currency}")
    return exact + 0  # + 0 turns a -0.00 into 0.00


def _check_date(value: object, what: str) -> None:
    if not isinstance(value, date) or isinstance(value, datetime):
        raise AllocationError(f"{what} must be a date, got {value!r}")


def _check_int(value: object, what: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise AllocationError(f"{what} must be an int, got {value!r}")


def _check_unique(values: list[object], what: str) -> None:
    seen: set[object] = set()
    for value in values:
        if value in seen:
            raise AllocationError(f"duplicate {what}: {value!r}")
        seen.add(value)
