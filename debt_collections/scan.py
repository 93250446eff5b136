"""The nightly collections scan, set-based: no Python loop over loans or cases.

A run is one business date (``ScanRun``), split into chunks of loan ids (``ScanChunk``). Each chunk
is one transaction that

1. picks its candidate loans: late or in a delinquent bucket, or with an open case (``--full``:
   every loan of the chunk is refreshed first);
2. refreshes their delinquency figures (``loans.refresh.delinquency_refresh``);
3. queues pre-due reminders for loans at risk, decides open promises to pay (kept or broken);
4. plans every case's move in a temporary table (``scan_plan``): open, escalate, step down, close,
   recommend legal referral, new priority, new team; assigns the cases that need a collector to the
   least-loaded active member of the stage's team;
5. writes the cases, the transitions, the history rows and the outbox events from the plan, and marks
   the chunk done.

A chunk that fails rolls back whole and is simply run again; a done chunk is never run twice, so a
rerun of a finished date is a no-op and a crashed run resumes where it stopped. On PostgreSQL an
advisory lock keeps two scans from overlapping, and a lock per chunk lets any number of Celery
workers share one run. The single-case services (``debt_collections.services``) write through the
same ``apply_plan``, so a person's move and the scan's leave the same records.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime

from django.db import connection, transaction
from django.db.models import Count, Max, Min, Sum
from django.utils import timezone

from compliance.audit import audit_record
from compliance.models import ESCALATION_HOLDS, AuditEventType, BorrowerFlag
from debt_collections.models import (
    Case,
    CaseHold,
    CollectionPolicy,
    OutboxEvent,
    PromiseToPay,
    ScanChunk,
    ScanRun,
    StageTransition,
    Team,
    TeamMember,
)
from debt_collections.notices import queue_stage_notices
from debt_collections.stages import SCAN_STAGES, priority_sql, stage_rank_sql
from loans.models import Loan, Payment
from loans.refresh import delinquency_refresh

DEFAULT_CHUNK_SIZE = 100_000

# Advisory lock keys (two-int form): the whole scan, one chunk, and the assignment step.
LOCK_SPACE_SCAN = 730_101
LOCK_SPACE_CHUNK = 730_102
LOCK_SPACE_ASSIGN = 730_103


class ScanBusy(Exception):
    """Another scan holds the scan lock."""


class ScanRefused(Exception):
    """The scan was asked for something it must not do (a back-dated date without force)."""


_DIALECT = {
    "postgresql": {
        "as_of": "CAST(%(as_of)s AS date)",
        "dpd": "COALESCE(GREATEST(%(as_of)s::date - {col}, 0), 0)",
        "date_plus": "(%(as_of)s::date + {days})",
        "least": "LEAST",
        "greatest": "GREATEST",
        "distinct": "IS DISTINCT FROM",
        "json": "json_build_object",
        "floor_int": "FLOOR({})::integer",
        "true": "TRUE",
        "false": "FALSE",
    },
    "sqlite": {
        "as_of": "%(as_of)s",
        "dpd": "COALESCE(MAX(CAST(julianday(%(as_of)s) - julianday({col}) AS INTEGER), 0), 0)",
        "date_plus": "date(%(as_of)s, '+' || {days} || ' days')",
        "least": "MIN",
        "greatest": "MAX",
        "distinct": "IS NOT",
        "json": "json_object",
        "floor_int": "CAST({} AS INTEGER)",
        "true": "1",
        "false": "0",
    },
}


def _d() -> dict:
    try:
        return _DIALECT[connection.vendor]
    except KeyError:
        raise NotImplementedError(f"the collections scan has no SQL for {connection.vendor}") from None


def _t(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


# --- the plan: one row per loan looked at, or per case moved by a person ------------------------

PLAN_TABLE = "scan_plan"

# action: open | up | down | close | none
PLAN_COLUMNS = """
    loan_id bigint PRIMARY KEY,
    partner_id bigint NOT NULL,
    loan_ref varchar(100) NOT NULL,
    case_id bigint,
    action varchar(10) NOT NULL,
    from_stage varchar(20),
    new_stage varchar(20),
    close_reason varchar(30) NOT NULL DEFAULT '',
    reason varchar(300) NOT NULL,
    dpd integer NOT NULL,
    priority integer NOT NULL,
    old_team_id bigint,
    new_team_id bigint,
    old_assignee_id bigint,
    new_assignee_id bigint,
    assign boolean NOT NULL,
    old_next_action date,
    new_next_action date,
    old_recommended date,
    new_recommended date
