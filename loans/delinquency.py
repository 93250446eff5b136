"""Delinquency maths with no Django in it: days past due, buckets, penalty interest.

The SQL refresh in ``loans.services`` computes the same figures set-wise; the tests hold the two
to each other.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from loans.money import ZERO, quantize

# Lower bound of each bucket in days past due, ascending. Industry ladder; in Chinese practice
# M1 (1-30), M2 (31-60), M3 (61-90), M4-M6 (91-180), M6+ (over 180).
BUCKET_FLOORS: tuple[tuple[int, str], ...] = (
    (0, "current"),
    (1, "1-30"),
    (31, "31-60"),
    (61, "61-90"),
    (91, "91-180"),
    (181, "180+"),
)

DAYS_IN_YEAR = 365


def days_past_due(oldest_unpaid_due_date: date | None, as_of: date) -> int:
    """Days since the oldest installment with anything unpaid fell due; 0 when none is late."""
    if oldest_unpaid_due_date is None:
        return 0
    return max(0, (as_of - oldest_unpaid_due_date).days)


def bucket_for(dpd: int, grace_days: int = 0) -> str:
    """The delinquency bucket. Grace days delay delinquency (the bucket), not the DPD count."""
    if dpd <= grace_days:
        return "current"
    name = "current"
    for floor, bucket in BUCKET_FLOORS:
        if dpd >= floor:
            name = bucket
    return name


def effective_penalty_rate(
    *, penalty_rate: Decimal, contract_rate: Decimal, annual_cost_cap: Decimal
) -> Decimal:
    """Penalty rate after the cap: contract rate plus penalty rate never exceeds the annual cost cap."""
    return max(Decimal(0), min(penalty_rate, annual_cost_cap - contract_rate))


def penalty_due(
    *,
    unpaid_principal: Decimal,
    due_date: date,
    as_of: date,
    grace_days: int,
    annual_rate: Decimal,
    currency: str = "CNY",
) -> Decimal:
    """Penalty interest on an installment's unpaid principal, recomputed from the days overdue.

    Recomputed, never incremented, so a rerun cannot double it. Nothing accrues within the grace
    period; once past it, interest runs from the due date.
    """
    days = max(0, (as_of - due_date).days)
    if days <= grace_days or unpaid_principal <= 0 or annual_rate <= 0:
        return ZERO
    return quantize(unpaid_principal * annual_rate * days / DAYS_IN_YEAR, currency)


def installment_penalty_due(
    *,
    accrued: Decimal,
    penalty_paid: Decimal,
    penalty_carried: Decimal = ZERO,
    penalty_waived: Decimal = ZERO,
) -> Decimal:
    """An installment's penalty due: what accrued on it (``penalty_due`` above), plus what a
    restructuring carried over onto it, less what was waived; never below what was paid of it, nor 0.

    The waiver is an amount, not a flag: penalty that accrues after it is due again.
    """
    return max(penalty_paid, penalty_carried + accrued - penalty_waived, ZERO)
