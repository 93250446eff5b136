"""The dashboards' selectors: each aggregates in SQL and returns plain rows.

Every selector takes a ``DashboardFilter``: a period (``start``..``end``, both included), the
currency (amounts are never added across currencies, so the dashboards show one at a time), the
teams in scope (``None``: the whole book, including loans no team holds) and optionally a partner.

Scope by team: a loan is a team's while one of the team's cases is open on it, judged by the case's
current team (cases do not keep a history of their teams). Cure rates are judged by stage instead,
since a case changes team when it changes stage: a team's figures cover the stages it works and the
cases it holds now.

Written for PostgreSQL at a million loans: each query reads through an index or a bounded range
(open cases, a period's payments of those cases, a few snapshot dates), never a loop over rows in
Python, and the number of queries does not depend on the data.
"""

from __future__ import annotations

from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import Count, Exists, F, OuterRef, Q, Sum
from django.db.models.functions import TruncWeek
from django.utils import timezone

from debt_collections.contacts import OUTCOME_FLAGS
from debt_collections.models import Case, CaseContact, PromiseToPay, StageChoices, TeamMember
from loans.delinquency import BUCKET_FLOORS
from loans.models import BucketSnapshot, Loan, LoanProduct
from loans.snapshots import month_ends

CENT = Decimal("0.01")
ZERO = Decimal("0.00")

# The delinquent buckets, in ladder order ("current" is not arrears).
PAST_DUE_BUCKETS: tuple[str, ...] = tuple(name for _floor, name in BUCKET_FLOORS[1:])
# Where a loan in arrears at one snapshot date is at the next: current (active, no snapshot row), a
# bucket, or closed.
PAID_OFF, WRITTEN_OFF, CURRENT = "paid_off", "written_off", "current"
ROLL_STATES: tuple[str, ...] = (CURRENT, *PAST_DUE_BUCKETS, PAID_OFF, WRITTEN_OFF)

# A case that closed as one of these was cured: the borrower caught up (cured), paid the loan off,
# or performs on a restructured schedule. Settled, written off and legal-concluded are not cures.
CURE_REASONS: tuple[str, ...] = (
    Case.CloseReason.CURED,
    Case.CloseReason.PAID_OFF,
    Case.CloseReason.RESTRUCTURED_PERFORMING,
)

# Outcomes where the borrower was reached and spoke (what ``contact_log`` records as right party).
RIGHT_PARTY_OUTCOMES: tuple[str, ...] = tuple(
    o for o, (_c, _a, right_party) in OUTCOME_FLAGS.items() if right_party
)

PROMISE_STATUSES: tuple[str, ...] = (
    PromiseToPay.Status.KEPT,
    PromiseToPay.Status.PARTLY_KEPT,
    PromiseToPay.Status.BROKEN,
    PromiseToPay.Status.OPEN,
    PromiseToPay.Status.CANCELLED,
)

MAX_PERIOD_DAYS = 366


@dataclass(frozen=True)
class DashboardFilter:
    start: date
    end: date
    currency: str
    team_ids: tuple[int, ...] | None = None  # None: the whole book; (): nothing (no team in scope)
    partner_id: int | None = None
    months: int = 6  # snapshot dates: those since the ``months``-th month end before ``end``
    # Whether the book has loans in more than one currency; with one, the currency needs no filter
    # (and no join to the loan table).
    several_currencies: bool = True

    @property
    def nothing_in_scope(self) -> bool:
        return self.team_ids == ()

    @property
    def days(self) -> list[date]:
        return [self.start + timedelta(days=n) for n in range((self.end - self.start).days + 1)]

    @property
    def snapshots_since(self) -> date:
        return month_ends(up_to=self.end, count=self.months)[0]

    def period_bounds(self) -> tuple[datetime, datetime]:
        """The period as aware datetimes in the current time zone: [start 00:00, the day after end)."""
        zone = timezone.get_current_timezone()
        return (
            datetime.combine(self.start, time.min, tzinfo=zone),
            datetime.combine(self.end + timedelta(days=1), time.min, tzinfo=zone),
        )