"""


def _create_temp(cursor, name: str, columns: str) -> None:
    # ON COMMIT DROP does not fire while a caller's transaction goes on (a savepoint), so drop first.
    cursor.execute(f"DROP TABLE IF EXISTS {name}")
    suffix = " ON COMMIT DROP" if connection.vendor == "postgresql" else ""
    cursor.execute(f"CREATE TEMPORARY TABLE {name} ({columns}){suffix}")


def _drop_temp(cursor, *names: str) -> None:
    for name in names:
        cursor.execute(f"DROP TABLE IF EXISTS {name}")


def _policy_join(d: dict) -> str:
    """Joins giving each loan ``l`` its policy's thresholds: its product's policy, else the default."""
    policy = _t(CollectionPolicy)
    return f"""LEFT JOIN {policy} AS pp ON pp.product_id = l.product_id
        JOIN {policy} AS dp ON dp.product_id IS NULL"""


def _threshold(name: str) -> str:
    return f"COALESCE(pp.{name}_dpd, dp.{name}_dpd)"


def _target_stage_sql(dpd: str) -> str:
    whens = " ".join(
        f"WHEN {dpd} >= {_threshold(stage.value)} THEN '{stage.value}'" for stage in reversed(SCAN_STAGES)
    )
    return f"(CASE {whens} END)"


def _plan_scan_sql(d: dict) -> str:
    """INSERT INTO scan_plan the scan's decision for every candidate loan (``scan_candidates``)."""
    dpd = d["dpd"].format(col="l.oldest_unpaid_due_date")
    target = _target_stage_sql(dpd)
    qualifies = f"(l.status = 'active' AND l.bucket <> 'current' AND {dpd} >= {_threshold('early_warning')})"
    recommend = f"({dpd} >= {_threshold('legal_referral')})"
    # A hold in force, an open promise or a borrower flag that holds escalation (dispute, bankruptcy,
    # ...) freezes it: one join, not a subquery per use.
    holds = ", ".join(f"'{kind}'" for kind in ESCALATION_HOLDS)
    freezes = f"""(
        SELECT h.case_id FROM {_t(CaseHold)} AS h
        WHERE h.released_at IS NULL AND (h.until IS NULL OR h.until >= %(as_of)s)
        UNION
        SELECT pr.case_id FROM {_t(PromiseToPay)} AS pr WHERE pr.status = 'open'
        UNION
        SELECT hc.id FROM {_t(Case)} AS hc
        JOIN {_t(Loan)} AS hl ON hl.id = hc.loan_id
        JOIN {_t(BorrowerFlag)} AS bf ON bf.borrower_id = hl.borrower_id
        WHERE hc.status = 'open' AND bf.released_at IS NULL AND (bf.until IS NULL OR bf.until >= %(as_of)s)
          AND bf.kind IN ({holds})
    )"""
    base = f"""
        SELECT l.id AS loan_id, l.partner_id, l.external_ref AS loan_ref, l.status AS loan_status,
               c.id AS case_id, c.stage AS from_stage, c.team_id AS old_team_id,
               c.assignee_id AS old_assignee_id, c.next_action_date AS old_next_action,
               c.referral_recommended_on AS old_recommended, COALESCE(c.broken_promises, 0) AS broken,
               {dpd} AS dpd, {target} AS target, {qualifies} AS qualifies, {recommend} AS recommend,
               (f.case_id IS NOT NULL) AS frozen,
               l.overdue_principal + l.overdue_interest + l.overdue_fee + l.overdue_penalty AS overdue
        FROM scan_candidates AS s
        JOIN {_t(Loan)} AS l ON l.id = s.loan_id
        {_policy_join(d)}
        LEFT JOIN {_t(Case)} AS c ON c.loan_id = l.id AND c.status = 'open'
        LEFT JOIN {freezes} AS f ON f.case_id = c.id
        -- The chunk's range again: it lets the joins start at the chunk, not at the first loan.
        WHERE l.id >= %(first_id)s AND l.id < %(end_id)s"""
    from_rank, target_rank = stage_rank_sql("b.from_stage"), stage_rank_sql("b.target")
    action = f"""(CASE
            WHEN b.case_id IS NULL THEN (CASE WHEN b.qualifies THEN 'open' ELSE 'none' END)
            WHEN NOT b.qualifies THEN
                (CASE WHEN b.from_stage <> 'legal_referral' OR b.loan_status <> 'active' THEN 'close'
                      ELSE 'none' END)
            WHEN b.from_stage = 'legal_referral' THEN 'none'
            WHEN {target_rank} > {from_rank} AND NOT b.frozen THEN 'up'
            WHEN {target_rank} < {from_rank} THEN 'down'
            ELSE 'none' END)"""
    decided = f"""
        SELECT b.*, {action} AS action FROM ({base}) AS b"""
    new_stage = "(CASE WHEN x.action IN ('open', 'up', 'down') THEN x.target ELSE x.from_stage END)"
    new_team = "(CASE WHEN x.action IN ('open', 'up', 'down') THEN t.id ELSE x.old_team_id END)"
    priority = priority_sql(
        stage=new_stage, dpd="x.dpd", overdue="x.overdue", broken="x.broken",
        least=d["least"], greatest=d["greatest"], floor_int=d["floor_int"],
    )  # fmt: skip
    return f"""
    INSERT INTO {PLAN_TABLE} (loan_id, partner_id, loan_ref, case_id, action, from_stage, new_stage,
        close_reason, reason, dpd, priority, old_team_id, new_team_id, old_assignee_id, new_assignee_id,
        assign, old_next_action, new_next_action, old_recommended, new_recommended)
    SELECT x.loan_id, x.partner_id, x.loan_ref, x.case_id, x.action, x.from_stage, {new_stage},
        (CASE WHEN x.action <> 'close' THEN ''
              WHEN x.loan_status = 'paid_off' THEN 'paid_off'
              WHEN x.loan_status = 'written_off' THEN 'written_off'
              ELSE 'cured' END),
        (CASE WHEN x.action = 'close' AND x.loan_status = 'active' THEN 'scan: loan cured'
              WHEN x.action = 'close' THEN 'scan: loan ' || x.loan_status
              ELSE 'scan: ' || x.dpd || ' days past due' END),
        x.dpd,
        (CASE WHEN x.action = 'close' THEN 0 ELSE {priority} END),
        x.old_team_id, {new_team}, x.old_assignee_id, x.old_assignee_id,
        ({new_team} IS NOT NULL AND x.action <> 'close'
            AND ({new_team} {d["distinct"]} x.old_team_id OR x.old_assignee_id IS NULL)),
        x.old_next_action,
        (CASE WHEN x.action IN ('open', 'up', 'down') THEN {d["as_of"]} ELSE x.old_next_action END),
        x.old_recommended,
        (CASE WHEN x.action = 'close' OR x.from_stage = 'legal_referral' THEN x.old_recommended
              WHEN x.qualifies AND x.recommend AND x.old_recommended IS NOT NULL THEN x.old_recommended
              WHEN x.qualifies AND x.recommend AND NOT x.frozen THEN {d["as_of"]}
              ELSE NULL END)
    FROM ({decided}) AS x
    LEFT JOIN {_t(Team)} AS t ON t.stage = x.target
    WHERE x.action <> 'none' OR x.case_id IS NOT NULL"""


