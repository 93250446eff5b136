"""Bucket snapshots: every delinquent loan's arrears bucket, days past due, amount overdue and
outstanding principal at a reporting date (a month's end), kept in ``loans.BucketSnapshot``.

Loans are re-bucketed in place every day, so the past is kept here: the arrears-ageing trend and the
month-over-month roll rates compare two snapshot dates. Only active loans past their grace are
written; an active loan with no row on a date was current then.

Two ways to take a date's snapshot, both one set-based ``INSERT ... SELECT`` after deleting that
date's rows (a rerun replaces them, so the job is idempotent and safe to retry):

* **today** (``as_of`` is today, or ``source="current"``): copy the loans' delinquency columns as the
  last refresh left them (``loans.refresh``); days past due are counted to ``as_of``.
* **a past date** (``source="replay"``): recompute the state as of that date from the current schedule
  and what was paid of it by then. Allocation is a pure function of the schedule and the payments in
  value-date order (``loans.allocation``), so the allocations of the posted payments valued on or
  before the date are exactly what had been paid then: a later payment never moves an earlier one.
  Penalty interest is recomputed as the refresh would have on that date (``loans.refresh``'s rule,
  from the principal unpaid then); an installment whose principal was paid by then keeps the penalty
  the refresh left on it. Buckets come from ``loans.delinquency.BUCKET_FLOORS`` and the product's grace
  days, as in the refresh. A loan counts if it was disbursed by then and not yet closed (paid off or
  written off after the date).

Known limit of the replay: a loan restructured after the date is replayed on its current schedule
version. The new version keeps every earlier payment on "settled" rows dated as before, so its arrears
before the restructuring read as the settled rows show them, not as the superseded schedule did; the
month-end job (a Celery beat entry) takes each month's snapshot on the day, from the current state,
which has no such gap. Back-filled months are for a book that started without snapshots.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from loans.delinquency import BUCKET_FLOORS, DAYS_IN_YEAR

__all__ = ["SnapshotResult", "bucket_snapshot_take", "month_end", "month_ends"]

SOURCES = ("current", "replay")

_DIALECT = {
    "postgresql": {
        "date": "%(as_of)s::date",
        "days": "(%(as_of)s::date - {col})",
        "greatest": "GREATEST",
        "least": "LEAST",
        "as_of_minus_grace": "(%(as_of)s::date - p.grace_days)",
    },
    "sqlite": {
        "date": "%(as_of)s",
        "days": "CAST(julianday(%(as_of)s) - julianday({col}) AS INTEGER)",
        "greatest": "MAX",
        "least": "MIN",
        "as_of_minus_grace": "date(%(as_of)s, '-' || p.grace_days || ' days')",
    },
}

DELETE_SQL = "DELETE FROM loans_bucketsnapshot WHERE as_of = %(as_of)s"

INSERT_COLUMNS = "INSERT INTO loans_bucketsnapshot (as_of, loan_id, bucket, days_past_due, overdue_total, " \
    "outstanding_principal)"  # fmt: skip

# Today: the loans' columns as the last refresh left them.
CURRENT_SQL = """{insert}
SELECT {date}, l.id, l.bucket,
       {greatest}(0, COALESCE({days_oldest}, 0)),
       l.overdue_principal + l.overdue_interest + l.overdue_fee + l.overdue_penalty,
       l.outstanding_principal
