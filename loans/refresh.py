"""The delinquency refresh: penalty interest and each loan's delinquency state, set-based.

For a set of loans or the whole book, as of a business date:

* penalty interest on every late installment with principal unpaid is recomputed from the days
  overdue (``loans.delinquency.penalty_due``: never incremented, so a rerun is a no-op);
* each loan's oldest unpaid due date, overdue amounts per component, outstanding principal and
  bucket are recomputed from its current schedule (``UPDATE ... FROM (SELECT ... GROUP BY loan_id)``);
* only rows whose figures change are written, so the cost of writing follows what changed.

On PostgreSQL it is one statement: the aggregate over the installments is read once, the penalty
update touches only installments of loans that have late principal, and the loan update adds the
penalty deltas to the aggregate (data-modifying CTEs all see one snapshot). SQLite, the embedded
development default, has no data-modifying CTEs: there the penalty update runs first and the loan
update second. Both give the same figures; the tests check them against the pure-Python rules.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from django.conf import settings
from django.db import connection, transaction

from loans.delinquency import BUCKET_FLOORS, DAYS_IN_YEAR

_DIALECT = {
    "postgresql": {
        "days": "(%(as_of)s::date - {col})",
        "greatest": "GREATEST",
        "least": "LEAST",
        "distinct": "IS DISTINCT FROM",
        "as_of_minus_grace": "(%(as_of)s::date - p.grace_days)",
        "ids": "= ANY(%(ids)s)",
    },
    "sqlite": {
        "days": "CAST(julianday(%(as_of)s) - julianday({col}) AS INTEGER)",
        "greatest": "MAX",
        "least": "MIN",
        "distinct": "IS NOT",
        "as_of_minus_grace": "date(%(as_of)s, '-' || p.grace_days || ' days')",
        "ids": "IN (SELECT value FROM json_each(%(ids)s))",
    },
}

# Penalty on one installment (aliases: i installment, l loan, p product): the product's penalty
# rate, capped so that contract rate + penalty rate <= the cost cap, on the unpaid principal,
# for the days since the due date; plus what a restructuring carried over onto the row, less what
# it waived; never below what was paid of it already (so never below 0).
# ``loans.delinquency.installment_penalty_due`` is the same rule in Python.
_NEW_PENALTY = """{greatest}(i.penalty_paid, ROUND(i.penalty_carried + ROUND(
        (i.principal_due - i.principal_paid)
        * {least}(p.penalty_rate, {greatest}(0, %(cap)s - l.annual_rate))
        * {days_i} / {days_in_year}.0, 2) - i.penalty_waived, 2))"""

# Which installments accrue penalty now: late past grace, principal unpaid, loan active.
_ACCRUES = """NOT i.superseded
    AND i.principal_paid < i.principal_due
    AND i.due_date < %(as_of)s
    AND i.due_date < {as_of_minus_grace}
    AND p.penalty_rate > 0
    AND l.status = 'active'"""

# Per loan, from its current installments (the penalty as stored).
_AGGREGATE = """SELECT i.loan_id,
        MIN(i.due_date) FILTER (WHERE i.principal_paid + i.interest_paid + i.fee_paid + i.penalty_paid
                                      < i.principal_due + i.interest_due + i.fee_due + i.penalty_due)
            AS oldest_unpaid,
        -- ROUND keeps SQLite's REAL arithmetic on the cent; PostgreSQL's numeric is exact anyway.
        ROUND(COALESCE(SUM(i.principal_due - i.principal_paid) {late}, 0), 2) AS overdue_principal,
        ROUND(COALESCE(SUM(i.interest_due - i.interest_paid) {late}, 0), 2) AS overdue_interest,
        ROUND(COALESCE(SUM(i.fee_due - i.fee_paid) {late}, 0), 2) AS overdue_fee,
        ROUND(COALESCE(SUM(i.penalty_due - i.penalty_paid) {late}, 0), 2) AS overdue_penalty,
        ROUND(SUM(i.principal_due - i.principal_paid), 2) AS outstanding_principal
    FROM loans_installment AS i
    WHERE NOT i.superseded {loan_filter}
    GROUP BY i.loan_id"""

_SET_LOAN = """oldest_unpaid_due_date = a.oldest_unpaid,
    overdue_principal = a.overdue_principal,
    overdue_interest = a.overdue_interest,
    overdue_fee = a.overdue_fee,
    overdue_penalty = {overdue_penalty},
    outstanding_principal = a.outstanding_principal,
    bucket = {bucket}"""

_LOAN_CHANGED = """(l.oldest_unpaid_due_date {distinct} a.oldest_unpaid
       OR l.overdue_principal {distinct} a.overdue_principal
       OR l.overdue_interest {distinct} a.overdue_interest
       OR l.overdue_fee {distinct} a.overdue_fee
       OR l.overdue_penalty {distinct} {overdue_penalty}
       OR l.outstanding_principal {distinct} a.outstanding_principal
       OR l.bucket {distinct} {bucket})"""

# {a} is the per-loan aggregate: a CTE for a set of loans, or for the whole book a temporary table
# filled by a parallel query first (an UPDATE never runs in parallel; CREATE TABLE AS does).
POSTGRES_SQL = """
WITH {a_cte}
candidates AS (
    SELECT i.id, i.loan_id, i.penalty_due AS old_penalty, {new_penalty} AS new_penalty
    FROM {a} AS a
    JOIN loans_loan AS l ON l.id = a.loan_id
    JOIN loans_loanproduct AS p ON p.id = l.product_id
    JOIN loans_installment AS i ON i.loan_id = a.loan_id
    WHERE a.overdue_principal > 0 AND {accrues} {loan_bound} {installment_bound}
),
repriced AS (
    UPDATE loans_installment AS i
    SET penalty_due = c.new_penalty
    FROM candidates AS c
    WHERE i.id = c.id AND c.new_penalty IS DISTINCT FROM c.old_penalty
    RETURNING c.loan_id, c.new_penalty - c.old_penalty AS delta
),
deltas AS (
    SELECT loan_id, SUM(delta) AS delta FROM repriced GROUP BY loan_id
),
changed AS (
    UPDATE loans_loan AS l
    SET {set_loan}
    FROM {a} AS a LEFT JOIN deltas AS d ON d.loan_id = a.loan_id, loans_loanproduct AS p
    WHERE l.id = a.loan_id AND p.id = l.product_id AND {loan_changed} {loan_bound}
    RETURNING 1
)
SELECT (SELECT count(*) FROM repriced), (SELECT count(*) FROM changed)
"""

POSTGRES_AGGREGATE_TABLE = "delinquency_refresh_aggregate"
POSTGRES_FILL_TABLE_SQL = f"CREATE TEMPORARY TABLE {POSTGRES_AGGREGATE_TABLE} ON COMMIT DROP AS {{aggregate}}"

SQLITE_PENALTY_SQL = """
UPDATE loans_installment AS i
SET penalty_due = {new_penalty}
FROM loans_loan AS l, loans_loanproduct AS p
WHERE i.loan_id = l.id AND p.id = l.product_id AND {accrues} {loan_filter}
  AND i.penalty_due IS NOT {new_penalty}