def _slots_sql(d: dict) -> str:
    """Least-loaded assignment, set-based: the exact result of giving the plan's cases, highest
    priority first, one by one to the active team member with the fewest open cases (ties: lowest
    user id). Each member's candidate "slots" are levels load+1, load+2, ...; the cases take the
    lowest slots in order. The water level never passes max(load) + ceil(m / members), which bounds
    the slots generated."""
    case, member = _t(Case), _t(TeamMember)
    return f"""
    WITH RECURSIVE
    need AS (
        SELECT new_team_id AS team_id, COUNT(*) AS m FROM {PLAN_TABLE} WHERE assign GROUP BY new_team_id
    ),
    loads AS (
        SELECT c.assignee_id AS user_id, COUNT(*) AS n FROM {case} AS c
        WHERE c.status = 'open' AND c.assignee_id IS NOT NULL
          AND c.id NOT IN (SELECT case_id FROM {PLAN_TABLE} WHERE assign AND case_id IS NOT NULL)
        GROUP BY c.assignee_id
    ),
    members AS (
        SELECT tm.team_id, tm.user_id, COALESCE(ld.n, 0) AS load, need.m,
               MAX(COALESCE(ld.n, 0)) OVER (PARTITION BY tm.team_id) AS max_load,
               COUNT(*) OVER (PARTITION BY tm.team_id) AS size
        FROM {member} AS tm
        JOIN need ON need.team_id = tm.team_id
        JOIN auth_user AS u ON u.id = tm.user_id
        LEFT JOIN loads AS ld ON ld.user_id = tm.user_id
        WHERE tm.is_active AND u.is_active
    ),
    bounds AS (SELECT team_id, user_id, load, max_load - load + (m + size - 1) / size AS k_max FROM members),
    seq (k) AS (
        SELECT 1 UNION ALL SELECT k + 1 FROM seq WHERE k < (SELECT COALESCE(MAX(k_max), 0) FROM bounds)
    ),
    slots AS (
        SELECT b.team_id, b.user_id,
               ROW_NUMBER() OVER (PARTITION BY b.team_id ORDER BY b.load + s.k, b.user_id) AS pos
        FROM bounds AS b JOIN seq AS s ON s.k <= b.k_max
    )
    INSERT INTO scan_slots (team_id, pos, user_id) SELECT team_id, pos, user_id FROM slots"""


# The slots are a keyed table of their own: joined as CTEs on (team, position), both numbered by
# window functions, PostgreSQL misjudged the sizes and merge-joined on the team alone (12 s of a
# full scan of a million loans); against the table's primary key it is a few milliseconds.
ASSIGN_SQL = f"""
    INSERT INTO scan_assign (loan_id, user_id)
    SELECT w.loan_id, s.user_id
    FROM (
        SELECT loan_id, new_team_id AS team_id,
               ROW_NUMBER() OVER (PARTITION BY new_team_id ORDER BY priority DESC, loan_id) AS pos
        FROM {PLAN_TABLE} WHERE assign
    ) AS w
    JOIN scan_slots AS s ON s.team_id = w.team_id AND s.pos = w.pos"""


def _assign(cursor, d: dict) -> None:
    cursor.execute(f"SELECT COUNT(*) FROM {PLAN_TABLE} WHERE assign")
    if not cursor.fetchone()[0]:
        return
    if connection.vendor == "postgresql":
        # Loads must be read after other chunks' assignments commit: serialise this step to commit.
        cursor.execute("SELECT pg_advisory_xact_lock(%s, 0)", [LOCK_SPACE_ASSIGN])
    _create_temp(
        cursor,
        "scan_slots",
        "team_id bigint, pos bigint, user_id bigint NOT NULL, PRIMARY KEY (team_id, pos)",
    )
    cursor.execute(_slots_sql(d))
    if connection.vendor == "postgresql":
        cursor.execute("ANALYZE scan_slots")
    _create_temp(cursor, "scan_assign", "loan_id bigint PRIMARY KEY, user_id bigint NOT NULL")
    cursor.execute(ASSIGN_SQL)
    cursor.execute(
        f"""UPDATE {PLAN_TABLE} SET new_assignee_id = a.user_id FROM scan_assign AS a
        WHERE {PLAN_TABLE}.loan_id = a.loan_id"""
    )
    _drop_temp(cursor, "scan_assign", "scan_slots")