@contextmanager
def reporting_session():
    """One read transaction for a page's aggregates, tuned on PostgreSQL: JIT compilation costs these
    queries more than it saves, and their hash tables and sorts (a few hundred thousand rows) want more
    than the default 4 MB of memory to stay off disk. ``SET LOCAL`` ends with the transaction."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL jit = off; SET LOCAL work_mem = '64MB'")
        yield


def currencies_in_use() -> list[str]:
    """The currencies of the book (a loan's currency is its product's): a read of the product table."""
    return list(LoanProduct.objects.order_by("currency").values_list("currency", flat=True).distinct())


def _money(value) -> Decimal:
    """A sum from the database as a Decimal to the cent (SQLite's arithmetic is binary floating point)."""
    if value is None:
        return ZERO
    return Decimal(str(value)).quantize(CENT)


def _ratio(part: int, whole: int) -> Decimal | None:
    return (Decimal(part) / Decimal(whole)).quantize(Decimal("0.0001")) if whole else None


def _db_date(day: date):
    return connection.ops.adapt_datefield_value(day)


# --- scope, as ORM conditions and as SQL ------------------------------------------------------------


def _case_scope(f: DashboardFilter, case: str = "") -> Q:
    """Conditions on a case (reached through ``case``, e.g. ``"case__"``) for the filter's scope."""
    q = Q()
    if f.team_ids is not None:
        q &= Q(**{f"{case}team_id__in": f.team_ids})
    if f.partner_id is not None:
        q &= Q(**{f"{case}loan__partner_id": f.partner_id})
    if f.several_currencies:
        q &= Q(**{f"{case}loan__currency": f.currency})
    return q


def _in(column: str, values) -> tuple[str, list]:
    values = list(values)
    return f"{column} IN ({', '.join(['%s'] * len(values))})", values


def _sql_case_scope(f: DashboardFilter, *, case: str = "c", loan: str | None = "l") -> tuple[list[str], list]:
    """SQL conditions (and their parameters) for the scope on a case ``case`` and its loan ``loan``
    (``loan`` None: the caller filters currency and partner elsewhere)."""
    where, params = [], []
    if f.team_ids is not None:
        sql, values = _in(f"{case}.team_id", f.team_ids)
        where.append(sql)
        params += values
    if loan is not None:
        if f.partner_id is not None:
            where.append(f"{loan}.partner_id = %s")
            params.append(f.partner_id)
        if f.several_currencies:
            where.append(f"{loan}.currency = %s")
            params.append(f.currency)
    return where, params


def _cursor_rows(sql: str, params) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


# --- 1. arrears ageing ------------------------------------------------------------------------------


@dataclass(frozen=True)
class AgeingRow:
    as_of: date
    bucket: str
    loans: int
    overdue: Decimal


def arrears_ageing(f: DashboardFilter, *, today: date) -> list[AgeingRow]:
    """Active loans in arrears today, per bucket: how many and the amount overdue (from the loans'
    delinquency columns, through the partial index on non-current buckets). Every bucket, zeros
    included, in ladder order."""
    if f.nothing_in_scope:
        return [AgeingRow(today, bucket, 0, ZERO) for bucket in PAST_DUE_BUCKETS]
    loans = Loan.objects.filter(status=Loan.Status.ACTIVE).exclude(bucket="current")
    if f.several_currencies:
        loans = loans.filter(currency=f.currency)
    if f.partner_id is not None:
        loans = loans.filter(partner_id=f.partner_id)
    if f.team_ids is not None:
        loans = loans.filter(
            Exists(
                Case.objects.filter(loan_id=OuterRef("pk"), status=Case.Status.OPEN, team_id__in=f.team_ids)
            )
        )
    totals = {
        row["bucket"]: row
        for row in loans.values("bucket").annotate(
            loans=Count("id"),
            overdue=Sum(
                F("overdue_principal") + F("overdue_interest") + F("overdue_fee") + F("overdue_penalty")
            ),
        )
    }
    return [
        AgeingRow(
            today,
            bucket,
            totals.get(bucket, {}).get("loans", 0),
            _money(totals.get(bucket, {}).get("overdue")),
        )
        for bucket in PAST_DUE_BUCKETS
    ]


def snapshot_dates(f: DashboardFilter) -> list[date]:
    """The snapshot dates the trend and roll rates use: in each month from the filter's earliest
    month end to its end, the latest snapshot date (the month end, unless it was taken another day).
    Of the whole book, whatever the scope: roll rates pair consecutive ones."""
    dates = (
        BucketSnapshot.objects.filter(as_of__gte=f.snapshots_since, as_of__lte=f.end)
        .values_list("as_of", flat=True)
        .distinct()
        .order_by("as_of")
    )
    latest: dict[tuple[int, int], date] = {}
    for day in dates:
        latest[(day.year, day.month)] = day
    return sorted(latest.values())


def arrears_trend(f: DashboardFilter, dates: list[date] | None = None) -> list[AgeingRow]:
    """Loans in arrears per bucket at each snapshot date (``snapshot_dates``), from ``BucketSnapshot``.
    With a team scope, a loan counts at a date if a case of the team was open on it then."""
    dates = snapshot_dates(f) if dates is None else dates
    if f.nothing_in_scope or not dates:
        return []
    snapshots = BucketSnapshot.objects.filter(as_of__in=dates)
    if f.several_currencies:
        snapshots = snapshots.filter(loan__currency=f.currency)
    if f.partner_id is not None:
        snapshots = snapshots.filter(loan__partner_id=f.partner_id)
    if f.team_ids is not None:
        open_then = Case.objects.filter(
            Q(closed_on__isnull=True) | Q(closed_on__gte=OuterRef("as_of")),
            loan_id=OuterRef("loan_id"),
            opened_on__lte=OuterRef("as_of"),
            team_id__in=f.team_ids,
        )
        snapshots = snapshots.filter(Exists(open_then))
    rows = (
        snapshots.values("as_of", "bucket")
        .annotate(loans=Count("id"), overdue=Sum("overdue_total"))
        .order_by()
    )
    order = {bucket: i for i, bucket in enumerate(PAST_DUE_BUCKETS)}
    result = [AgeingRow(r["as_of"], r["bucket"], r["loans"], _money(r["overdue"])) for r in rows]
    return sorted(result, key=lambda r: (r.as_of, order.get(r.bucket, 99)))


# --- 2. roll rates ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RollRow:
    from_date: date
    to_date: date
    from_bucket: str
    to_state: str  # "current", a bucket, "paid_off" or "written_off"
    loans: int
    share: Decimal | None  # of the loans in ``from_bucket`` at ``from_date``


# One pass over the snapshot rows of the dates, grouped by loan: each loan's bucket at each date (b0,
# b1, ...) and, with a team scope, whether a case of the team was open on it then (in0, in1, ...).
# Where a loan has a bucket at one date and none at the next, the loan tells whether it had closed by
# then (``closed``: the index of the first pair by whose second date it was closed, times two, plus one
# if written off); only those loans are read, unless a currency or partner filter joins them anyway.
# The loans are then counted per combination: a few hundred rows, turned into moves in Python.
ROLL_SQL = """
SELECT {columns}, COUNT(*)
FROM (
    SELECT s.loan_id, {per_loan}
    FROM loans_bucketsnapshot AS s {joins}
    WHERE {where}
    GROUP BY s.loan_id
) AS x
GROUP BY {positions}
"""

ROLL_TEAM_LOANS = """s.loan_id IN (
    SELECT c.loan_id FROM debt_collections_case AS c
    WHERE c.team_id IN ({teams}) AND c.opened_on <= {last}
      AND (c.closed_on IS NULL OR c.closed_on >= %(d0)s))"""

ROLL_TEAM_JOIN = """
    LEFT JOIN debt_collections_case AS c ON c.loan_id = s.loan_id AND c.team_id IN ({teams})
        AND c.opened_on <= s.as_of AND (c.closed_on IS NULL OR c.closed_on >= s.as_of)"""

# Only for the loans missing from a date after one they were in (the text is ours; values are bound).
ROLL_CLOSED_LOOKUP = "CASE WHEN {gaps} THEN (SELECT {code} FROM loans_loan AS l WHERE l.id = x.loan_id) END"


def roll_rates(f: DashboardFilter, dates: list[date] | None = None) -> list[RollRow]:
    """For each pair of consecutive snapshot dates, where the loans of each bucket at the first date
    are at the second: in a bucket (their snapshot row), current (active, no row), paid off or
    written off (closed by then). Shares are of the loans in the bucket at the first date. With a team
    scope, a loan counts from a date if a case of the team was open on it then."""
    dates = snapshot_dates(f) if dates is None else dates
    if f.nothing_in_scope or len(dates) < 2:
        return []
    n, params = len(dates), {}
    for i, day in enumerate(dates):
        params[f"d{i}"] = _db_date(day)
    per_loan = [f"MAX(CASE WHEN s.as_of = %(d{i})s THEN s.bucket END) AS b{i}" for i in range(n)]
    columns = [f"x.b{i}" for i in range(n)]
    joins, where = "", [f"s.as_of IN ({', '.join(f'%(d{i})s' for i in range(n))})"]
    if f.team_ids is not None:
        params.update({f"t{j}": team_id for j, team_id in enumerate(f.team_ids)})
        teams = ", ".join(f"%(t{j})s" for j in range(len(f.team_ids)))
        joins += ROLL_TEAM_JOIN.format(teams=teams)
        # Only the loans the teams held at some time between the dates (all their rows, though: where
        # a loan goes next counts wherever it went).
        where.append(ROLL_TEAM_LOANS.format(teams=teams, last=f"%(d{n - 1})s"))
        per_loan += [
            f"MAX(CASE WHEN s.as_of = %(d{i})s AND c.id IS NOT NULL THEN 1 ELSE 0 END) AS in{i}"
            for i in range(n - 1)
        ]
        columns += [f"x.in{i}" for i in range(n - 1)]
    whens = " ".join(f"WHEN l.closed_on <= %(d{i + 1})s THEN {2 * i}" for i in range(n - 1))
    closed_code = f"(CASE {whens} END) + (CASE WHEN l.status = 'written_off' THEN 1 ELSE 0 END)"
    if f.several_currencies or f.partner_id is not None:
        joins = " JOIN loans_loan AS l ON l.id = s.loan_id" + joins
        if f.several_currencies:
            where.append("l.currency = %(currency)s")
            params["currency"] = f.currency
        if f.partner_id is not None:
            where.append("l.partner_id = %(partner)s")
            params["partner"] = f.partner_id
        per_loan.append(f"MAX({closed_code}) AS closed")
        columns.append("x.closed")
    else:
        gaps = " OR ".join(f"(x.b{i} IS NOT NULL AND x.b{i + 1} IS NULL)" for i in range(n - 1))
        columns.append(ROLL_CLOSED_LOOKUP.format(gaps=gaps, code=closed_code))
    sql = ROLL_SQL.format(
        columns=", ".join(columns),
        per_loan=", ".join(per_loan),
        joins=joins,
        where=" AND ".join(where),
        positions=", ".join(str(k + 1) for k in range(len(columns))),
    )
    moves: dict[tuple[int, str, str], int] = defaultdict(int)
    for row in _cursor_rows(sql, params):
        buckets, closed, count = row[:n], row[-2], row[-1]
        in_scope = row[n : 2 * n - 1] if f.team_ids is not None else (1,) * (n - 1)
        for i in range(n - 1):
            if buckets[i] is None or not in_scope[i]:
                continue
            to = buckets[i + 1]
            if to is None:
                closed_by_then = closed is not None and closed // 2 <= i
                to = (WRITTEN_OFF if closed % 2 else PAID_OFF) if closed_by_then else CURRENT
            moves[(i, buckets[i], to)] += count
    totals: dict[tuple[int, str], int] = defaultdict(int)
    for (i, bucket, _to), count in moves.items():
        totals[(i, bucket)] += count
    bucket_order = {b: k for k, b in enumerate(PAST_DUE_BUCKETS)}
    state_order = {state: k for k, state in enumerate(ROLL_STATES)}
    ordered = sorted(
        moves.items(), key=lambda m: (m[0][0], bucket_order.get(m[0][1], 99), state_order[m[0][2]])
    )
    return [
        RollRow(dates[i], dates[i + 1], bucket, to, count, _ratio(count, totals[(i, bucket)]))
        for (i, bucket, to), count in ordered
    ]


def _as_date(value) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


@dataclass(frozen=True)
class RollMatrix:
    from_date: date
    to_date: date
    # from bucket -> (loans at the first date, {to state: (loans, share)})
    rows: dict[str, tuple[int, dict[str, tuple[int, Decimal | None]]]]


def roll_matrix(rows: list[RollRow]) -> RollMatrix | None:
    """The latest pair's matrix, every bucket and state present (zeros included)."""
    if not rows:
        return None
    latest = max(r.from_date for r in rows)
    mine = [r for r in rows if r.from_date == latest]
    to_date = mine[0].to_date
    matrix = {}
    for bucket in PAST_DUE_BUCKETS:
        cells = {r.to_state: (r.loans, r.share) for r in mine if r.from_bucket == bucket}
        total = sum(n for n, _share in cells.values())
        matrix[bucket] = (total, {state: cells.get(state, (0, _ratio(0, total))) for state in ROLL_STATES})
    return RollMatrix(latest, to_date, matrix)


@dataclass(frozen=True)
class RollForward:
    to_date: date
    bucket: str
    loans: int  # in the bucket at the previous date
    rolled: int  # of them, in a worse bucket (or written off) at ``to_date``
    rate: Decimal | None


def roll_forward(rows: list[RollRow]) -> list[RollForward]:
    """Per pair and bucket (the last bucket has nowhere worse to go but write-off): the share of the
    loans that rolled to a worse bucket or were written off."""
    rank = {bucket: i for i, bucket in enumerate(PAST_DUE_BUCKETS)}
    loans: dict[tuple, int] = defaultdict(int)
    rolled: dict[tuple, int] = defaultdict(int)
    for r in rows:
        key = (r.to_date, r.from_bucket)
        loans[key] += r.loans
        worse = r.to_state == WRITTEN_OFF or (r.to_state in rank and rank[r.to_state] > rank[r.from_bucket])
        if worse:
            rolled[key] += r.loans
    result = []
    for to_date in sorted({key[0] for key in loans}):
        for bucket in PAST_DUE_BUCKETS:
            key = (to_date, bucket)
            if key in loans:
                result.append(
                    RollForward(to_date, bucket, loans[key], rolled[key], _ratio(rolled[key], loans[key]))
                )
    return result


# --- 3. cure rate by stage --------------------------------------------------------------------------


@dataclass(frozen=True)
class CureRow:
    stage: str
    cases: int  # cases in the stage at some time in the period
    cured: int  # of them, closed as cured from that stage in the period
    rate: Decimal | None


CURE_SQL = """
WITH scoped AS (
    SELECT c.id, c.team_id
    FROM debt_collections_case AS c {loan_join}
    WHERE c.opened_on <= %s AND (c.closed_on IS NULL OR c.closed_on >= %s) {case_where}
),
stays AS (
    SELECT t.case_id, t.to_stage AS stage,
           LEAD(t.as_of) OVER w AS left_on,
           LEAD(t.to_stage) OVER w AS next_stage,
           LEAD(t.close_reason) OVER w AS next_reason
    FROM debt_collections_stagetransition AS t
    WHERE t.case_id IN (SELECT id FROM scoped) AND t.as_of <= %s
    WINDOW w AS (PARTITION BY t.case_id ORDER BY t.at, t.id)
)
SELECT s.stage,
       COUNT(DISTINCT s.case_id),
       COUNT(DISTINCT CASE WHEN s.next_stage = '' AND {cured} AND s.left_on >= %s THEN s.case_id END)
FROM stays AS s JOIN scoped AS sc ON sc.id = s.case_id
WHERE s.stage <> '' AND (s.left_on IS NULL OR s.left_on >= %s) {team_where}
GROUP BY s.stage
"""


def cure_rates(f: DashboardFilter, *, team_stages: tuple[str, ...] = ()) -> list[CureRow]:
    """Per stage: the cases that were in it at some time in the period (from their stage transitions)
    and the share of them that closed as cured (``CURE_REASONS``) straight from that stage within the
    period. With a team scope, a stay counts if the case's team is in scope now or the stage is one a
    team in scope works (``team_stages``). Every stage, in ladder order."""
    if f.nothing_in_scope:
        return [CureRow(stage, 0, 0, None) for stage in StageChoices.values]
    case_where, case_params = _sql_case_scope(replace(f, team_ids=None), loan="l")
    loan_join = "JOIN loans_loan AS l ON l.id = c.loan_id" if case_where else ""
    cured_sql, cured_params = _in("s.next_reason", CURE_REASONS)
    team_where, team_params = "", []
    if f.team_ids is not None:
        teams_sql, teams_params = _in("sc.team_id", f.team_ids)
        if team_stages:
            stages_sql, stages_params = _in("s.stage", team_stages)
            team_where, team_params = f"AND ({teams_sql} OR {stages_sql})", teams_params + stages_params
        else:
            team_where, team_params = f"AND {teams_sql}", teams_params
    sql = CURE_SQL.format(
        loan_join=loan_join,
        case_where="".join(f" AND {w}" for w in case_where),
        cured=cured_sql,
        team_where=team_where,
    )
    start, end = _db_date(f.start), _db_date(f.end)
    params = [end, start, *case_params, end, *cured_params, start, start, *team_params]
    found = {stage: (cases, cured) for stage, cases, cured in _cursor_rows(sql, params)}
    rows = []
    for stage in StageChoices.values:
        cases, cured = found.get(stage, (0, 0))
        rows.append(CureRow(stage, cases, cured, _ratio(cured, cases)))
    return rows


# --- 4. promise kept rate ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PromiseWeek:
    week: date  # the Monday
    counts: dict[str, int]  # status -> promises due that week
    promised: Decimal
    kept_rate: Decimal | None  # kept / (kept + partly kept + broken): of the promises decided


def promise_outcomes(f: DashboardFilter) -> list[PromiseWeek]:
    """Promises to pay due in the period (by their pay-by date), per week: how many were kept,
    partly kept, broken, are still open or were cancelled with their case."""
    if f.nothing_in_scope:
        return []
    rows = (
        PromiseToPay.objects.filter(
            _case_scope(f, "case__"), promised_date__gte=f.start, promised_date__lte=f.end
        )
        .annotate(week=TruncWeek("promised_date"))
        .values("week", "status")
        .annotate(n=Count("id"), promised=Sum("amount"))
        .order_by("week")
    )
    weeks: dict[date, dict] = {}
    for row in rows:
        week = _as_date(row["week"])
        entry = weeks.setdefault(week, {"counts": dict.fromkeys(PROMISE_STATUSES, 0), "promised": ZERO})
        entry["counts"][row["status"]] = row["n"]
        entry["promised"] += _money(row["promised"])
    result = []
    for week in sorted(weeks):
        counts = weeks[week]["counts"]
        decided = counts["kept"] + counts["partly_kept"] + counts["broken"]
        result.append(PromiseWeek(week, counts, weeks[week]["promised"], _ratio(counts["kept"], decided)))
    return result


# --- 5. amount collected by day ---------------------------------------------------------------------

# Posted payments valued in the period on loans with a case open on the value date, counted once
# (a loan has at most one open case, but one closing and another opening on the same day would
# both match). Driven by the cases (open ones through their index, a period's closed ones) and the
# payments' (loan, value date) index, not by a scan of every payment.
COLLECTED_SQL = """
SELECT x.{group}, COUNT(*), ROUND(SUM(x.amount), 2)
FROM (
    SELECT DISTINCT p.id, p.value_date, p.amount, c.assignee_id
    FROM debt_collections_case AS c
    JOIN loans_payment AS p ON p.loan_id = c.loan_id
    WHERE c.opened_on <= %s AND (c.closed_on IS NULL OR c.closed_on >= %s)
      AND p.status = 'posted' AND p.currency = %s
      AND p.value_date >= %s AND p.value_date <= %s
      AND p.value_date >= c.opened_on AND (c.closed_on IS NULL OR p.value_date <= c.closed_on)
      {where}
) AS x
GROUP BY x.{group}
"""


def _collected(f: DashboardFilter, group: str) -> list[tuple]:
    where, params = _sql_case_scope(f, loan=None)
    if f.partner_id is not None:
        where.append("p.partner_id = %s")
        params.append(f.partner_id)
    sql = COLLECTED_SQL.format(group=group, where="".join(f" AND {w}" for w in where))
    start, end = _db_date(f.start), _db_date(f.end)
    return _cursor_rows(sql, [end, start, f.currency, start, end, *params])


@dataclass(frozen=True)
class CollectedDay:
    day: date
    payments: int
    amount: Decimal


def collected_by_day(f: DashboardFilter) -> list[CollectedDay]:
    """Posted (not reversed) payments by value date, on loans that had a case open that day; every
    day of the period, zeros included."""
    found = (
        {} if f.nothing_in_scope else {_as_date(d): (n, _money(a)) for d, n, a in _collected(f, "value_date")}
    )
    return [CollectedDay(day, *found.get(day, (0, ZERO))) for day in f.days]


# --- 6. collector productivity ----------------------------------------------------------------------


@dataclass(frozen=True)
class CollectorRow:
    user_id: int
    name: str
    attempts: int
    right_party: int
    promises: int
    promised: Decimal
    collected: Decimal

    @property
    def right_party_rate(self) -> Decimal | None:
        return _ratio(self.right_party, self.attempts)


def collector_productivity(f: DashboardFilter) -> list[CollectorRow]:
    """Per collector, in the period, on the cases in scope: contacts logged (attempts) and how many
    reached the borrower (right-party contacts), promises recorded, and the amount collected on the
    cases assigned to them (a payment counts for the case's assignee now, the case being the one open
    on the loan on the payment's value date). Every member of a team in scope is listed, zeros
    included; busiest first."""
    if f.nothing_in_scope:
        return []
    since, until = f.period_bounds()
    contacts = {
        row["created_by_id"]: (row["attempts"], row["right_party"])
        for row in CaseContact.objects.filter(
            _case_scope(f, "case__"), created_at__gte=since, created_at__lt=until
        )
        .values("created_by_id")
        .annotate(attempts=Count("id"), right_party=Count("id", filter=Q(outcome__in=RIGHT_PARTY_OUTCOMES)))
        .order_by()
    }
    promises = {
        row["created_by_id"]: row
        for row in PromiseToPay.objects.filter(
            _case_scope(f, "case__"), made_on__gte=f.start, made_on__lte=f.end
        )
        .values("created_by_id")
        .annotate(n=Count("id"), promised=Sum("amount"))
        .order_by()
    }
    collected = {user_id: _money(amount) for user_id, _n, amount in _collected(f, "assignee_id") if user_id}
    members = TeamMember.objects.all()
    if f.team_ids is not None:
        members = members.filter(team_id__in=f.team_ids)
    people = get_user_model().objects.filter(
        Q(pk__in=set(contacts) | set(promises) | set(collected)) | Q(pk__in=members.values("user_id"))
    )
    rows = [
        CollectorRow(
            user_id=user.pk,
            name=user.get_full_name() or user.get_username(),
            attempts=contacts.get(user.pk, (0, 0))[0],
            right_party=contacts.get(user.pk, (0, 0))[1],
            promises=promises.get(user.pk, {}).get("n", 0),
            promised=_money(promises.get(user.pk, {}).get("promised")),
            collected=collected.get(user.pk, ZERO),
        )
        for user in people
    ]
    return sorted(rows, key=lambda r: (-r.collected, -r.attempts, r.name))