FROM loans_loan AS l
WHERE l.status = 'active' AND l.bucket <> 'current'
"""

# A past date: what was paid of each current installment by then, from the allocations of the posted
# payments valued on or before it; the penalty as the refresh would have computed it then; per loan
# the oldest installment with anything unpaid, the amounts left on installments already due and the
# principal left; then the bucket (grace days delay it, not the count).
REPLAY_SQL = """{insert}
WITH paid AS (
    SELECT a.installment_id,
           ROUND(SUM(a.principal), 2) AS principal, ROUND(SUM(a.interest), 2) AS interest,
           ROUND(SUM(a.fee), 2) AS fee, ROUND(SUM(a.penalty), 2) AS penalty
    FROM loans_allocation AS a
    JOIN loans_payment AS pay ON pay.id = a.payment_id
    WHERE pay.status = 'posted' AND pay.value_date <= %(as_of)s
    GROUP BY a.installment_id
),
left_then AS (
    SELECT i.loan_id, i.due_date,
           ROUND(i.principal_due - COALESCE(pd.principal, 0), 2) AS principal_left,
           ROUND(i.interest_due - COALESCE(pd.interest, 0), 2) AS interest_left,
           ROUND(i.fee_due - COALESCE(pd.fee, 0), 2) AS fee_left,
           ROUND({penalty_then} - COALESCE(pd.penalty, 0), 2) AS penalty_left
    FROM loans_installment AS i
    JOIN loans_loan AS l ON l.id = i.loan_id
    JOIN loans_loanproduct AS p ON p.id = l.product_id
    LEFT JOIN paid AS pd ON pd.installment_id = i.id
    WHERE NOT i.superseded
      AND l.start_date <= %(as_of)s
      AND (l.closed_on IS NULL OR l.closed_on > %(as_of)s)
),
per_loan AS (
    SELECT loan_id,
           MIN(CASE WHEN principal_left + interest_left + fee_left + penalty_left > 0 THEN due_date END)
               AS oldest_unpaid,
           ROUND(COALESCE(SUM(CASE WHEN due_date < %(as_of)s
                                   THEN principal_left + interest_left + fee_left + penalty_left END), 0), 2)
               AS overdue_total,
           ROUND(SUM(principal_left), 2) AS outstanding_principal
    FROM left_then
    GROUP BY loan_id
),
bucketed AS (
    SELECT a.loan_id, {bucket} AS bucket, {greatest}(0, COALESCE({days_oldest_a}, 0)) AS dpd,
           a.overdue_total, a.outstanding_principal
    FROM per_loan AS a
    JOIN loans_loan AS l ON l.id = a.loan_id
    JOIN loans_loanproduct AS p ON p.id = l.product_id
)
SELECT {date}, loan_id, bucket, dpd, overdue_total, outstanding_principal
FROM bucketed
WHERE bucket <> 'current'
"""

# An installment's penalty due on the date (i installment, l loan, p product, pd paid by then). The
# principal paid by then: the penalty stood where the refresh left it (it stops accruing once the
# principal is paid). Late past grace with principal unpaid: the refresh's formula, from the principal
# unpaid then and the days to the date. Otherwise nothing accrued: what a restructuring carried over,
# less what it waived. Never below what had been paid of it.
PENALTY_THEN = """(CASE
    WHEN i.principal_due - COALESCE(pd.principal, 0) <= 0 THEN i.penalty_due
    WHEN p.penalty_rate > 0 AND i.due_date < %(as_of)s AND i.due_date < {as_of_minus_grace}
        THEN {greatest}(COALESCE(pd.penalty, 0), ROUND(i.penalty_carried + ROUND(
            (i.principal_due - COALESCE(pd.principal, 0))
            * {least}(p.penalty_rate, {greatest}(0, %(cap)s - l.annual_rate))
            * {days_due} / {days_in_year}.0, 2) - i.penalty_waived, 2))
    ELSE {greatest}(COALESCE(pd.penalty, 0), i.penalty_carried - i.penalty_waived, 0)
END)"""

# Session settings for the replay on PostgreSQL, as for the refresh: one big aggregate, no JIT.
POSTGRES_SETTINGS = ("SET LOCAL jit = off", "SET LOCAL work_mem = '64MB'")


def bucket_case(*, dpd: str, oldest: str, grace: str) -> str:
    """The bucket as a SQL CASE over days past due, built from the one ladder in loans.delinquency."""
    (_, current), *ladder = BUCKET_FLOORS
    whens = [f"WHEN {oldest} IS NULL OR {dpd} <= {grace} THEN '{current}'"]
    for (_, name), (next_floor, _) in zip(ladder, ladder[1:], strict=False):
        whens.append(f"WHEN {dpd} < {next_floor} THEN '{name}'")
    return "(CASE " + " ".join(whens) + f" ELSE '{ladder[-1][1]}' END)"


def render(sql: str, vendor: str) -> str:
    """Fill a template for one database; the ``%(name)s`` parameters stay for the driver."""
    d = _DIALECT[vendor]
    days_oldest_a = d["days"].format(col="a.oldest_unpaid")
    fragments = {
        "insert": INSERT_COLUMNS,
        "date": d["date"],
        "greatest": d["greatest"],
        "days_oldest": d["days"].format(col="l.oldest_unpaid_due_date"),
        "days_oldest_a": days_oldest_a,
        "bucket": bucket_case(dpd=days_oldest_a, oldest="a.oldest_unpaid", grace="p.grace_days"),
        "penalty_then": PENALTY_THEN.format(
            greatest=d["greatest"],
            least=d["least"],
            as_of_minus_grace=d["as_of_minus_grace"],
            days_due=d["days"].format(col="i.due_date"),
            days_in_year=DAYS_IN_YEAR,
        ),
    }
    return sql.format(**fragments)


@dataclass(frozen=True)
class SnapshotResult:
    as_of: date
    source: str  # "current" or "replay"
    loans: int  # rows written: loans past due on the date


def month_end(day: date) -> date:
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def month_ends(*, up_to: date, count: int) -> list[date]:
    """The ``count`` last month ends on or before ``up_to``, oldest first."""
    if count < 0:
        raise ValueError("count must not be negative")
    ends: list[date] = []
    day = month_end(up_to)
    if day > up_to:
        day = day.replace(day=1) - timedelta(days=1)
    while len(ends) < count:
        ends.append(day)
        day = day.replace(day=1) - timedelta(days=1)
    return ends[::-1]


def bucket_snapshot_take(
    *, as_of: date, today: date | None = None, source: str | None = None
) -> SnapshotResult:
    """Replace the snapshot of ``as_of`` with every active delinquent loan's state on that date.

    ``source``: "current" copies the loans' delinquency columns (the state of the last refresh),
    "replay" recomputes the state as of the date from the schedules and allocations. By default a
    snapshot of ``today`` (the business date, default today in TIME_ZONE) is copied and one of an
    earlier date replayed; a date after today is refused (``ValueError``).
    """
    today = today or timezone.localdate()
    if source is None:
        source = "current" if as_of == today else "replay"
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
    if as_of > today:
        raise ValueError(f"{as_of} is after the business date {today}: there is no state to take yet")
    vendor = connection.vendor
    if vendor not in _DIALECT:
        raise NotImplementedError(f"bucket snapshots have no SQL for {vendor}")
    params = {"as_of": as_of.isoformat(), "cap": settings.PENALTY_ANNUAL_COST_CAP}
    sql = render(CURRENT_SQL if source == "current" else REPLAY_SQL, vendor)
    with transaction.atomic(), connection.cursor() as cursor:
        if vendor == "postgresql" and source == "replay":
            for statement in POSTGRES_SETTINGS:
                cursor.execute(statement)
        cursor.execute(DELETE_SQL, params)
        cursor.execute(sql, params)
        written = cursor.rowcount
    return SnapshotResult(as_of=as_of, source=source, loans=written)