def _history_columns(model) -> list[str]:
    historical = model.history.model
    kept = {f.attname for f in historical._meta.concrete_fields}
    return [f.column for f in model._meta.concrete_fields if f.attname in kept]


def _history_insert_sql(model, *, join: str, where: str, history_type: str, reason: str, user: str) -> str:
    """INSERT ... SELECT of django-simple-history rows for the rows of ``model`` (alias ``r``)."""
    columns = _history_columns(model)
    quoted = ", ".join(connection.ops.quote_name(c) for c in columns)
    selected = ", ".join(f"r.{connection.ops.quote_name(c)}" for c in columns)
    return f"""
    INSERT INTO {_t(model.history.model)} ({quoted}, history_date, history_type, history_change_reason,
        history_user_id)
    SELECT {selected}, %(now)s, {history_type}, {reason}, {user}
    FROM {_t(model)} AS r {join} WHERE {where}"""


def apply_plan(cursor, *, as_of: date, now: datetime, actor_id: int | None, chunk_id: int | None) -> dict:
    """Write what ``scan_plan`` says: cases, assignments, transitions, history rows, outbox events.

    The one writer of stage changes, for the scan (``actor_id`` None, ``chunk_id`` set) and for a
    person (``actor_id`` set). Returns the counts by action.
    """
    d = _d()
    params = {"as_of": as_of.isoformat(), "now": now, "actor": actor_id, "chunk": chunk_id}
    _assign(cursor, d)
    case = _t(Case)
    cursor.execute(
        f"""INSERT INTO {case} (loan_id, status, stage, stage_entered_on, team_id, assignee_id, priority,
            next_action_date, referral_recommended_on, broken_promises, opened_on, closed_on, close_reason,
            created_at, updated_at)
        SELECT loan_id, 'open', new_stage, {d["as_of"]}, new_team_id, new_assignee_id, priority,
            new_next_action, new_recommended, 0, {d["as_of"]}, NULL, '', %(now)s, %(now)s
        FROM {PLAN_TABLE} WHERE action = 'open'""",
        params,
    )
    cursor.execute(
        f"""UPDATE {PLAN_TABLE} SET case_id = c.id FROM {case} AS c
        WHERE {PLAN_TABLE}.action = 'open' AND c.loan_id = {PLAN_TABLE}.loan_id AND c.status = 'open'"""
    )
    distinct = d["distinct"]
    # Rows worth a history entry: a move, or a new assignee or team (priority alone is not history).
    historic = f"""(p.action <> 'none' OR p.new_assignee_id {distinct} p.old_assignee_id
        OR p.new_team_id {distinct} p.old_team_id OR p.new_recommended {distinct} p.old_recommended)"""
    cursor.execute(
        f"""UPDATE {case} AS c SET
            status = CASE WHEN p.action = 'close' THEN 'closed' ELSE 'open' END,
            stage = p.new_stage,
            stage_entered_on = CASE WHEN p.action IN ('up', 'down') THEN {d["as_of"]}
                                    ELSE c.stage_entered_on END,
            closed_on = CASE WHEN p.action = 'close' THEN {d["as_of"]} ELSE NULL END,
            close_reason = p.close_reason,
            team_id = p.new_team_id,
            assignee_id = p.new_assignee_id,
            priority = p.priority,
            next_action_date = p.new_next_action,
            referral_recommended_on = p.new_recommended,
            updated_at = %(now)s
        FROM {PLAN_TABLE} AS p
        WHERE c.id = p.case_id AND p.action <> 'open'
          AND ({historic} OR c.priority <> p.priority
               OR c.next_action_date {distinct} p.new_next_action)""",
        params,
    )
    who = "CAST(%(actor)s AS bigint)"
    cursor.execute(
        f"""INSERT INTO {_t(StageTransition)} (case_id, from_stage, to_stage, close_reason, at, as_of,
            actor_id, scan_chunk_id, reason)
        SELECT case_id, COALESCE(from_stage, ''), CASE WHEN action = 'close' THEN '' ELSE new_stage END,
            close_reason, %(now)s, {d["as_of"]}, {who}, CAST(%(chunk)s AS bigint), reason
        FROM {PLAN_TABLE} WHERE action <> 'none'""",
        params,
    )
    cursor.execute(
        _history_insert_sql(
            Case,
            join=f"JOIN {PLAN_TABLE} AS p ON p.case_id = r.id",
            where=historic,
            history_type="CASE WHEN p.action = 'open' THEN '+' ELSE '~' END",
            reason="SUBSTR(p.reason, 1, 100)",
            user=who,
        ),
        params,
    )
    # A case closed because the loan was cured or paid off: an open promise on it was kept. Closed
    # for another reason (restructured, settled, written off): the promise goes with the case.
    promise = _t(PromiseToPay)
    cursor.execute(
        f"""UPDATE {promise}
        SET status = (CASE WHEN p.close_reason IN ('cured', 'paid_off') THEN 'kept' ELSE 'cancelled' END),
            resolved_on = {d["as_of"]},
            paid_amount = COALESCE((
                SELECT SUM(pay.amount) FROM {_t(Payment)} AS pay
                WHERE pay.loan_id = p.loan_id AND pay.status = 'posted'
                  AND pay.value_date >= {promise}.made_on AND pay.value_date <= %(as_of)s), 0)
        FROM {PLAN_TABLE} AS p
        WHERE {promise}.status = 'open' AND {promise}.case_id = p.case_id AND p.action = 'close'""",
        params,
    )
    j = d["json"]
    payload = f"""{j}('case_id', p.case_id, 'loan_id', p.loan_id, 'loan_ref', p.loan_ref,
        'as_of', CAST(%(as_of)s AS TEXT), 'stage', p.new_stage, 'from_stage', p.from_stage,
        'days_past_due', p.dpd, 'close_reason', p.close_reason)"""
    events = (
        ("case.opened", "p.action = 'open'"),
        ("case.stage_changed", "p.action IN ('up', 'down')"),
        ("case.closed", "p.action = 'close'"),
        ("case.referral_recommended", "p.new_recommended IS NOT NULL AND p.old_recommended IS NULL"),
    )
    for event_type, condition in events:
        cursor.execute(
            f"""INSERT INTO {_t(OutboxEvent)}
                (event_type, partner_id, subject_id, payload, created_at, attempts)
            SELECT '{event_type}', p.partner_id, p.case_id, {payload}, %(now)s, 0
            FROM {PLAN_TABLE} AS p WHERE {condition} ORDER BY p.case_id""",
            params,
        )
    queue_stage_notices(cursor, d=d, as_of=as_of, now=now)  # a stage's notices, on entering it
    cursor.execute(
        f"""SELECT
            SUM(CASE WHEN action = 'open' THEN 1 ELSE 0 END), SUM(CASE WHEN action = 'up' THEN 1 ELSE 0 END),
            SUM(CASE WHEN action = 'down' THEN 1 ELSE 0 END),
            SUM(CASE WHEN action = 'close' THEN 1 ELSE 0 END),
            SUM(CASE WHEN new_recommended IS NOT NULL AND old_recommended IS NULL THEN 1 ELSE 0 END)
        FROM {PLAN_TABLE}"""
    )
    opened, up, down, closed, recommended = (int(v or 0) for v in cursor.fetchone())
    return {
        "cases_opened": opened,
        "escalated": up,
        "deescalated": down,
        "closed": closed,
        "referrals_recommended": recommended,
    }