"""

SQLITE_LOAN_SQL = """
UPDATE loans_loan AS l
SET {set_loan}
FROM ({aggregate}) AS a, loans_loanproduct AS p
WHERE l.id = a.loan_id AND p.id = l.product_id AND {loan_changed}
"""


_COMPOUND_FRAGMENTS = (
    ("new_penalty", _NEW_PENALTY),
    ("accrues", _ACCRUES),
    ("aggregate", _AGGREGATE),
    ("set_loan", _SET_LOAN),
    ("loan_changed", _LOAN_CHANGED),
)


def _bucket_sql(dpd: str) -> str:
    """The bucket as a SQL CASE over days past due, built from the one ladder in loans.delinquency.

    Grace days delay the bucket, not the count.
    """
    (_, current), *ladder = BUCKET_FLOORS
    whens = [f"WHEN a.oldest_unpaid IS NULL OR {dpd} <= p.grace_days THEN '{current}'"]
    for (_, name), (next_floor, _) in zip(ladder, ladder[1:], strict=False):
        whens.append(f"WHEN {dpd} < {next_floor} THEN '{name}'")
    return "(CASE " + " ".join(whens) + f" ELSE '{ladder[-1][1]}' END)"


def _loan_filter(filtered: bool | str, dialect: dict) -> str:
    if filtered is True:
        return f"AND i.loan_id {dialect['ids']}"
    return f"AND {filtered}" if filtered else ""


def render(sql: str, vendor: str, *, filtered: bool | str, aggregate_table: str | None = None) -> str:
    """Fill a template for one database; the ``%(name)s`` parameters stay for the driver.

    ``filtered``: False for the whole book, True for the loans in ``%(ids)s``, or a SQL condition
    on ``i.loan_id`` (a range, a table of ids). ``aggregate_table``: read the per-loan aggregate from
    this table instead of a CTE.
    """
    d = _DIALECT[vendor]
    # On PostgreSQL the aggregate saw the penalties before the same statement repriced them.
    overdue_penalty = "a.overdue_penalty"
    if vendor == "postgresql":
        overdue_penalty += " + COALESCE(d.delta, 0)"
    fragments = {
        "greatest": d["greatest"],
        "least": d["least"],
        "distinct": d["distinct"],
        "as_of_minus_grace": d["as_of_minus_grace"],
        "days_i": d["days"].format(col="i.due_date"),
        "days_in_year": DAYS_IN_YEAR,
        "late": "FILTER (WHERE i.due_date < %(as_of)s)",
        "loan_filter": _loan_filter(filtered, d),
        "overdue_penalty": overdue_penalty,
        "bucket": _bucket_sql(d["days"].format(col="a.oldest_unpaid")),
        "a": aggregate_table or "a",
        # With the aggregate in a table, the loans it covers lie between its least and greatest id:
        # saying so keeps the joins from walking the loan and installment tables from the first id.
        "loan_bound": "AND l.id BETWEEN %(min_id)s AND %(max_id)s" if aggregate_table else "",
        "installment_bound": "AND i.loan_id BETWEEN %(min_id)s AND %(max_id)s" if aggregate_table else "",
    }
    # Compound fragments are built from the simple ones above, in this order.
    for key, template in _COMPOUND_FRAGMENTS:
        fragments[key] = template.format(**fragments)
    fragments["a_cte"] = "" if aggregate_table else "a AS MATERIALIZED ({aggregate}),".format(**fragments)
    return sql.format(**fragments)


# Session settings for the refresh's transaction on PostgreSQL (the benchmark gives its reference
# query the same): JIT compilation of one big statement costs more than it saves, and the hash joins
# of the loan table want more than the default 4 MB to stay in memory.
POSTGRES_SETTINGS = ("SET LOCAL jit = off", "SET LOCAL work_mem = '64MB'")


@dataclass(frozen=True)
class RefreshResult:
    installments_repriced: int
    loans_changed: int


def delinquency_refresh(
    *,
    as_of: date,
    loan_ids: Iterable[int] | None = None,
    loan_table: str | None = None,
    id_range: tuple[int, int | None] | None = None,
) -> RefreshResult:
    """Recompute penalty interest and the delinquency state of some loans (or all) as of a date.

    The loans: all of them by default, or those in ``loan_ids``, or those whose ids are in the
    ``loan_id`` column of the table ``loan_table`` (a temporary table of the caller's), or those
    with ``first <= id < end`` for ``id_range=(first, end)`` (``end`` None: no upper bound).
    Set-based SQL, no loop over loans; only rows whose figures change are written.
    """
    vendor = connection.vendor
    if vendor not in _DIALECT:
        raise NotImplementedError(f"delinquency_refresh has no SQL for {vendor}")
    params: dict = {"as_of": as_of.isoformat(), "cap": settings.PENALTY_ANNUAL_COST_CAP}
    if sum(x is not None for x in (loan_ids, loan_table, id_range)) > 1:
        raise ValueError("give at most one of loan_ids, loan_table and id_range")
    filtered: bool | str = False
    if loan_ids is not None:
        ids = sorted({int(i) for i in loan_ids})
        if not ids:
            return RefreshResult(0, 0)
        params["ids"] = ids if vendor == "postgresql" else json.dumps(ids)
        filtered = True
    elif loan_table is not None:
        if not loan_table.isidentifier():
            raise ValueError(f"not a table name: {loan_table!r}")
        filtered = f"i.loan_id IN (SELECT loan_id FROM {loan_table})"
    elif id_range is not None:
        params["first_id"], end = int(id_range[0]), id_range[1]
        filtered = "i.loan_id >= %(first_id)s"
        if end is not None:
            params["end_id"] = int(end)
            filtered += " AND i.loan_id < %(end_id)s"
    with transaction.atomic(), connection.cursor() as cursor:
        if vendor == "postgresql":
            for statement in POSTGRES_SETTINGS:
                cursor.execute(statement)
            table = None
            if filtered is not True:
                # The whole book or a range or table of loans: the aggregate goes into an analysed
                # temporary table first (by a parallel query for the whole book), so the planner
                # knows how many loans it has; a short list of ids (a payment's loan) stays a CTE.
                table = POSTGRES_AGGREGATE_TABLE
                # ON COMMIT DROP does not fire when the caller's transaction goes on (a savepoint).
                cursor.execute(f"DROP TABLE IF EXISTS {table}")
                cursor.execute(render(POSTGRES_FILL_TABLE_SQL, vendor, filtered=filtered), params)
                cursor.execute(f"ANALYZE {table}")
                cursor.execute(f"SELECT MIN(loan_id), MAX(loan_id) FROM {table}")
                params["min_id"], params["max_id"] = cursor.fetchone()
            if table and params["min_id"] is None:
                repriced = changed = 0
            else:
                cursor.execute(render(POSTGRES_SQL, vendor, filtered=filtered, aggregate_table=table), params)
                repriced, changed = cursor.fetchone()
            if table:
                cursor.execute(f"DROP TABLE {table}")
        else:
            cursor.execute(render(SQLITE_PENALTY_SQL, vendor, filtered=filtered), params)
            repriced = cursor.rowcount
            cursor.execute(render(SQLITE_LOAN_SQL, vendor, filtered=filtered), params)
            changed = cursor.rowcount
    return RefreshResult(installments_repriced=repriced, loans_changed=changed)