# --- one chunk -----------------------------------------------------------------------------------


def _candidates_sql() -> str:
    """Loans of the chunk the scan looks at. Incremental: late, in a delinquent bucket, or with an
    open case; everything else is current and, as payments refresh their own loan, stays so until a
    due date passes (which makes it late). ``--full`` refreshes every loan of the chunk first and
    then takes the same set."""
    in_range = "l.id >= %(first_id)s AND l.id < %(end_id)s"
    return f"""
    INSERT INTO scan_candidates (loan_id)
    SELECT l.id FROM {_t(Loan)} AS l
    WHERE {in_range}
      AND ((l.status = 'active' AND l.oldest_unpaid_due_date < %(as_of)s) OR l.bucket <> 'current')
    UNION
    SELECT c.loan_id FROM {_t(Case)} AS c
    WHERE c.status = 'open' AND c.loan_id >= %(first_id)s AND c.loan_id < %(end_id)s"""


def _reminders_sql(d: dict) -> str:
    """Pre-due reminders for loans at risk: one per loan and due date, ``pre_due_reminder_days`` ahead."""
    from debt_collections.models import DueReminder
    from loans.models import Installment

    days = "COALESCE(pp.pre_due_reminder_days, dp.pre_due_reminder_days)"
    unpaid = """(i.principal_due + i.interest_due + i.fee_due + i.penalty_due
                 - i.principal_paid - i.interest_paid - i.fee_paid - i.penalty_paid)"""
    return f"""
    INSERT INTO {_t(DueReminder)} (loan_id, due_date, amount_due, queued_on)
    SELECT i.loan_id, i.due_date, {unpaid}, {d["as_of"]}
    FROM {_t(Loan)} AS l
    {_policy_join(d)}
    JOIN {_t(Installment)} AS i ON i.loan_id = l.id AND NOT i.superseded
    WHERE l.at_risk AND l.status = 'active' AND l.id >= %(first_id)s AND l.id < %(end_id)s
      AND i.due_date > %(as_of)s AND i.due_date <= {d["date_plus"].format(days=days)} AND {unpaid} > 0
    ON CONFLICT (loan_id, due_date) DO NOTHING"""


def _promises(cursor, d: dict, params: dict) -> tuple[int, int]:
    """Decide the open promises of the chunk's loans, with the policy's tolerances.

    Paid: posted payments on the loan valued from the day of the promise to ``as_of``. Kept as soon
    as that reaches the total less the tolerance amount. Failed when an instalment's date plus the
    tolerance days has passed and what was paid is short of the instalments up to it (less the
    tolerance amount): partly kept if anything was paid, else broken. A failed promise counts on the
    case (priority rises; escalation, frozen only by an open promise, resumes in this very scan) and
    leaves a ``promise.broken`` event naming the first instalment missed.
    """
    from debt_collections.models import PromiseInstalment

    promise, case, instalment = _t(PromiseToPay), _t(Case), _t(PromiseInstalment)
    _create_temp(
        cursor,
        "scan_promises",
        """promise_id bigint PRIMARY KEY, case_id bigint NOT NULL, outcome varchar(12) NOT NULL,
        paid numeric(18, 2) NOT NULL, missed_number integer, missed_due_date date,
        missed_amount numeric(18, 2)""",
    )
    overdue = d["dpd"].format(col="i.due_date")  # days since the instalment's date, 0 before it
    # ROUND: exact on PostgreSQL; on SQLite it removes the float noise of summed amounts.
    short_of = "ROUND(op.paid - ({target} - op.tolerance_amount), 2) < 0"
    cursor.execute(
        f"""WITH op AS (
            SELECT pr.id, pr.case_id, pr.amount,
                COALESCE(pp.promise_tolerance_amount, dp.promise_tolerance_amount) AS tolerance_amount,
                COALESCE(pp.promise_tolerance_days, dp.promise_tolerance_days) AS tolerance_days,
                COALESCE((
                    SELECT SUM(pay.amount) FROM {_t(Payment)} AS pay
                    WHERE pay.loan_id = l.id AND pay.status = 'posted'
                      AND pay.value_date >= pr.made_on AND pay.value_date <= %(as_of)s), 0) AS paid
            FROM {promise} AS pr
            JOIN {case} AS c ON c.id = pr.case_id
            JOIN scan_candidates AS s ON s.loan_id = c.loan_id
            JOIN {_t(Loan)} AS l ON l.id = c.loan_id
            {_policy_join(d)}
            WHERE pr.status = 'open'
        ),
        plan AS (
            SELECT i.promise_id, i.number, i.due_date,
                SUM(i.amount) OVER (PARTITION BY i.promise_id ORDER BY i.number) AS due_so_far
            FROM {instalment} AS i JOIN op ON op.id = i.promise_id
        ),
        missed AS (
            SELECT op.id AS promise_id, MIN(i.number) AS number
            FROM op JOIN plan AS i ON i.promise_id = op.id
            WHERE {overdue} > op.tolerance_days AND {short_of.format(target="i.due_so_far")}
            GROUP BY op.id
        )
        INSERT INTO scan_promises (promise_id, case_id, outcome, paid, missed_number, missed_due_date,
            missed_amount)
        SELECT op.id, op.case_id,
            CASE WHEN NOT {short_of.format(target="op.amount")} THEN 'kept'
                 WHEN op.paid > 0 THEN 'partly_kept' ELSE 'broken' END,
            ROUND(op.paid, 2), m.number, i.due_date, i.due_so_far
        FROM op
        LEFT JOIN missed AS m ON m.promise_id = op.id
        LEFT JOIN plan AS i ON i.promise_id = m.promise_id AND i.number = m.number
        WHERE NOT {short_of.format(target="op.amount")} OR m.number IS NOT NULL""",
        params,
    )
    cursor.execute(
        f"""UPDATE {promise} SET status = sp.outcome, resolved_on = {d["as_of"]}, paid_amount = sp.paid
        FROM scan_promises AS sp WHERE {promise}.id = sp.promise_id""",
        params,
    )
    cursor.execute(
        f"""UPDATE {case} SET broken_promises = broken_promises + 1, updated_at = %(now)s
        FROM scan_promises AS sp WHERE {case}.id = sp.case_id AND sp.outcome <> 'kept'""",
        params,
    )
    cursor.execute(
        _history_insert_sql(
            PromiseToPay,
            join="JOIN scan_promises AS sp ON sp.promise_id = r.id",
            where="1 = 1",
            history_type="'~'",
            reason="'scan: promise ' || REPLACE(sp.outcome, '_', ' ')",
            user="NULL",
        ),
        params,
    )
    payload = f"""{d["json"]}('promise_id', r.id, 'case_id', r.case_id, 'loan_id', c.loan_id,
        'loan_ref', l.external_ref, 'status', sp.outcome, 'amount', CAST(r.amount AS TEXT),
        'paid_amount', CAST(sp.paid AS TEXT), 'promised_date', CAST(r.promised_date AS TEXT),
        'missed_instalment', sp.missed_number, 'missed_due_date', CAST(sp.missed_due_date AS TEXT),
        'due_by_then', CAST(sp.missed_amount AS TEXT), 'as_of', CAST(%(as_of)s AS TEXT))"""
    cursor.execute(
        f"""INSERT INTO {_t(OutboxEvent)} (event_type, partner_id, subject_id, payload, created_at, attempts)
        SELECT 'promise.broken', l.partner_id, r.id, {payload}, %(now)s, 0
        FROM scan_promises AS sp JOIN {promise} AS r ON r.id = sp.promise_id
        JOIN {case} AS c ON c.id = r.case_id JOIN {_t(Loan)} AS l ON l.id = c.loan_id
        WHERE sp.outcome <> 'kept' ORDER BY r.id""",
        params,
    )
    cursor.execute("SELECT outcome, COUNT(*) FROM scan_promises GROUP BY outcome")
    counts = dict(cursor.fetchall())
    _drop_temp(cursor, "scan_promises")
    return counts.get("kept", 0), counts.get("partly_kept", 0) + counts.get("broken", 0)


def process_chunk(chunk_id: int) -> dict | None:
    """Run one chunk in one transaction. None when it is done already or another worker has it."""
    started = time.monotonic()
    d = _d()
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT pg_try_advisory_xact_lock(%s, %s)", [LOCK_SPACE_CHUNK, chunk_id])
            if not cursor.fetchone()[0]:
                return None
        chunk = ScanChunk.objects.select_related("run").select_for_update(of=("self",)).get(pk=chunk_id)
        if chunk.status == ScanChunk.Status.DONE:
            return None
        run = chunk.run
        now = timezone.now()
        params = {
            "as_of": run.as_of.isoformat(),
            "now": now,
            "first_id": chunk.first_loan_id,
            "end_id": chunk.end_loan_id if chunk.end_loan_id is not None else 2**62,
        }
        counts = dict.fromkeys(ScanChunk.COUNTERS, 0)
        _create_temp(cursor, "scan_candidates", "loan_id bigint PRIMARY KEY")
        if run.full:
            result = delinquency_refresh(as_of=run.as_of, id_range=(chunk.first_loan_id, chunk.end_loan_id))
            cursor.execute(_candidates_sql(), params)
            cursor.execute(
                f"SELECT COUNT(*) FROM {_t(Loan)} AS l WHERE l.id >= %(first_id)s AND l.id < %(end_id)s",
                params,
            )
            counts["loans_refreshed"] = cursor.fetchone()[0]
        else:
            cursor.execute(_candidates_sql(), params)
            if connection.vendor == "postgresql":
                cursor.execute("ANALYZE scan_candidates")
            result = delinquency_refresh(as_of=run.as_of, loan_table="scan_candidates")
            cursor.execute("SELECT COUNT(*) FROM scan_candidates")
            counts["loans_refreshed"] = cursor.fetchone()[0]
        counts["loans_changed"] = result.loans_changed
        cursor.execute(_reminders_sql(d), params)
        counts["reminders_queued"] = max(cursor.rowcount, 0)
        counts["promises_kept"], counts["promises_broken"] = _promises(cursor, d, params)
        _create_temp(cursor, PLAN_TABLE, PLAN_COLUMNS)
        cursor.execute(_plan_scan_sql(d), params)
        counts.update(apply_plan(cursor, as_of=run.as_of, now=now, actor_id=None, chunk_id=chunk.id))
        _drop_temp(cursor, PLAN_TABLE, "scan_candidates")
        for name, value in counts.items():
            setattr(chunk, name, value)
        chunk.status = ScanChunk.Status.DONE
        chunk.finished_at = timezone.now()
        chunk.seconds = round(time.monotonic() - started, 3)
        chunk.save()
    return counts


# --- runs ------------------------------------------------------------------------------------------


@dataclass
class ScanSummary:
    as_of: date
    run_id: int
    status: str
    already_done: bool = False
    chunks: int = 0
    chunks_done: int = 0
    counts: dict = field(default_factory=dict)
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return {
            "as_of": self.as_of.isoformat(),
            "run_id": self.run_id,
            "status": self.status,
            "already_done": self.already_done,
            "chunks": self.chunks,
            "chunks_done": self.chunks_done,
            **self.counts,
            "seconds": round(self.seconds, 3),
        }

    def line(self) -> str:
        c = self.counts
        if self.already_done:
            head = f"Collections scan {self.as_of}: already done, nothing changed; that run:"
        elif self.status != ScanRun.Status.DONE:
            head = (
                f"Collections scan {self.as_of}: {self.chunks_done} of {self.chunks} chunks done, "
                "the rest are being run by other workers;"
            )
        else:
            head = f"Collections scan {self.as_of}:"
        return (
            f"{head} {c.get('loans_refreshed', 0)} loans refreshed ({c.get('loans_changed', 0)} changed), "
            f"{c.get('cases_opened', 0)} cases opened, {c.get('escalated', 0)} escalated, "
            f"{c.get('deescalated', 0)} de-escalated, {c.get('closed', 0)} closed, "
            f"{c.get('referrals_recommended', 0)} referrals recommended, "
            f"{c.get('promises_broken', 0)} promises broken, {c.get('reminders_queued', 0)} reminders queued "
            f"[{self.chunks} chunks, {self.seconds:.1f} s of chunk work]"
        )


def summarise(run: ScanRun, *, already_done: bool = False) -> ScanSummary:
    chunks = list(run.chunks.all())
    totals = run.chunks.aggregate(**{name: Sum(name) for name in ScanChunk.COUNTERS})
    return ScanSummary(
        as_of=run.as_of,
        run_id=run.pk,
        status=run.status,
        already_done=already_done,
        chunks=len(chunks),
        chunks_done=sum(c.status == ScanChunk.Status.DONE for c in chunks),
        counts={k: int(v or 0) for k, v in totals.items()},
        seconds=sum(c.seconds or 0 for c in chunks),
    )


@contextmanager
def scan_lock() -> Iterator[None]:
    """The session-level advisory lock that keeps two scans from overlapping (PostgreSQL).

    SQLite, the single-process development default, has no such lock; there the run's own rows
    (a running ``ScanRun`` resumes, a done one is skipped) keep a second start harmless.
    """
    if connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, 0)", [LOCK_SPACE_SCAN])
        if not cursor.fetchone()[0]:
            raise ScanBusy("a collections scan is already running")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s, 0)", [LOCK_SPACE_SCAN])


def _chunk_bounds(chunk_size: int) -> list[tuple[int, int | None]]:
    agg = Loan.objects.aggregate(first=Min("id"), last=Max("id"))
    if agg["first"] is None:
        return [(1, None)]
    first, last = agg["first"], agg["last"]
    count = Loan.objects.count()
    n = max(1, math.ceil(count / chunk_size))
    width = math.ceil((last - first + 1) / n)
    bounds = [(first + i * width, first + (i + 1) * width) for i in range(n)]
    bounds[-1] = (bounds[-1][0], None)
    return bounds


@transaction.atomic
def plan_run(
    *, as_of: date, full: bool = False, force: bool = False, chunk_size: int | None = None
) -> tuple[ScanRun, bool]:
    """The ``ScanRun`` for a date, with its chunks: new, resumed (running) or, forced, reset.

    Returns ``(run, already_done)``. Refuses a date before the latest run's unless forced.
    """
    if not CollectionPolicy.objects.filter(product__isnull=True).exists():
        raise ScanRefused("there is no default collection policy; add one in the admin first")
    latest = ScanRun.objects.order_by("-as_of").first()
    if latest and as_of < latest.as_of and not force:
        raise ScanRefused(
            f"{as_of} is before the latest scan ({latest.as_of}); a back-dated scan needs --force"
        )
    run = ScanRun.objects.select_for_update().filter(as_of=as_of).first()
    if run is not None and run.status == ScanRun.Status.DONE and not force:
        return run, True
    if run is None:
        run = ScanRun.objects.create(as_of=as_of, full=full, started_at=timezone.now())
        ScanChunk.objects.bulk_create(
            ScanChunk(run=run, number=i, first_loan_id=first, end_loan_id=end)
            for i, (first, end) in enumerate(_chunk_bounds(chunk_size or DEFAULT_CHUNK_SIZE))
        )
    elif run.status == ScanRun.Status.DONE:  # forced again: every chunk runs once more
        run.status, run.finished_at, run.full = ScanRun.Status.RUNNING, None, full
        run.attempts += 1
        run.save()
        run.chunks.update(status=ScanChunk.Status.PENDING, finished_at=None, seconds=None)
    elif full and not run.full:
        run.full = True
        run.save(update_fields=["full"])
    return run, False


def unfinished_before(as_of: date) -> list[ScanRun]:
    return list(ScanRun.objects.filter(status=ScanRun.Status.RUNNING, as_of__lt=as_of).order_by("as_of"))


@transaction.atomic
def finish_run(run_id: int) -> bool:
    """Mark the run done when every chunk is; True if it is done.

    Writes the run's one audit event: the scan's moves are transitions, counted here, not an event
    each (a person's move is an event of its own)."""
    run = ScanRun.objects.select_for_update().get(pk=run_id)
    if run.status == ScanRun.Status.DONE:
        return True
    if run.chunks.exclude(status=ScanChunk.Status.DONE).exists():
        return False
    run.status, run.finished_at = ScanRun.Status.DONE, timezone.now()
    run.save()
    totals = run.chunks.aggregate(chunks=Count("id"), **{name: Sum(name) for name in ScanChunk.COUNTERS})
    audit_record(
        event_type=AuditEventType.SCAN_RUN,
        actor=None,
        actor_label="scan",
        subject=run,
        details={
            "as_of": run.as_of,
            "full": run.full,
            "attempt": run.attempts,
            **{name: int(value or 0) for name, value in totals.items()},
        },
    )
    return True


def run_pending_chunks(run: ScanRun) -> None:
    for chunk_id in (
        run.chunks.filter(status=ScanChunk.Status.PENDING).order_by("number").values_list("id", flat=True)
    ):
        process_chunk(chunk_id)
    finish_run(run.pk)


def scan_run(
    *, as_of: date, full: bool = False, force: bool = False, chunk_size: int | None = None
) -> ScanSummary:
    """The whole scan in this process: earlier unfinished runs first (resumed), then ``as_of``.

    Raises ``ScanBusy`` when another scan holds the lock, ``ScanRefused`` for a back-dated date.
    """
    with scan_lock():
        for earlier in unfinished_before(as_of):
            run_pending_chunks(earlier)
        run, already_done = plan_run(as_of=as_of, full=full, force=force, chunk_size=chunk_size)
        if not already_done:
            run_pending_chunks(run)
        run.refresh_from_db()
        return summarise(run, already_done=already_done)
