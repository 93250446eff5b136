"""Benchmark: the browser back office's server time at scale, measured in process as a server runs it.

    .venv/bin/python bench/web.py [--loans 1000000] [--reuse] [--requests 200] [--dashboard-requests 20]
        [--pages worklist,case,supervisor,dashboards,compliance] [--warmup 10] [--keep] [--reuse-copy]

The issue's targets: with 1,000,000 loans and 80,000 open cases, the worklist and the case page answer
in under 150 ms at the 95th percentile, with a bounded number of queries per page, and the dashboards
in under 1 s. The supervisor and compliance pages have no target of their own in the issue: they are
held to the interactive pages' 150 ms.

The book is bench/api.py's template (apibench_template_<loans>: N loans x 12 installments, the full
first scan as of AS_OF, five collectors per team queue, a pool of current loans with a payment
history), built by bench/api.py's own build_template when it is missing, reused with --reuse when its
marker matches (a template some other process is still building is never touched). Each run copies
it (CREATE DATABASE ... TEMPLATE, FILE_COPY) to a database of its own and gives the copy, set-based
(INSERT ... SELECT, COPY, a few hundred service calls), the work a back office shows:

  * open cases up to 80,000 (--open-cases): current loans stop paying 1 to 4 months before AS_OF, their
    delinquency is refreshed and the scan of AS_OF is forced again (it opens and assigns their cases);
  * staff: a supervisor of the team nearest 15,000 open cases and of the restructuring desk, a second
    supervisor, a compliance officer;
  * every borrower a primary mobile (stored as "+86 138 0000 0001", with its search hash), a third an
    e-mail address, one in ten of the borrowers in collections a relative's phone;
  * 3% of the borrowers in collections hold 1 to 3 more loans (pool loans, with payments); every case
    loan gets the payment history of what it paid (one payment per installment, with its allocation),
    and 15% of the cases a payment or two in the last 60 days;
  * about four contact attempts per open case over the last 30 days (3% of the cases 40 to 120 over
    six months), each with its case contact, coded outcome and frozen compliance decision; promises
    to pay from the promise outcomes (open ones for the latest, the others kept, partly kept or
    broken), dispute holds, call-back dates; borrower flags and opt-outs; closed cases of the last
    six months (2.5% of the loans) with their transitions (cure rates);
  * override requests (pending, declined, granted), the overrides and the contacts made under them,
    flagged notes; 250,000 hash-chained audit events of the last 90 days (a valid chain);
  * restructurings and legal referrals proposed through the services (restructuring_propose,
    referral_request), a quarter rejected by the second supervisor;
  * bucket snapshots of the last six month ends: loans.snapshots.bucket_snapshot_take (source
    "current") for AS_OF; the other month ends from the installments as the seeding model has them
    paid (every installment paid on its due date or never): the replay would be wrong on this book,
    whose paid amounts have no payments for most loans.

Then VACUUM ANALYZE and CHECKPOINT, and it measures each page with Django's test Client in this
process (DEBUG off, force_login, one persistent PostgreSQL connection as with CONN_MAX_AGE, the
site's default language, zh-hans): a few warm-up requests, then --requests timed ones (dashboards
--dashboard-requests), each request's wall time from the call to the last byte, its SQL statements and
their time (an execute wrapper), and the statements of a few requests through CaptureQueriesContext.
It prints p50/p95/max, queries per request, the share of the time spent in SQL, a table of target,
p95, p95/target and verdict, and the book's facts and load average. For every page that misses: the
time in SQL and in Python, the statements that cost most per request, the EXPLAIN (ANALYZE, BUFFERS)
of the costliest read (with its slowest parameters) and a cProfile of a few requests. Everything
printed goes to bench/results/web-<timestamp>.txt as well.

Pages still being built (their view module says "to be built") are skipped with a note. The copy is
dropped at the end unless --keep; --reuse-copy measures a copy kept by an earlier run with the same
book. The clock is the real one: the book's delinquency is as of AS_OF (the scan's date), the work
(contacts, promises, payments, audit events) is dated relative to now, so days past due on the pages
count from AS_OF's oldest unpaid dates to today. WEB_BENCH_DATABASE_URL (default
postgres://postgres@127.0.0.1:5432/webbench) names the copy; it must be on API_BENCH_DATABASE_URL's
server. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import math
import os
import pstats
import random
import re
import statistics
import sys
import time
import warnings
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode, urlparse

ROOT = Path(__file__).resolve().parent.parent
# Run as a script, this file's folder comes first on sys.path, where "api" would be bench/api.py and
# not the Django app: the project root goes first instead.
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]

from bench import api as api_bench  # noqa: E402 - sets DATABASE_URL for itself; ours is set below
from bench import scan as scan_bench  # noqa: E402

API_URL = os.environ.get("API_BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/apibench")
WEB_URL = os.environ.get("WEB_BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/webbench")
os.environ["DATABASE_URL"] = WEB_URL
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "collections_site.settings")
os.environ["DEBUG"] = "false"
os.environ["CONN_MAX_AGE"] = "60"
os.environ["ALLOWED_HOSTS"] = "testserver"
os.environ.setdefault("LOG_LEVEL", "WARNING")
# whitenoise warns that STATIC_ROOT is missing until collectstatic has run; nothing here serves from it.
warnings.filterwarnings("ignore", message="No directory at")

AS_OF = api_bench.AS_OF
TZ = "Asia/Shanghai"
RESULTS = ROOT / "bench" / "results"
PAGES = ("worklist", "case", "supervisor", "dashboards", "compliance")

# Targets: the issue's, in milliseconds at the 95th percentile.
PAGE_P95_MS = 150.0
DASHBOARD_P95_MS = 1000.0

OPEN_CASES = 80_000
WORKLOAD_TEAM_SIZE = 15_000
CLOSED_SHARE = 0.025  # of the loans: closed cases of the last six months
AUDIT_EVENTS = 250_000
OVERRIDE_REQUESTS = 3_000
SCREENING_FLAGS = 500
RESTRUCTURINGS = 120
REFERRALS = 120
SNAPSHOT_MONTHS = 6

# (outcome, share) of the generated contacts; what each outcome means for the contact rules is
# debt_collections.contacts.OUTCOME_FLAGS.
OUTCOME_SHARES = (
    ("no_answer", 0.40), ("busy", 0.10), ("right_party", 0.15), ("promise_to_pay", 0.08),
    ("callback_requested", 0.07), ("refused_to_pay", 0.06), ("third_party", 0.04), ("hardship", 0.04),
    ("wrong_number", 0.03), ("dispute", 0.03),
)  # fmt: skip
NOTES = (
    "Borrower says the salary comes on the 15th.",
    "Asked for the amount overdue; will check with the bank.",
    "借款人表示下周发工资后还款。",
    "Spoke to the borrower; explained the late fees and the options.",
    "借款人称已失业，希望延期。",
    "Line busy twice; left no message.",
)
OVERRIDE_REASONS = ('["quiet_hours"]', '["daily_attempt_cap"]', '["daily_connected_cap"]',
                    '["post_conversation_cooldown"]', '["quiet_hours", "daily_attempt_cap"]')  # fmt: skip
FLAGGED_NOTES = (
    (
        "Told the borrower we would call his employer tomorrow.",
        "call his employer",
        "third_party_pressure",
        "en",
    ),
    ("再不还钱就告诉你的家人和同事。", "告诉你的家人", "third_party_pressure", "zh"),
    ("Said the police will come to his house if he does not pay.", "police will come", "arrest", "en"),
    ("你这个骗子，马上还钱。", "骗子", "insult", "zh"),
)


# --- output: the terminal and the results file -----------------------------------------------------


class Tee:
    """Everything printed goes to the terminal and to the results file."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.file = path.open("w")
        self.stdout = sys.stdout

    def write(self, text):
        self.stdout.write(text)
        self.file.write(text)
        return len(text)

    def flush(self):
        self.stdout.flush()
        self.file.flush()

    def close(self):
        sys.stdout = self.stdout
        self.file.close()


def say(*parts) -> None:
    print(*parts, flush=True)


class Steps:
    """Times each preparation step and keeps the total."""

    def __init__(self):
        self.started = time.perf_counter()
        self.times: list[tuple[str, float]] = []

    def run(self, name: str, fn, *args, **kwargs):
        began = time.perf_counter()
        result = fn(*args, **kwargs)
        seconds = time.perf_counter() - began
        self.times.append((name, seconds))
        say(f"  {name}: {seconds:.1f} s{f' ({result})' if isinstance(result, str) else ''}")
        return result

    @property
    def total(self) -> float:
        return time.perf_counter() - self.started


# --- databases --------------------------------------------------------------------------------------


def database_name(url: str) -> str:
    return urlparse(url).path.lstrip("/")


def same_server(a: str, b: str) -> bool:
    pa, pb = urlparse(a), urlparse(b)
    return (pa.hostname, pa.port or 5432) == (pb.hostname, pb.port or 5432)


def others_connected(admin, name: str) -> int:
    with admin.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", [name]
        )
        return cur.fetchone()[0]


def ensure_template(admin, template: str, loans: int, reuse: bool) -> None:
    """bench/api.py's template, as its own build makes it. With --reuse, one built alike is kept even
    when migrations were added since (each run migrates its copy, as a deployment would); one that
    another process is still building (no marker yet, sessions on it) is left alone: this run stops."""
    pool = min(loans // 4, 250_000)
    marker = api_bench.template_marker(loans, pool)
    alike = marker[: marker.rindex("migrations ")]
    comment = scan_bench.database_comment(admin, template) or ""
    if reuse and comment == marker:
        say(f"reusing {template} ({marker})")
        return
    if reuse and comment.startswith(alike):
        say(f"reusing {template} ({comment}): built before the latest migrations, the copy is migrated")
        return
    if comment != marker and others_connected(admin, template):
        sys.exit(
            f"{template} is being built by another process (no marker yet, sessions on it): wait for it "
            "to finish (bench/api.py --build-only --reuse), then run this with --reuse"
        )
    say(f"building {template} with bench/api.py's build_template (about 50 minutes at 1,000,000 loans)")
    api_bench.build_template(admin, template, loans, pool, reuse=False)


def copy_marker(template: str, admin) -> str:
    digest = api_bench.migrations_digest()
    return (
        f"web bench copy of {template} ({scan_bench.database_comment(admin, template)}), migrated to {digest}"
    )


def migrate_copy() -> str:
    from django.core.management import call_command
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
    call_command("migrate", verbosity=0)
    return f"{len(pending)} migrations applied" + (
        f": {', '.join(f'{m.app_label}.{m.name}' for m, _ in pending)}" if pending else ""
    )


# --- preparation -------------------------------------------------------------------------------------


def sql(statement: str, params: dict | None = None) -> int:
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(statement, params or {})
        return cur.rowcount


def scalar(statement: str, params: dict | None = None):
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(statement, params or {})
        row = cur.fetchone()
    return row[0] if row else None


def open_cases() -> int:
    return scalar("SELECT count(*) FROM debt_collections_case WHERE status = 'open'")


def open_more_cases(target: int) -> str:
    """Current loans (not in the API bench's payment pool) stop paying 1 to 4 months before AS_OF; the
    refresh and a forced scan of AS_OF open, stage and assign their cases as the nightly scan would."""
    from django.db import transaction

    from debt_collections.scan import scan_run
    from loans.refresh import delinquency_refresh

    before = open_cases()
    if before >= target:
        return f"{before:,} open cases already"
    # About 3% of them have no due date in their unpaid window (a 30-day window across a 31-day month).
    need = math.ceil((target - before) * 1.035)
    params = {"as_of": AS_OF.isoformat(), "n": need}
    with transaction.atomic():
        sql("SELECT setseed(0.7)")
        sql(
            """CREATE TEMP TABLE web_unpay AS
               SELECT l.id AS loan_id, 1 + floor(random() * random() * 4)::int AS months
               FROM loans_loan AS l
               WHERE l.status = 'active' AND l.bucket = 'current' AND l.oldest_unpaid_due_date >= %(as_of)s
                 AND l.start_date < %(as_of)s::date - 150
                 AND NOT EXISTS (SELECT 1 FROM apibench_pool AS p WHERE p.loan_id = l.id)
               ORDER BY random() LIMIT %(n)s""",
            params,
        )
        # Unpaid from 10 days before AS_OF back to 1-4 months: each of them at least 10 days late.
        sql(
            """UPDATE loans_installment AS i
               SET principal_paid = 0, interest_paid = 0, fee_paid = 0, penalty_paid = 0
               FROM web_unpay AS u
               WHERE i.loan_id = u.loan_id AND NOT i.superseded
                 AND i.due_date < %(as_of)s::date - 10
                 AND i.due_date >= %(as_of)s::date - 10 - 30 * u.months""",
            params,
        )
        loan_ids = [row for (row,) in _rows("SELECT loan_id FROM web_unpay ORDER BY loan_id")]
        sql("DROP TABLE web_unpay")
    refreshed = delinquency_refresh(as_of=AS_OF, loan_ids=loan_ids)
    summary = scan_run(as_of=AS_OF, force=True)
    after = open_cases()
    return (
        f"{before:,} -> {after:,} open cases: {len(loan_ids):,} loans stopped paying, "
        f"{refreshed.loans_changed:,} refreshed; forced scan of {AS_OF}: {summary.line()}"
    )


def _rows(statement: str, params: dict | None = None) -> list:
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(statement, params or {})
        return cur.fetchall()


@dataclass
class Staff:
    supervisor: object  # of the workload team and the restructuring desk
    supervisor2: object  # the same teams: decides what the first one may not
    team_supervisor: object  # of the workload team only
    compliance: object
    workload_team: object
    approvals_team: object


def staff() -> Staff:
    """A supervisor of the team nearest WORKLOAD_TEAM_SIZE open cases and of the restructuring desk
    (their approvals), a second supervisor of the same teams, a supervisor of the first team alone
    (its workload page), a compliance officer."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.db.models import Count, Q

    from debt_collections.models import Team

    user_model = get_user_model()
    teams = list(Team.objects.annotate(open=Count("cases", filter=Q(cases__status="open"))).order_by("code"))
    workload = min(teams, key=lambda t: abs(t.open - WORKLOAD_TEAM_SIZE))
    approvals = next(t for t in teams if t.stage == "restructuring")

    def user(name: str, group: str):
        person, _ = user_model.objects.get_or_create(username=name, defaults={"is_active": True})
        person.set_unusable_password()
        person.save()
        person.groups.add(Group.objects.get(name=group))
        return person

    supervisor = user("web-supervisor", "supervisor")
    supervisor2 = user("web-supervisor-2", "supervisor")
    compliance = user("web-compliance", "compliance_officer")
    for team in {workload.pk: workload, approvals.pk: approvals}.values():
        team.supervisors.add(supervisor, supervisor2)
    team_supervisor = user("web-team-supervisor", "supervisor")
    workload.supervisors.add(team_supervisor)
    say("  teams (open cases): " + ", ".join(f"{t.code} {t.open:,}" for t in teams))
    return Staff(supervisor, supervisor2, team_supervisor, compliance, workload, approvals)


def contact_points() -> str:
    """Every borrower a primary mobile, a third an e-mail address, one in ten of those in collections a
    relative's phone; each with the search hash the model's save would give it (COPY, no save)."""
    from django.db import connection, transaction

    borrowers = [pk for (pk,) in _rows("SELECT id FROM loans_borrower ORDER BY id")]
    contact_lookup_hash = _fast_lookup_hash(borrowers)
    in_collections = {
        pk
        for (pk,) in _rows(
            "SELECT DISTINCT l.borrower_id FROM debt_collections_case AS c JOIN loans_loan AS l"
            " ON l.id = c.loan_id WHERE c.status = 'open'"
        )
    }
    columns = (
        "borrower_id, kind, label, value, value_hash, is_primary, consent_given, opted_out, "
        "is_third_party, third_party_name, relationship, is_valid"
    )
    written = 0
    with transaction.atomic(), connection.cursor() as cur:
        buffer = io.StringIO()
        for pk in borrowers:
            phone = mobile(pk)
            buffer.write(
                f"{pk}\tphone\tmobile\t{phone}\t{contact_lookup_hash('phone', phone)}\tt\tt\tf\tf\t\t\tt\n"
            )
            written += 1
            if pk % 3 == 0:
                email = f"borrower{pk}@example.com"
                buffer.write(
                    f"{pk}\temail\tother\t{email}\t{contact_lookup_hash('email', email)}\tt\tt\tf\tf\t\t\tt\n"
                )
                written += 1
            if pk in in_collections and pk % 10 == 0:
                relative = f"+86 19{pk:09d}"
                buffer.write(
                    f"{pk}\tphone\tother\t{relative}\t{contact_lookup_hash('phone', relative)}\tf\tt\tf\tt"
                    f"\tRelative of {pk}\tsibling\tt\n"
                )
                written += 1
            if buffer.tell() > 16_000_000:
                buffer.seek(0)
                cur.cursor.copy_expert(f"COPY loans_contactpoint ({columns}) FROM STDIN", buffer)
                buffer = io.StringIO()
        buffer.seek(0)
        cur.cursor.copy_expert(f"COPY loans_contactpoint ({columns}) FROM STDIN", buffer)
    return f"{written:,} contact points"


def _fast_lookup_hash(borrowers: list[int]):
    """``loans.crypto.contact_lookup_hash`` for the values this bench writes, without parsing them
    again: the HMAC of ``kind:normalised`` with the normalised value known. Checked against the real
    function on a sample first, so a change there cannot make the search miss unnoticed."""
    import hashlib
    import hmac

    from django.conf import settings

    from loans.crypto import contact_lookup_hash

    key = settings.FIELD_HASH_KEY.encode()

    def fast(kind: str, value: str) -> str:
        normalised = "".join(c for c in value if c.isdigit())[2:] if kind == "phone" else value.lower()
        return hmac.new(key, f"{kind}:{normalised}".encode(), hashlib.sha256).hexdigest()

    for pk in random.Random(5).sample(borrowers, min(200, len(borrowers))):
        for kind, value in (
            ("phone", mobile(pk)),
            ("email", f"borrower{pk}@example.com"),
            ("phone", f"+86 19{pk:09d}"),
        ):
            if fast(kind, value) != contact_lookup_hash(kind, value):
                raise RuntimeError(f"the bench's search hash of {value!r} differs from loans.crypto's")
    return fast


def mobile(borrower_id: int) -> str:
    """The borrower's mobile as stored: ``+86 13x xxxx xxxx`` (11 digits, unique per borrower)."""
    national = f"1{3 + borrower_id % 6}{borrower_id:09d}"
    return f"+86 {national[:3]} {national[3:7]} {national[7:]}"


def mobile_typed(borrower_id: int) -> str:
    """The same number as a collector types it: no country code, dashes (``138-0000-1234``)."""
    national = f"1{3 + borrower_id % 6}{borrower_id:09d}"
    return f"{national[:3]}-{national[3:7]}-{national[7:]}"


PAYMENT_HISTORY_SQL = [
    # What each open case's loan paid, one payment per installment on its due date (ids: the
    # installments', like bench/api.py's pool), with its allocation. No case loan is a pool loan (the
    # pool is current loans, and open_more_cases leaves it alone): none has a payment yet.
    """INSERT INTO loans_payment (id, partner_id, loan_id, external_ref, amount, currency, value_date,
         received_at, channel, status, reversal_reason, unapplied_amount, created_at)
       SELECT i.id, l.partner_id, i.loan_id, 'HIST-' || i.id,
              i.principal_paid + i.interest_paid + i.fee_paid + i.penalty_paid, l.currency, i.due_date,
              (i.due_date + time '10:00') AT TIME ZONE 'Asia/Shanghai', 'bank_transfer', 'posted', '', 0, now()
       FROM debt_collections_case AS c
       JOIN loans_loan AS l ON l.id = c.loan_id
       JOIN loans_installment AS i ON i.loan_id = l.id
       WHERE c.status = 'open' AND NOT i.superseded
         AND i.principal_paid + i.interest_paid + i.fee_paid + i.penalty_paid > 0""",
    """INSERT INTO loans_allocation (payment_id, installment_id, principal, interest, fee, penalty)
       SELECT i.id, i.id, i.principal_paid, i.interest_paid, i.fee_paid, i.penalty_paid
       FROM debt_collections_case AS c
       JOIN loans_installment AS i ON i.loan_id = c.loan_id
       WHERE c.status = 'open' AND NOT i.superseded
         AND i.principal_paid + i.interest_paid + i.fee_paid + i.penalty_paid > 0""",
    "SELECT setval(pg_get_serial_sequence('loans_payment', 'id'),"
    " (SELECT coalesce(max(id), 0) + 1 FROM loans_payment), false)",
    # 15% of the open cases: a payment or two in the last 60 days (unallocated: nothing reads them
    # but the pages and the dashboards).
    """INSERT INTO loans_payment (partner_id, loan_id, external_ref, amount, currency, value_date,
         received_at, channel, status, reversal_reason, unapplied_amount, created_at)
       SELECT x.partner_id, x.loan_id, 'WEB-' || x.case_id || '-' || g, round((100 + random() * 900)::numeric, 2),
              x.currency, x.day, (x.day + time '10:00') AT TIME ZONE 'Asia/Shanghai', 'wallet', 'posted', '', 0, now()
       FROM (SELECT c.id AS case_id, l.id AS loan_id, l.partner_id, l.currency,
                    %(today)s::date - floor(random() * 60)::int AS day, 1 + floor(random() * 2)::int AS k
             FROM debt_collections_case AS c JOIN loans_loan AS l ON l.id = c.loan_id
             WHERE c.status = 'open' AND random() < 0.15) AS x
       CROSS JOIN LATERAL generate_series(1, x.k) AS g""",
]


def payments(today: date) -> str:
    from django.db import transaction

    counts = []
    with transaction.atomic():
        for statement in PAYMENT_HISTORY_SQL:
            counts.append(sql(statement, {"today": today.isoformat()}))
    return f"{counts[0]:,} past payments with allocations, {counts[3]:,} recent payments"


def several_loans() -> str:
    """3% of the borrowers in collections get 1 to 3 more loans: pool loans (current, with payments)
    moved to them."""
    from django.db import transaction

    with transaction.atomic():
        sql("SELECT setseed(0.31)")
        sql(
            """CREATE TEMP TABLE web_multi AS
               SELECT borrower_id, extra, sum(extra) OVER (ORDER BY borrower_id) - extra AS first_slot
               FROM (SELECT DISTINCT l.borrower_id, 1 + floor(random() * 3)::int AS extra
                     FROM debt_collections_case AS c JOIN loans_loan AS l ON l.id = c.loan_id
                     WHERE c.status = 'open' AND random() < 0.03) AS m"""
        )
        sql(
            """CREATE TEMP TABLE web_spare AS
               SELECT p.loan_id, row_number() OVER (ORDER BY random()) - 1 AS slot
               FROM apibench_pool AS p
               WHERE NOT EXISTS (SELECT 1 FROM debt_collections_case AS c WHERE c.loan_id = p.loan_id)"""
        )
        moved = sql(
            """UPDATE loans_loan AS l SET borrower_id = m.borrower_id
               FROM (SELECT m.borrower_id, m.first_slot + g AS slot
                     FROM web_multi AS m CROSS JOIN LATERAL generate_series(0, m.extra - 1) AS g) AS m
               JOIN web_spare AS s ON s.slot = m.slot
               WHERE l.id = s.loan_id"""
        )
        borrowers = scalar("SELECT count(*) FROM web_multi")
        sql("DROP TABLE web_multi, web_spare")
    return f"{borrowers:,} borrowers got {moved:,} more loans"


def closed_cases(now: datetime, today: date) -> str:
    """Closed cases of the last six months on loans without an open case, each opened and closed by
    the scan (two transitions): what cure rates are computed from."""
    from django.db import transaction

    chunk = scalar("SELECT min(id) FROM debt_collections_scanchunk")
    total = scalar("SELECT count(*) FROM loans_loan")
    params = {
        "share": CLOSED_SHARE * 1.05,
        "today": today.isoformat(),
        "chunk": chunk,
        "n": round(total * CLOSED_SHARE),
        "now": now,
    }
    with transaction.atomic():
        sql("SELECT setseed(0.52)")
        sql(
            """CREATE TEMP TABLE web_members AS
               SELECT t.id AS team_id, t.stage, m.user_id,
                      row_number() OVER (PARTITION BY t.id ORDER BY m.user_id) - 1 AS k,
                      count(*) OVER (PARTITION BY t.id) AS n
               FROM debt_collections_team AS t JOIN debt_collections_teammember AS m ON m.team_id = t.id"""
        )
        sql(
            """CREATE TEMP TABLE web_closed AS
               SELECT nextval(pg_get_serial_sequence('debt_collections_case', 'id')) AS case_id, x.*,
                      x.opened + 5 + floor(random() * 40)::int AS closed,
                      CASE WHEN x.r2 < 0.70 THEN 'cured' WHEN x.r2 < 0.80 THEN 'paid_off'
                           WHEN x.r2 < 0.90 THEN 'restructured_performing' WHEN x.r2 < 0.95 THEN 'settled'
                           ELSE 'written_off' END AS close_reason
               FROM (SELECT l.id AS loan_id, %(today)s::date - 50 - floor(random() * 130)::int AS opened,
                            CASE WHEN r < 0.40 THEN 'early_warning' WHEN r < 0.75 THEN 'follow_up_call'
                                 WHEN r < 0.90 THEN 'notice' ELSE 'restructuring' END AS stage,
                            random() AS r2, random() AS r3
                     FROM (SELECT id, random() AS r FROM loans_loan AS l
                           WHERE random() < %(share)s
                             AND NOT EXISTS (SELECT 1 FROM debt_collections_case AS c WHERE c.loan_id = l.id)
                           LIMIT %(n)s) AS l) AS x""",
            params,
        )
        written = sql(
            """INSERT INTO debt_collections_case (id, status, stage, stage_entered_on, priority,
                 next_action_date, referral_recommended_on, broken_promises, opened_on, closed_on,
                 close_reason, created_at, updated_at, assignee_id, loan_id, team_id)
               SELECT w.case_id, 'closed', w.stage, w.opened, 0, NULL, NULL, 0, w.opened, w.closed,
                      w.close_reason, %(now)s, %(now)s, m.user_id, w.loan_id, m.team_id
               FROM web_closed AS w
               JOIN web_members AS m ON m.stage = w.stage AND m.k = floor(w.r3 * m.n)""",
            params,
        )
        sql(
            """INSERT INTO debt_collections_stagetransition (from_stage, to_stage, close_reason, at, as_of,
                 reason, actor_id, case_id, scan_chunk_id)
               SELECT '', w.stage, '', (w.opened + time '02:00') AT TIME ZONE 'Asia/Shanghai', w.opened,
                      'opened by the scan', NULL::integer, w.case_id, %(chunk)s FROM web_closed AS w
               UNION ALL
               SELECT w.stage, '', w.close_reason, (w.closed + time '02:00') AT TIME ZONE 'Asia/Shanghai',
                      w.closed, 'closed by the scan', NULL, w.case_id, %(chunk)s FROM web_closed AS w""",
            params,
        )
        sql("DROP TABLE web_closed, web_members")
    return f"{written:,} closed cases"


def contacts(now: datetime, today: date, profile: str) -> str:
    """Contact attempts and case contacts on the open cases, by their assignee, on the borrower's
    mobile, between 09:00 and 21:00 Shanghai time; then what the latest outcome of each case leaves:
    the call-back or next-action date, an open promise, a dispute hold."""
    from django.db import transaction

    params = {"now": now, "today": today.isoformat(), "tz": TZ, "profile": profile, "notes": list(NOTES)}
    with transaction.atomic():
        sql("SELECT setseed(0.13)")
        sql("CREATE TEMP TABLE web_outcomes (outcome text, connected bool, answered bool, right_party bool,"
            " lo float, hi float)")  # fmt: skip
        from debt_collections.contacts import OUTCOME_FLAGS

        low = 0.0
        for outcome, share in OUTCOME_SHARES:
            connected, answered, right_party = OUTCOME_FLAGS[outcome]
            high = 1.0 if outcome == OUTCOME_SHARES[-1][0] else low + share
            sql(
                "INSERT INTO web_outcomes VALUES (%(o)s, %(c)s, %(a)s, %(r)s, %(lo)s, %(hi)s)",
                {"o": outcome, "c": connected, "a": answered, "r": right_party, "lo": low, "hi": high},
            )
            low = high
        sql(
            """CREATE TEMP TABLE web_contact_plan AS
               SELECT nextval(pg_get_serial_sequence('compliance_contactattempt', 'id')) AS attempt_id,
                      y.case_id, y.loan_id, y.borrower_id, y.point_id, y.actor_id, y.at,
                      o.outcome, o.connected, o.answered, o.right_party
               FROM (SELECT x.*, LEAST(%(now)s::timestamptz,
                              ((%(today)s::date - floor(random() * x.span)::int) + time '09:00'
                               + random() * interval '12 hours') AT TIME ZONE %(tz)s) AS at,
                            random() AS r
                     FROM (SELECT c.id AS case_id, c.loan_id, l.borrower_id, cp.id AS point_id,
                                  c.assignee_id AS actor_id,
                                  CASE WHEN h THEN 40 + floor(random() * 80)::int
                                       ELSE floor(random() * random() * 8)::int END AS k,
                                  CASE WHEN h THEN 180 ELSE 30 END AS span
                           FROM (SELECT c.*, random() < 0.03 AS h FROM debt_collections_case AS c
                                 WHERE c.status = 'open' AND c.assignee_id IS NOT NULL) AS c
                           JOIN loans_loan AS l ON l.id = c.loan_id
                           JOIN loans_contactpoint AS cp ON cp.borrower_id = l.borrower_id
                                AND cp.kind = 'phone' AND cp.is_primary) AS x
                     CROSS JOIN LATERAL generate_series(1, x.k) AS g) AS y
               JOIN web_outcomes AS o ON y.r >= o.lo AND y.r < o.hi""",
            params,
        )
        attempts = sql(
            """INSERT INTO compliance_contactattempt (id, channel, direction, purpose, at, connected, answered,
                 right_party, consented, outcome, decision, created_at, actor_id, borrower_id,
                 contact_point_id, loan_id, override_id)
               SELECT attempt_id, 'call', 'outbound', 'collection', at, connected, answered, right_party,
                      false, outcome,
                      jsonb_build_object('allowed', true, 'reasons', '[]'::jsonb, 'citations', '{}'::jsonb,
                        'next_allowed_at', NULL, 'profile', %(profile)s,
                        'local_time', to_char(at AT TIME ZONE %(tz)s, 'YYYY-MM-DD"T"HH24:MI:SS.US') || '+08:00',
                        'override_id', NULL),
                      at, actor_id, borrower_id, point_id, loan_id, NULL
               FROM web_contact_plan""",
            params,
        )
        sql(
            """INSERT INTO debt_collections_casecontact (outcome, notes, recording, recording_sha256,
                 callback_on, created_at, attempt_id, case_id, created_by_id, second_staff_id)
               SELECT outcome,
                      CASE WHEN random() < 0.2
                           THEN (%(notes)s::text[])[1 + floor(random() * array_length(%(notes)s::text[], 1))::int]
                           ELSE '' END,
                      '', '',
                      CASE WHEN outcome = 'callback_requested'
                           THEN (at AT TIME ZONE %(tz)s)::date + 1 + floor(random() * 3)::int END,
                      at, attempt_id, case_id, actor_id, NULL
               FROM web_contact_plan""",
            params,
        )
        sql(
            """CREATE TEMP TABLE web_last AS
               SELECT DISTINCT ON (case_id) case_id, attempt_id, outcome, at, actor_id
               FROM web_contact_plan ORDER BY case_id, at DESC, attempt_id DESC"""
        )
        sql(
            """UPDATE debt_collections_case AS c
               SET next_action_date = CASE WHEN w.outcome = 'callback_requested' THEN cc.callback_on
                                           ELSE (w.at AT TIME ZONE %(tz)s)::date + 1 END
               FROM web_last AS w JOIN debt_collections_casecontact AS cc ON cc.attempt_id = w.attempt_id
               WHERE c.id = w.case_id AND w.outcome IN ('callback_requested', 'no_answer', 'busy', 'right_party')""",
            params,
        )
        holds = sql(
            """INSERT INTO debt_collections_casehold (reason, note, until, set_at, released_at, case_id,
                 released_by_id, set_by_id)
               SELECT 'dispute', 'Dispute raised by the borrower (contact #' || attempt_id || ').', NULL, at,
                      NULL, case_id, NULL, actor_id
               FROM web_last WHERE outcome = 'dispute'"""
        )
        promises = _promises(params)
        sql("DROP TABLE web_contact_plan, web_last, web_outcomes")
    return f"{attempts:,} contact attempts, {promises}, {holds:,} dispute holds"


def _promises(params: dict) -> str:
    """A promise for every promise-to-pay contact: open when it is the case's latest contact of the
    last 14 days, else kept, partly kept or broken; 1 to 3 weekly instalments."""
    sql(
        """CREATE TEMP TABLE web_promise AS
           SELECT nextval(pg_get_serial_sequence('debt_collections_promisetopay', 'id')) AS promise_id,
                  p.case_id, p.actor_id, p.at, (p.at AT TIME ZONE %(tz)s)::date AS made_on,
                  (w.attempt_id IS NOT NULL AND (p.at AT TIME ZONE %(tz)s)::date >= %(today)s::date - 14) AS is_open,
                  1 + floor(random() * random() * 3)::int AS n,
                  round((100 + random() * 900)::numeric, 0) AS each_amount,
                  floor(random() * 4)::int AS shift, random() AS r
           FROM web_contact_plan AS p
           LEFT JOIN web_last AS w ON w.attempt_id = p.attempt_id
           WHERE p.outcome = 'promise_to_pay'""",
        params,
    )
    sql(
        """INSERT INTO debt_collections_promiseinstalment (number, amount, due_date, promise_id)
           SELECT g, w.each_amount, w.made_on + 1 + w.shift + 7 * (g - 1), w.promise_id
           FROM web_promise AS w CROSS JOIN LATERAL generate_series(1, w.n) AS g"""
    )
    written = sql(
        """INSERT INTO debt_collections_promisetopay (id, amount, promised_date, made_on, status, resolved_on,
             created_at, case_id, created_by_id, paid_amount)
           SELECT w.promise_id, w.each_amount * w.n, w.made_on + 1 + w.shift + 7 * (w.n - 1), w.made_on,
                  CASE WHEN w.is_open THEN 'open' WHEN w.r < 0.45 THEN 'kept' WHEN w.r < 0.6 THEN 'partly_kept'
                       ELSE 'broken' END,
                  CASE WHEN w.is_open THEN NULL
                       ELSE LEAST(%(today)s::date, w.made_on + 2 + w.shift + 7 * (w.n - 1)) END,
                  w.at, w.case_id, w.actor_id,
                  CASE WHEN w.is_open THEN 0 WHEN w.r < 0.45 THEN w.each_amount * w.n
                       WHEN w.r < 0.6 THEN round(w.each_amount * w.n / 2, 2) ELSE 0 END
           FROM web_promise AS w""",
        params,
    )
    opened = scalar("SELECT count(*) FROM web_promise WHERE is_open")
    sql(
        """UPDATE debt_collections_case AS c SET broken_promises = b.n
           FROM (SELECT case_id, count(*) AS n FROM debt_collections_promisetopay WHERE status = 'broken'
                 GROUP BY case_id) AS b WHERE c.id = b.case_id"""
    )
    sql("DROP TABLE web_promise")
    return f"{written:,} promises ({opened:,} open)"


def flags_and_opt_outs(now: datetime, actor_id: int) -> str:
    from django.db import transaction

    params = {"now": now, "actor": actor_id}
    with transaction.atomic():
        sql("SELECT setseed(0.77)")
        flags = sql(
            """INSERT INTO compliance_borrowerflag (kind, reason, until, set_at, released_at, borrower_id,
                 released_by_id, set_by_id)
               SELECT (ARRAY['vulnerable', 'legal_representation', 'cease_communication', 'dispute'])
                        [1 + floor(random() * 4)::int],
                      'Recorded after a call with the borrower.', NULL,
                      %(now)s::timestamptz - random() * interval '60 days', NULL, l.borrower_id, NULL, %(actor)s
               FROM debt_collections_case AS c JOIN loans_loan AS l ON l.id = c.loan_id
               WHERE c.status = 'open' AND random() < 0.004""",
            params,
        )
        opt_outs = sql(
            """INSERT INTO compliance_channeloptout (channel, at, note, borrower_id, contact_point_id)
               SELECT 'sms', %(now)s::timestamptz - random() * interval '90 days', 'Asked for no text messages.',
                      l.borrower_id, NULL
               FROM debt_collections_case AS c JOIN loans_loan AS l ON l.id = c.loan_id
               WHERE c.status = 'open' AND random() < 0.005""",
            params,
        )
    return f"{flags:,} borrower flags, {opt_outs:,} opt-outs"


def overrides(now: datetime, profile: str, supervisor_id: int) -> str:
    """Override requests over the last 60 days on open cases, by their assignee: 2% pending (the last
    four hours), 23% declined, the rest granted by the supervisor, each grant an override used by a contact in 80% of
    cases (that contact carries the refusing decision, as contact_attempt_record freezes it)."""
    from django.db import transaction

    total = open_cases()
    params = {
        "now": now, "profile": profile, "sup": supervisor_id, "tz": TZ,
        "share": min(1.0, OVERRIDE_REQUESTS * 1.05 / max(total, 1)), "n": OVERRIDE_REQUESTS,
        "reasons": list(OVERRIDE_REASONS),
    }  # fmt: skip
    with transaction.atomic():
        sql("SELECT setseed(0.91)")
        sql(
            """CREATE TEMP TABLE web_override AS
               SELECT nextval(pg_get_serial_sequence('compliance_overriderequest', 'id')) AS request_id,
                      nextval(pg_get_serial_sequence('compliance_contactoverride', 'id')) AS override_id,
                      nextval(pg_get_serial_sequence('compliance_contactattempt', 'id')) AS attempt_id,
                      x.*,
                      CASE WHEN x.roll < 0.02 THEN 'pending' WHEN x.roll < 0.25 THEN 'declined' ELSE 'granted' END
                        AS status,
                      CASE WHEN x.roll < 0.02 THEN %(now)s::timestamptz - random() * interval '4 hours'
                           ELSE %(now)s::timestamptz - interval '2 days' - random() * interval '58 days' END
                        AS requested_at,
                      (%(reasons)s::text[])[1 + floor(random() * array_length(%(reasons)s::text[], 1))::int]::jsonb
                        AS reasons,
                      random() < 0.8 AS used
               FROM (SELECT c.id AS case_id, c.loan_id, l.borrower_id, cp.id AS point_id,
                            c.assignee_id AS requested_by, random() AS roll
                     FROM debt_collections_case AS c
                     JOIN loans_loan AS l ON l.id = c.loan_id
                     JOIN loans_contactpoint AS cp ON cp.borrower_id = l.borrower_id
                          AND cp.kind = 'phone' AND cp.is_primary
                     WHERE c.status = 'open' AND c.assignee_id IS NOT NULL AND random() < %(share)s
                     LIMIT %(n)s) AS x""",
            params,
        )
        sql(
            """INSERT INTO compliance_contactoverride (id, channel, reasons, reason, granted_at, valid_until,
                 used_at, borrower_id, contact_point_id, granted_by_id)
               SELECT override_id, 'call', reasons, 'Borrower asked to be called back at this time.',
                      requested_at + interval '10 minutes', requested_at + interval '130 minutes',
                      CASE WHEN used THEN requested_at + interval '30 minutes' END,
                      borrower_id, point_id, %(sup)s
               FROM web_override WHERE status = 'granted'""",
            params,
        )
        requests = sql(
            """INSERT INTO compliance_overriderequest (id, channel, reasons, note, requested_at, status,
                 decided_at, decision_reason, borrower_id, contact_point_id, decided_by_id, loan_id,
                 override_id, requested_by_id)
               SELECT request_id, 'call', reasons, 'The borrower asked for a call at this hour.', requested_at,
                      status, CASE WHEN status <> 'pending' THEN requested_at + interval '10 minutes' END,
                      CASE WHEN status = 'declined' THEN 'Not a reason to call in quiet hours.' ELSE '' END,
                      borrower_id, point_id, CASE WHEN status <> 'pending' THEN %(sup)s END, loan_id,
                      CASE WHEN status = 'granted' THEN override_id END, requested_by
               FROM web_override""",
            params,
        )
        used = sql(
            """INSERT INTO compliance_contactattempt (id, channel, direction, purpose, at, connected, answered,
                 right_party, consented, outcome, decision, created_at, actor_id, borrower_id,
                 contact_point_id, loan_id, override_id)
               SELECT attempt_id, 'call', 'outbound', 'collection', requested_at + interval '30 minutes',
                      true, true, true, false, 'right_party',
                      jsonb_build_object('allowed', false, 'reasons', reasons, 'citations', '{}'::jsonb,
                        'next_allowed_at', NULL, 'profile', %(profile)s, 'local_time',
                        to_char((requested_at + interval '30 minutes') AT TIME ZONE %(tz)s,
                                'YYYY-MM-DD"T"HH24:MI:SS.US') || '+08:00',
                        'override_id', override_id),
                      requested_at + interval '30 minutes', requested_by, borrower_id, point_id, loan_id,
                      override_id
               FROM web_override WHERE status = 'granted' AND used""",
            params,
        )
        sql(
            """INSERT INTO debt_collections_casecontact (outcome, notes, recording, recording_sha256,
                 callback_on, created_at, attempt_id, case_id, created_by_id, second_staff_id)
               SELECT 'right_party', 'Called under the supervisor''s override.', '', '', NULL,
                      requested_at + interval '30 minutes', attempt_id, case_id, requested_by, NULL
               FROM web_override WHERE status = 'granted' AND used"""
        )
        sql("DROP TABLE web_override")
    return f"{requests:,} override requests, {used:,} contacts under an override"


def screening_flags(now: datetime, reviewer_id: int) -> str:
    from django.db import transaction

    rows = []
    for text, phrase, category, language in FLAGGED_NOTES:
        start = text.index(phrase)
        match = {"category": category, "language": language, "phrase": phrase, "text": phrase,
                 "start": start, "end": start + len(phrase)}  # fmt: skip
        rows.append((text, json.dumps([match], ensure_ascii=False)))
    params = {"now": now, "reviewer": reviewer_id, "n": SCREENING_FLAGS,
              "texts": [r[0] for r in rows], "matches": [r[1] for r in rows]}  # fmt: skip
    with transaction.atomic():
        sql("SELECT setseed(0.19)")
        written = sql(
            """INSERT INTO compliance_screeningflag (source, source_id, excerpt, matches, created_at,
                 reviewed_at, review_note, reviewed_by_id)
               SELECT 'case_contact', x.id::text, (%(texts)s::text[])[x.k], (%(matches)s::text[])[x.k]::jsonb,
                      x.created_at,
                      CASE WHEN x.reviewed THEN x.created_at + interval '1 day' END,
                      CASE WHEN x.reviewed THEN 'Coached the collector.' ELSE '' END,
                      CASE WHEN x.reviewed THEN %(reviewer)s END
               FROM (SELECT id, created_at, 1 + floor(random() * array_length(%(texts)s::text[], 1))::int AS k,
                            random() < 0.7 AS reviewed
                     FROM debt_collections_casecontact WHERE notes <> '' ORDER BY random() LIMIT %(n)s) AS x""",
            params,
        )
    return f"{written:,} flagged notes"


def audit_events(now: datetime) -> str:
    """AUDIT_EVENTS events over the last 90 days, in time order, chained onto the template's last
    event exactly as compliance.audit.audit_record chains them (COPY; the chain verifies)."""
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction

    from compliance.audit import GENESIS, compute_hash

    rng = random.Random(17)
    users = list(get_user_model().objects.filter(is_active=True).values_list("pk", "username"))
    staff_users = [u for u in users if u[1].startswith(("bench-", "web-"))] or users
    cases = [pk for (pk,) in _rows("SELECT id FROM debt_collections_case WHERE status = 'open' ORDER BY id")]
    phones = _rows(
        "SELECT cp.borrower_id, cp.id FROM loans_contactpoint AS cp JOIN loans_loan AS l"
        " ON l.borrower_id = cp.borrower_id JOIN debt_collections_case AS c ON c.loan_id = l.id"
        " WHERE c.status = 'open' AND cp.is_primary AND cp.kind = 'phone' ORDER BY random() LIMIT 20000"
    )
    stages = ["early_warning", "follow_up_call", "notice", "restructuring"]
    kinds = (
        ("login", 0.25), ("stage_change", 0.30), ("pii_reveal", 0.10), ("reassignment", 0.12),
        ("override", 0.06), ("approval", 0.04), ("login_failed", 0.03), ("restructuring", 0.04),
        ("flag_set", 0.02), ("export", 0.01), ("screening_review", 0.02), ("legal_referral", 0.01),
    )  # fmt: skip
    names, weights = zip(*kinds, strict=True)
    start = now - timedelta(days=90)
    step = (now - timedelta(minutes=5) - start) / AUDIT_EVENTS
    began = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("SELECT hash FROM compliance_auditevent ORDER BY id DESC LIMIT 1")
        row = cur.fetchone()
        prev = row[0] if row else GENESIS
        buffer = io.StringIO()
        for n in range(AUDIT_EVENTS):
            at = (start + step * n + timedelta(seconds=rng.random())).astimezone(UTC)
            kind = rng.choices(names, weights)[0]
            actor_id, label = rng.choice(staff_users)
            subject_type = subject_id = ""
            details: dict
            if kind == "login":
                details = {"ip": f"10.0.{rng.randrange(256)}.{rng.randrange(256)}"}
            elif kind == "login_failed":
                actor_id, label = None, rng.choice(staff_users)[1]
                details = {"ip": f"10.0.{rng.randrange(256)}.{rng.randrange(256)}"}
            elif kind == "pii_reveal":
                borrower, point = rng.choice(phones)
                subject_type, subject_id = "loans.borrower", str(borrower)
                details = {"field": f"contact_point:{point}", "kind": "phone",
                           "reason": rng.choice(["Number on the masked screen is wrong", "借款人要求核对号码"])}  # fmt: skip
            else:
                case = rng.choice(cases)
                subject_type, subject_id = "debt_collections.case", str(case)
                a, b = rng.sample(stages, 2)
                details = {"case": case, "from": a, "to": b, "reason": f"{kind.replace('_', ' ')} by staff"}
            event_hash = compute_hash(
                prev_hash=prev, event_type=kind, at=at, actor_id=actor_id, actor_label=label,
                subject_type=subject_type, subject_id=subject_id, details=details,
            )  # fmt: skip
            actor = "\\N" if actor_id is None else str(actor_id)
            body = json.dumps(details, ensure_ascii=False).replace("\\", "\\\\")
            buffer.write(
                f"{kind}\t{at.isoformat()}\t{actor}\t{label}\t{subject_type}\t{subject_id}\t{body}\t{prev}\t{event_hash}\n"
            )
            prev = event_hash
        made = time.perf_counter() - began
        buffer.seek(0)
        cur.cursor.copy_expert(
            "COPY compliance_auditevent (event_type, at, actor_id, actor_label, subject_type, subject_id,"
            " details, prev_hash, hash) FROM STDIN",
            buffer,
        )
    return f"{AUDIT_EVENTS:,} audit events: {made:.0f} s to make and hash, {time.perf_counter() - began - made:.0f} s to COPY"


def approvals_work(people: Staff) -> str:
    """Restructurings and legal referrals proposed through the services by the cases' assignees, in
    the supervisor's teams; a quarter of each rejected by the second supervisor."""
    from django.contrib.auth import get_user_model
    from django.core.exceptions import PermissionDenied, ValidationError
    from django.db.models import Exists, OuterRef

    from debt_collections.models import Case, CaseHold, LegalReferral, PromiseToPay, Restructuring
    from debt_collections.referrals import referral_reject, referral_request
    from debt_collections.restructuring import restructuring_propose, restructuring_reject

    users = get_user_model().objects.in_bulk(
        list(Case.objects.filter(status="open").values_list("assignee_id", flat=True).distinct())
    )
    candidates = (
        Case.objects.filter(status="open", team=people.approvals_team, assignee__isnull=False)
        .filter(~Exists(CaseHold.objects.filter(case=OuterRef("pk"), released_at__isnull=True)))
        .filter(~Exists(PromiseToPay.objects.filter(case=OuterRef("pk"), status=PromiseToPay.Status.OPEN)))
        .select_related("loan")
        .order_by("?")
    )
    proposed = requested = 0
    refused: Counter = Counter()
    for case in candidates[: RESTRUCTURINGS * 3]:
        if proposed >= RESTRUCTURINGS:
            break
        actor = users[case.assignee_id]
        for kind, terms in (
            ("term_extension", {"new_term": case.loan.term + 12}),
            ("payment_holiday", {"holiday_periods": 3}),
            ("penalty_waiver", {}),
        ):
            try:
                restructuring_propose(
                    case=case, kind=kind, actor=actor, reason="Borrower lost his job; asks for time.",
                    first_due_date=AS_OF + timedelta(days=30), as_of=AS_OF, **terms,
                )  # fmt: skip
                proposed += 1
                break
            except (ValidationError, PermissionDenied) as exc:
                refused[f"restructuring {kind}: {_first_message(exc)}"] += 1
    for case in candidates.filter(referral_recommended_on__isnull=False)[: REFERRALS * 3]:
        if requested >= REFERRALS:
            break
        try:
            referral_request(
                case=case, actor=users[case.assignee_id], reason="No payment for over 90 days.",
                forbearance_considered="A payment holiday was offered and refused.", as_of=AS_OF,
            )  # fmt: skip
            requested += 1
        except (ValidationError, PermissionDenied) as exc:
            refused[f"referral: {_first_message(exc)}"] += 1
    rejected = 0
    for proposal in Restructuring.objects.filter(status="proposed").order_by("id")[: proposed // 4]:
        restructuring_reject(restructuring=proposal, actor=people.supervisor2, reason="Income not verified.")
        rejected += 1
    for referral in LegalReferral.objects.filter(status="requested").order_by("id")[: requested // 4]:
        referral_reject(referral=referral, actor=people.supervisor2, reason="Try a restructuring first.")
        rejected += 1
    note = f"{proposed} restructurings, {requested} referrals, {rejected} rejected"
    if refused:
        note += "; refused by the services: " + "; ".join(f"{n}x {m}" for m, n in refused.most_common(3))
    return note


def _first_message(exc) -> str:
    messages = getattr(exc, "messages", None) or [str(exc)]
    return str(messages[0])[:80]


SNAPSHOT_SQL = """
INSERT INTO loans_bucketsnapshot (as_of, loan_id, bucket, days_past_due, overdue_total, outstanding_principal)
SELECT %(m)s::date, x.id,
       CASE WHEN x.dpd <= 30 THEN '1-30' WHEN x.dpd <= 60 THEN '31-60' WHEN x.dpd <= 90 THEN '61-90'
            WHEN x.dpd <= 180 THEN '91-180' ELSE '180+' END,
       x.dpd, x.overdue, GREATEST(x.outstanding, 0)
FROM (
    SELECT l.id, %(m)s::date - l.oldest_unpaid_due_date AS dpd, p.grace_days,
           COALESCE(SUM(i.principal_due + i.interest_due + i.fee_due + i.penalty_due
                        - i.principal_paid - i.interest_paid - i.fee_paid - i.penalty_paid)
                    FILTER (WHERE i.due_date < %(m)s::date), 0) AS overdue,
           SUM(i.principal_due) - COALESCE(SUM(i.principal_paid) FILTER (WHERE i.due_date < %(m)s::date), 0)
             AS outstanding
    FROM loans_loan AS l
    JOIN loans_loanproduct AS p ON p.id = l.product_id
    JOIN loans_installment AS i ON i.loan_id = l.id AND NOT i.superseded
    WHERE l.oldest_unpaid_due_date < LEAST(%(m)s::date, %(as_of)s::date) AND l.start_date <= %(m)s::date
    GROUP BY l.id, p.grace_days
) AS x
WHERE x.dpd > x.grace_days
"""


def month_ends_before(day: date, count: int) -> list[date]:
    ends, cursor = [], day.replace(day=1) - timedelta(days=1)
    while len(ends) < count:
        ends.append(cursor)
        cursor = cursor.replace(day=1) - timedelta(days=1)
    return sorted(ends)


def snapshots(today: date) -> str:
    from django.db import transaction

    ends = month_ends_before(today, SNAPSHOT_MONTHS)
    written, how = [], []
    try:
        from loans.snapshots import bucket_snapshot_take
    except ImportError:  # not there yet: the loans' current columns, as its "current" source would
        bucket_snapshot_take = None
    for end in ends:
        if end == AS_OF and bucket_snapshot_take is not None:
            result = bucket_snapshot_take(as_of=AS_OF, today=AS_OF, source="current")
            written.append(result.loans)
            how.append(f"{end}: bucket_snapshot_take(source='current')")
            continue
        with transaction.atomic():
            sql("DELETE FROM loans_bucketsnapshot WHERE as_of = %(m)s", {"m": end.isoformat()})
            written.append(sql(SNAPSHOT_SQL, {"m": end.isoformat(), "as_of": AS_OF.isoformat()}))
        how.append(f"{end}: from the installments")
    return f"{sum(written):,} snapshot rows over {len(ends)} month ends ({', '.join(how)})"


def prepare(steps: Steps, target_open: int) -> Staff:
    from django.utils import timezone

    now = timezone.now()
    today = timezone.localdate()
    profile = scalar(
        "SELECT code FROM compliance_jurisdictionprofile WHERE regions LIKE '%%CN%%' ORDER BY id"
    )
    steps.run("open cases up to the target", open_more_cases, target_open)
    people = steps.run("staff", staff)
    steps.run("contact points", contact_points)
    steps.run("borrowers with several loans", several_loans)
    steps.run("payments", payments, today)
    steps.run("closed cases", closed_cases, now, today)
    steps.run("contacts, promises, holds", contacts, now, today, profile)
    steps.run("flags and opt-outs", flags_and_opt_outs, now, people.supervisor.pk)
    steps.run("override requests and overrides", overrides, now, profile, people.supervisor.pk)
    steps.run("flagged notes", screening_flags, now, people.compliance.pk)
    steps.run("audit events", audit_events, now)
    steps.run("restructurings and referrals (services)", approvals_work, people)
    steps.run("bucket snapshots", snapshots, today)
    return people


def load_staff() -> Staff:
    """The staff of a copy prepared by an earlier run (--reuse-copy)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from debt_collections.models import Team

    users = get_user_model().objects.in_bulk(
        ["web-supervisor", "web-supervisor-2", "web-compliance"], field_name="username"
    )
    supervisor = users["web-supervisor"]
    teams = list(Team.objects.filter(supervisors=supervisor).order_by("code"))
    approvals = next(t for t in teams if t.stage == "restructuring")
    workload = next((t for t in teams if t.pk != approvals.pk), approvals)
    # Copies prepared before this user existed get it now.
    team_supervisor, created = get_user_model().objects.get_or_create(username="web-team-supervisor")
    if created:
        team_supervisor.groups.add(Group.objects.get(name="supervisor"))
        workload.supervisors.add(team_supervisor)
    return Staff(
        supervisor, users["web-supervisor-2"], team_supervisor, users["web-compliance"], workload, approvals
    )


# --- the book's facts --------------------------------------------------------------------------------


FACTS_SQL = {
    "loans": "SELECT count(*) FROM loans_loan",
    "open cases": "SELECT count(*) FROM debt_collections_case WHERE status = 'open'",
    "closed cases": "SELECT count(*) FROM debt_collections_case WHERE status = 'closed'",
    "contact points": "SELECT count(*) FROM loans_contactpoint",
    "contact attempts": "SELECT count(*) FROM compliance_contactattempt",
    "payments": "SELECT count(*) FROM loans_payment",
    "promises (open)": "SELECT count(*) || ' (' || count(*) FILTER (WHERE status = 'open') || ')'"
    " FROM debt_collections_promisetopay",
    "restructurings proposed": "SELECT count(*) FROM debt_collections_restructuring WHERE status = 'proposed'",
    "referrals requested": "SELECT count(*) FROM debt_collections_legalreferral WHERE status = 'requested'",
    "override requests": "SELECT count(*) FROM compliance_overriderequest",
    "audit events": "SELECT count(*) FROM compliance_auditevent",
    "bucket snapshots": "SELECT count(*) FROM loans_bucketsnapshot",
}


def book_facts() -> dict:
    return {name: scalar(statement) for name, statement in FACTS_SQL.items()}


# --- measuring ---------------------------------------------------------------------------------------


class QueryLog:
    """A Django execute wrapper: the current request's statements and their time, and per statement
    text (over a whole page's run) how often it ran, its total time and its slowest parameters."""

    def __init__(self):
        self.statements: dict[str, list] = {}
        self.reset()

    def reset(self):
        self.count = 0
        self.seconds = 0.0

    def forget(self):
        self.statements = {}
        self.reset()

    def __call__(self, execute, sql_text, params, many, context):
        began = time.perf_counter()
        try:
            return execute(sql_text, params, many, context)
        finally:
            took = time.perf_counter() - began
            self.count += 1
            self.seconds += took
            entry = self.statements.setdefault(sql_text, [0, 0.0, 0.0, params])
            entry[0] += 1
            entry[1] += took
            if took > entry[2]:
                entry[2], entry[3] = took, params


@dataclass
class Scenario:
    group: str
    name: str
    user: str  # a key of the clients
    urls: list[str]
    target_ms: float
    requests: int
    headers: dict = field(default_factory=dict)
    note: str = ""


@dataclass
class Result:
    scenario: Scenario
    times_ms: list[float] = field(default_factory=list)
    queries: list[int] = field(default_factory=list)
    sql_ms: list[float] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    captured: list[int] = field(default_factory=list)
    statements: dict = field(default_factory=dict)  # QueryLog.statements of the timed requests
    bytes: int = 0

    def p(self, q: float) -> float | None:
        if not self.times_ms:
            return None
        ordered = sorted(self.times_ms)  # nearest rank
        return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]

    @property
    def p95(self):
        return self.p(0.95)

    @property
    def ok(self) -> bool:
        return bool(self.times_ms) and not self.errors and self.p95 < self.scenario.target_ms


def fetch(client, url: str, headers: dict):
    response = client.get(url, **headers)
    streaming = getattr(response, "streaming", False)
    return response, b"".join(response.streaming_content) if streaming else response.content


def run_scenario(scenario: Scenario, clients: dict, log: QueryLog, warmup: int) -> Result:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = clients[scenario.user]
    result = Result(scenario)
    urls = scenario.urls
    log.forget()
    for i in range(warmup):
        fetch(client, urls[(len(urls) - 1 - i) % len(urls)], scenario.headers)
    log.forget()
    for i in range(scenario.requests):
        url = urls[i % len(urls)]
        log.reset()
        began = time.perf_counter()
        response, body = fetch(client, url, scenario.headers)
        took = (time.perf_counter() - began) * 1000
        result.statuses[response.status_code] += 1
        if response.status_code != 200:
            if len(result.errors) < 3:
                result.errors.append(f"{response.status_code} {url}")
            continue
        result.times_ms.append(took)
        result.queries.append(log.count)
        result.sql_ms.append(log.seconds * 1000)
        result.bytes += len(body)
    result.statements = {text: list(entry) for text, entry in log.statements.items()}
    # The statements of a few requests as Django's CaptureQueriesContext sees them (the tests' count).
    for url in urls[:3]:
        with CaptureQueriesContext(connection) as captured:
            fetch(client, url, scenario.headers)
        result.captured.append(len(captured.captured_queries))
    return result


def ms(value) -> str:
    return "-" if value is None else f"{value:,.1f}"


def report_line(result: Result) -> str:
    s = result.scenario
    if not result.times_ms:
        return f"{s.group:<10} {s.name:<44} errors: {', '.join(result.errors) or 'no requests'}"
    queries = f"{min(result.queries)}" + (
        f"-{max(result.queries)}" if max(result.queries) != min(result.queries) else ""
    )
    sql_share = sum(result.sql_ms) / max(sum(result.times_ms), 1e-9)
    return (
        f"{s.group:<10} {s.name:<44} n={len(result.times_ms):<4} p50 {ms(result.p(0.5)):>8} "
        f"p95 {ms(result.p95):>8} max {ms(max(result.times_ms)):>8} ms  queries {queries:<6} "
        f"(captured {','.join(map(str, result.captured))})  SQL {sql_share:.0%}  "
        f"{result.bytes / len(result.times_ms) / 1024:,.0f} KB"
        + (f"  [{len(result.errors)} errors: {result.errors[0]}]" if result.errors else "")
    )


# --- the scenarios -----------------------------------------------------------------------------------


def placeholder(module: str) -> bool:
    """Whether a page module still says "to be built" (its engineer is not done)."""
    path = ROOT / module
    return path.exists() and "to be built" in path.read_text()


def url(name: str, *args, **query) -> str:
    from django.urls import reverse

    base = reverse(name, args=args)
    query = {k: v for k, v in query.items() if v not in (None, "")}
    return base + ("?" + urlencode(query) if query else "")


@dataclass
class Subjects:
    collector: object
    queue: int
    team_ids: list[int]


def measured_collector() -> Subjects:
    """The collector with the largest queue of open cases."""
    from django.contrib.auth import get_user_model

    pk, queue = _rows(
        "SELECT assignee_id, count(*) FROM debt_collections_case WHERE status = 'open'"
        " AND assignee_id IS NOT NULL GROUP BY assignee_id ORDER BY count(*) DESC, assignee_id LIMIT 1"
    )[0]
    teams = [
        t
        for (t,) in _rows("SELECT team_id FROM debt_collections_teammember WHERE user_id = %(u)s", {"u": pk})
    ]
    return Subjects(get_user_model().objects.get(pk=pk), queue, teams)


def worklist_scenarios(subjects: Subjects, n: int) -> list[Scenario]:
    from debt_collections.models import StageChoices
    from loans.models import Bucket

    rng = random.Random(3)
    pk = subjects.collector.pk
    mine = _rows(
        "SELECT c.id, l.external_ref, l.borrower_id, b.full_name FROM debt_collections_case AS c"
        " JOIN loans_loan AS l ON l.id = c.loan_id JOIN loans_borrower AS b ON b.id = l.borrower_id"
        " WHERE c.status = 'open' AND c.assignee_id = %(u)s ORDER BY random() LIMIT 100",
        {"u": pk},
    )
    stages = [s for (s,) in _rows(
        "SELECT DISTINCT stage FROM debt_collections_case WHERE status = 'open' AND assignee_id = %(u)s", {"u": pk}
    )] or list(StageChoices.values)  # fmt: skip
    buckets = [b for b in Bucket.values if b != "current"]
    pages = max(1, subjects.queue // 50)
    name_prefixes = [name[: max(len("Borrower ") + 2, len(name) - 2)] for _, _, _, name in mine]
    phone_terms = [mobile_typed(borrower) for _, _, borrower, _ in mine]
    refs = [ref for _, ref, _, _ in mine]
    rng.shuffle(name_prefixes)
    htmx = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "worklist-results"}
    w = "work:worklist"
    scenarios = [
        Scenario("worklist", "mine, page 1", "collector", [url(w)], PAGE_P95_MS, n),
        Scenario("worklist", f"mine, page 20 (of {pages:,})", "collector", [url(w, page=min(20, pages))], PAGE_P95_MS, n),
        Scenario("worklist", "mine, page 1, htmx results partial", "collector", [url(w)], PAGE_P95_MS, n, htmx),
        Scenario("worklist", "stage filter (each stage)", "collector", [url(w, stage=s) for s in stages], PAGE_P95_MS, n),
        Scenario("worklist", "bucket filter (each bucket)", "collector", [url(w, bucket=b) for b in buckets], PAGE_P95_MS, n),
        Scenario("worklist", "promise due today", "collector", [url(w, promise_due="on")], PAGE_P95_MS, n),
        Scenario("worklist", "callbacks due", "collector", [url(w, callback="on")], PAGE_P95_MS, n),
        Scenario("worklist", "my teams", "collector", [url(w, scope="teams")], PAGE_P95_MS, n),
        Scenario("worklist", "my teams, page 20", "collector", [url(w, scope="teams", page=20)], PAGE_P95_MS, n),
        Scenario("worklist", "search: name prefix", "collector", [url(w, q=t) for t in name_prefixes], PAGE_P95_MS, n),
        Scenario("worklist", "search: phone, typed 138-xxxx-xxxx", "collector", [url(w, q=t) for t in phone_terms], PAGE_P95_MS, n),
        Scenario("worklist", "search: loan reference", "collector", [url(w, q=t) for t in refs], PAGE_P95_MS, n),
        Scenario("worklist", "search: name prefix, my teams", "collector",
                 [url(w, q=t, scope="teams") for t in name_prefixes], PAGE_P95_MS, n),
    ]  # fmt: skip
    return scenarios


def check_phone_search(subjects: Subjects) -> str:
    """The phone typed differently from the stored value finds the borrower through the hash."""
    from loans.crypto import contact_lookup_hash

    borrower = 1
    stored = mobile(borrower)
    same = contact_lookup_hash("phone", stored) == contact_lookup_hash("phone", mobile_typed(borrower))
    return f"{mobile_typed(borrower)!r} and {stored!r} hash alike: {'yes' if same else 'NO'}"


def case_scenarios(subjects: Subjects, n: int) -> list[Scenario]:
    """Random cases the collector may open (their own and their teams'), and the heaviest ones: a
    borrower with several loans, or 40+ contacts."""
    params = {"u": subjects.collector.pk, "teams": subjects.team_ids or [0], "n": n + 20}
    visible = "c.status = 'open' AND (c.assignee_id = %(u)s OR c.team_id = ANY(%(teams)s))"
    ordinary = [pk for (pk,) in _rows(
        f"SELECT c.id FROM debt_collections_case AS c WHERE {visible} ORDER BY random() LIMIT %(n)s", params
    )]  # fmt: skip
    heavy = [pk for (pk,) in _rows(
        f"""SELECT c.id FROM debt_collections_case AS c JOIN loans_loan AS l ON l.id = c.loan_id
            WHERE {visible} AND (
              (SELECT count(*) FROM loans_loan AS o WHERE o.borrower_id = l.borrower_id) > 1
              OR (SELECT count(*) FROM compliance_contactattempt AS a WHERE a.borrower_id = l.borrower_id) >= 40)
            ORDER BY random() LIMIT %(n)s""",
        params,
    )]  # fmt: skip
    scenarios = [
        Scenario(
            "case",
            "random visible cases",
            "collector",
            [url("work:case", pk) for pk in ordinary],
            PAGE_P95_MS,
            n,
        ),
    ]
    if heavy:
        scenarios.append(
            Scenario("case", "several loans or 40+ contacts", "collector",
                     [url("work:case", pk) for pk in heavy], PAGE_P95_MS, n, note=f"{len(heavy)} cases")
        )  # fmt: skip
    return scenarios


def supervisor_scenarios(people: Staff, n: int) -> list[Scenario]:
    """The approvals queue; the workload page of the team nearest WORKLOAD_TEAM_SIZE open cases for its
    own supervisor, and for the supervisor of it and the restructuring desk (both teams, and filtered
    to the one); the override requests."""
    note = "no target in the issue: 150 ms applied"
    counts = dict(
        _rows("SELECT team_id, count(*) FROM debt_collections_case WHERE status = 'open' GROUP BY team_id")
    )
    team = people.workload_team
    supervised = sum(counts.get(pk, 0) for pk in {people.workload_team.pk, people.approvals_team.pk})
    return [
        Scenario("supervisor", "approvals queue", "supervisor", [url("work:approvals")], PAGE_P95_MS, n, note=note),
        Scenario("supervisor", f"workload, {team.code} ({counts.get(team.pk, 0):,} open)", "team_supervisor",
                 [url("work:workload")], PAGE_P95_MS, n, note=note),
        Scenario("supervisor", f"workload, {team.code}, page 20", "team_supervisor",
                 [url("work:workload", page=20)], PAGE_P95_MS, n, note=note),
        Scenario("supervisor", f"workload, two teams ({supervised:,} open)", "supervisor",
                 [url("work:workload")], PAGE_P95_MS, n, note=note),
        Scenario("supervisor", f"workload, two teams, filtered to {team.code}", "supervisor",
                 [url("work:workload", team=team.pk)], PAGE_P95_MS, n, note=note),
        Scenario("supervisor", "override requests", "supervisor", [url("work:overrides")], PAGE_P95_MS, n, note=note),
    ]  # fmt: skip


def dashboard_scenarios(n: int) -> list[Scenario]:
    """The dashboards page (it draws all six charts in one response) and each chart's CSV, for the
    supervisor (their teams) and the compliance officer (every team), with the page's default filter
    (the last 30 days, six month ends)."""
    from debt_collections.views import dashboards

    scenarios = []
    for user, label in (("supervisor", "supervisor"), ("compliance", "compliance officer")):
        scenarios.append(
            Scenario("dashboards", f"page, six charts ({label})", user, [url("work:dashboards")],
                     DASHBOARD_P95_MS, n)
        )  # fmt: skip
        for chart in getattr(dashboards, "CSV_ROWS", {}):
            scenarios.append(
                Scenario("dashboards", f"{chart}.csv ({label})", user, [url("work:dashboard_csv", chart)],
                         DASHBOARD_P95_MS, n)
            )  # fmt: skip
    return scenarios


def chart_breakdown(user, repeat: int = 3) -> str:
    """Where the dashboards page's time goes, chart by chart: the view's own build_charts with the
    page's default filter, each ``*_chart`` function of the view module timed on the way (best of
    ``repeat``), the rest (the snapshot dates, the filter) as "other". It reaches into the view module
    by name; when that changes, it says so instead."""
    import functools

    from django.db import connection
    from django.test import RequestFactory

    from debt_collections.views import dashboards as views

    log = QueryLog()
    timings: dict[str, list] = {}
    originals = {
        name: getattr(views, name)
        for name in dir(views)
        if name.endswith("_chart") and callable(getattr(views, name))
    }

    def wrapped(name, fn):
        @functools.wraps(fn)
        def timed(*args, **kwargs):
            count, began = log.count, time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                timings.setdefault(name, []).append(((time.perf_counter() - began) * 1000, log.count - count))

        return timed

    totals = []
    try:
        request = RequestFactory().get("/work/dashboards/")
        request.user = user
        scope = views.Scope.of(user)
        form, currencies = views._filter_form(request, scope)
        form.is_valid()
        f = views._dashboard_filter(form, scope, currencies)
        for name, fn in originals.items():
            setattr(views, name, wrapped(name, fn))
        with connection.execute_wrapper(log):
            for _ in range(repeat):
                began = time.perf_counter()
                views.build_charts(f, scope)
                totals.append((time.perf_counter() - began) * 1000)
    except Exception as exc:  # noqa: BLE001 - a breakdown, not the measurement
        return f"(no breakdown: the dashboards module changed: {type(exc).__name__}: {exc})"
    finally:
        for name, fn in originals.items():
            setattr(views, name, fn)
    parts = [f"all six {min(totals):,.0f} ms"]
    charted = 0.0
    for name, runs in timings.items():
        best = min(runs)
        charted += best[0]
        parts.append(f"{name.removesuffix('_chart')} {best[0]:,.0f} ms/{best[1]}q")
    parts.append(f"other {max(min(totals) - charted, 0):,.0f} ms")
    return ", ".join(parts)


def compliance_scenarios(n: int) -> list[Scenario]:
    middle = scalar("SELECT (min(id) + max(id)) / 2 FROM compliance_auditevent")
    note = "no target in the issue: 150 ms applied"
    c = "compliance"
    return [
        Scenario(c, "home (attention counts)", c, [url("compliance:home")], PAGE_P95_MS, n, note=note),
        Scenario(c, "audit log, newest", c, [url("compliance:audit")], PAGE_P95_MS, n, note=note),
        Scenario(c, "audit log, a page in the middle", c, [url("compliance:audit", before=middle)], PAGE_P95_MS, n, note=note),
        Scenario(c, "audit log, type pii_reveal", c, [url("compliance:audit", event_type="pii_reveal")], PAGE_P95_MS, n, note=note),
        Scenario(c, "denied contacts", c, [url("compliance:denied_contacts")], PAGE_P95_MS, n, note=note),
        Scenario(c, "denied contacts, reason quiet_hours", c,
                 [url("compliance:denied_contacts", reason="quiet_hours")], PAGE_P95_MS, n, note=note),
        Scenario(c, "PII reveals", c, [url("compliance:pii_reveals")], PAGE_P95_MS, n, note=note),
    ]  # fmt: skip


# --- diagnosis ---------------------------------------------------------------------------------------


def diagnose(result: Result, clients: dict) -> str:
    """Where a page's time goes: SQL against Python, the statements that cost the most per request
    (the first one EXPLAINed with ANALYZE and BUFFERS), and a cProfile of a few requests."""
    from django.db import connection

    n = len(result.times_ms)
    lines = [
        f"median request {statistics.median(result.times_ms):,.1f} ms: SQL {statistics.median(result.sql_ms):,.1f} ms "
        f"({min(result.queries)}-{max(result.queries)} statements), Python and templates "
        f"{statistics.median(t - q for t, q in zip(result.times_ms, result.sql_ms, strict=True)):,.1f} ms",
        "statements by time per request (mean ms per request, runs per request, slowest ms):",
    ]
    ranked = sorted(result.statements.items(), key=lambda item: -item[1][1])
    for text, (count, total, slowest, _params) in ranked[:5]:
        lines.append(
            f"  {total * 1000 / n:8.2f} ms  x{count / n:<5.1f} max {slowest * 1000:7.1f}  {' '.join(text.split())[:220]}"
        )
    reads = [(text, entry) for text, entry in ranked if _is_read(text)]
    if reads:
        text, (count, total, slowest, params) = reads[0]
        with connection.cursor() as cur:
            rendered = cur.mogrify(text, params).decode()
            cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + text, params)
            plan = "\n".join(row[0] for row in cur.fetchall())
        lines += [
            f"the costliest read ({total * 1000 / n:.1f} ms per request, slowest {slowest * 1000:.1f} ms), "
            "with its slowest parameters:",
            rendered,
            "EXPLAIN (ANALYZE, BUFFERS):",
            plan,
        ]
    lines += ["cProfile of 5 requests:", profile(result.scenario, clients)]
    return "\n".join(lines)


def _is_read(text: str) -> bool:
    return text.lstrip().lstrip("(").lstrip().upper().startswith(("SELECT", "WITH"))


def profile(scenario: Scenario, clients: dict, count: int = 5) -> str:
    """The functions the requests spent their own time in, and the project's own code by cumulative
    time (views, selectors, template tags), paths shortened."""
    client = clients[scenario.user]
    profiler = cProfile.Profile()
    profiler.enable()
    for i in range(count):
        fetch(client, scenario.urls[i % len(scenario.urls)], scenario.headers)
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    out.write("by own time:\n")
    stats.sort_stats("tottime").print_stats(20)
    out.write("the project's code by cumulative time:\n")
    stats.sort_stats("cumulative").print_stats(
        r"^(?!.*site-packages).*/(loans|debt_collections|compliance|collections_site)/", 20
    )
    text = out.getvalue().replace(str(ROOT) + "/", "")
    return re.sub(r"\S*/site-packages/", "", text)


# --- the run -----------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--loans", type=int, default=1_000_000)
    parser.add_argument("--reuse", action="store_true", help="keep the template if it was built alike")
    parser.add_argument("--requests", type=int, default=200, help="timed requests per page")
    parser.add_argument("--dashboard-requests", type=int, default=20, help="timed requests per dashboard")
    parser.add_argument("--warmup", type=int, default=10, help="untimed requests before each page")
    parser.add_argument("--pages", default=",".join(PAGES))
    parser.add_argument("--open-cases", type=int, default=OPEN_CASES)
    parser.add_argument("--keep", action="store_true", help="keep the prepared copy (for --reuse-copy)")
    parser.add_argument("--reuse-copy", action="store_true", help="measure a copy kept by an earlier run")
    args = parser.parse_args()
    pages = [p.strip() for p in args.pages.split(",") if p.strip()]
    unknown = set(pages) - set(PAGES)
    if unknown:
        parser.error(f"unknown pages: {', '.join(sorted(unknown))} (choose from {', '.join(PAGES)})")
    if not same_server(API_URL, WEB_URL):
        sys.exit(
            "WEB_BENCH_DATABASE_URL must be on API_BENCH_DATABASE_URL's server (the copy is a template copy)"
        )

    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    tee = Tee(RESULTS / f"web-{stamp}.txt")
    sys.stdout = tee
    import django

    django.setup()
    from django.conf import settings
    from django.db import connection
    from django.test import Client

    if connection.vendor != "postgresql":
        sys.exit("bench/web.py needs PostgreSQL")
    template = f"{database_name(API_URL)}_template_{args.loans}"
    copy = database_name(WEB_URL)
    admin = scan_bench.connect("postgres")
    say(
        f"web bench: {args.loans:,} loans, template {template}, copy {copy}; {os.cpu_count()} CPUs, load average "
        f"{scan_bench.load_average()} (other work on the machine makes the timings noisy); DEBUG={settings.DEBUG}"
    )
    results: list[Result] = []
    diagnoses: list[str] = []
    try:
        ensure_template(admin, template, args.loans, args.reuse)
        marker = copy_marker(template, admin)
        steps = Steps()
        if args.reuse_copy and scan_bench.database_comment(admin, copy) == marker:
            say(f"reusing the prepared copy {copy}")
            scan_bench.use_database(copy)
            people = load_staff()
            prep_seconds = None
        else:
            scan_bench.copy_database(admin, template, copy)
            scan_bench.use_database(copy)
            say("preparing the copy:")
            steps.run("migrate the copy", migrate_copy)
            people = prepare(steps, args.open_cases)
            steps.run("VACUUM ANALYZE, CHECKPOINT", scan_bench.vacuum, copy)
            scan_bench.use_database(copy)
            with admin.cursor() as cur:
                cur.execute(f'COMMENT ON DATABASE "{copy}" IS %s', [marker])
            prep_seconds = steps.total
            say(f"prepared in {prep_seconds:.1f} s (the template copy included)")
        facts = book_facts()
        subjects = measured_collector()
        say(
            f"measured collector: {subjects.collector.username} ({subjects.queue:,} open cases in their queue)"
        )
        say(f"phone search check: {check_phone_search(subjects)}")

        clients = {}
        for key, user in (("collector", subjects.collector), ("supervisor", people.supervisor),
                          ("team_supervisor", people.team_supervisor),
                          ("compliance", people.compliance)):  # fmt: skip
            client = Client(raise_request_exception=False)  # a 500 is counted, not raised
            client.force_login(user)
            clients[key] = client
        scenarios: list[Scenario] = []
        skipped: list[str] = []
        plan = {
            "worklist": ("debt_collections/views/worklist.py", lambda: worklist_scenarios(subjects, args.requests)),
            "case": ("debt_collections/views/case.py", lambda: case_scenarios(subjects, args.requests)),
            "supervisor": ("debt_collections/views/supervisor.py", lambda: supervisor_scenarios(people, args.requests)),
            "dashboards": ("debt_collections/views/dashboards.py", lambda: dashboard_scenarios(args.dashboard_requests)),
            "compliance": ("compliance/views.py", lambda: compliance_scenarios(args.requests)),
        }  # fmt: skip
        for page in pages:
            module, build = plan[page]
            if placeholder(module):
                skipped.append(f"{page}: {module} still says 'to be built'")
                continue
            scenarios += build()
        for note in skipped:
            say(f"skipped {note}")

        log = QueryLog()
        with connection.execute_wrapper(log):
            for scenario in scenarios:
                warmup = min(args.warmup, max(2, scenario.requests // 10))
                result = run_scenario(scenario, clients, log, warmup)
                results.append(result)
                say(report_line(result))
            if any(s.group == "dashboards" for s in scenarios):
                for key, person in (
                    ("supervisor", people.supervisor),
                    ("compliance officer", people.compliance),
                ):
                    say(f"dashboards, each chart alone ({key}): {chart_breakdown(person)}")
            for result in results:
                if result.times_ms and not result.ok:
                    diagnoses.append(
                        f"=== {result.scenario.group}: {result.scenario.name} (p95 {ms(result.p95)} ms, "
                        f"target {result.scenario.target_ms:g} ms) ===\n{diagnose(result, clients)}"
                    )
    finally:
        if not args.keep:
            scan_bench.drop_database(admin, copy)
        admin.close()

    print_table(args, facts, subjects, results, prep_seconds, template, copy)
    for text in diagnoses:
        say("\n" + text)
    say(f"\nresults file: {tee.path.relative_to(ROOT)}")
    tee.close()


def print_table(args, facts, subjects, results, prep_seconds, template, copy) -> None:
    say("")
    say("book: " + ", ".join(f"{name} {value:,}" if isinstance(value, int) else f"{name} {value}"
                             for name, value in facts.items()))  # fmt: skip
    say(
        f"measured collector's queue: {subjects.queue:,} open cases; copy preparation: "
        + (f"{prep_seconds:.0f} s" if prep_seconds is not None else "reused")
    )
    say("reference: the issue's targets (no reference implementation to run beside it)")
    width = max((len(f"{r.scenario.group}: {r.scenario.name}") for r in results), default=20)
    say(f"{'page':<{width}}  {'target':>8}  {'p95':>9}  {'ratio':>6}  {'queries':>8}  verdict")
    for result in results:
        s = result.scenario
        label = f"{s.group}: {s.name}"
        if not result.times_ms:
            say(
                f"{label:<{width}}  {s.target_ms:>5g} ms  {'-':>9}  {'-':>6}  {'-':>8}  ERROR ({', '.join(result.errors)})"
            )
            continue
        queries = f"{min(result.queries)}" + (
            f"-{max(result.queries)}" if max(result.queries) != min(result.queries) else ""
        )
        verdict = "met" if result.ok else "MISSED"
        say(
            f"{label:<{width}}  {s.target_ms:>5g} ms  {result.p95:>6.1f} ms  {result.p95 / s.target_ms:>6.2f}  "
            f"{queries:>8}  {verdict}{'  (' + s.note + ')' if s.note else ''}"
        )
    met = sum(1 for r in results if r.ok)
    say(f"{met} of {len(results)} met; load average at the end: {scan_bench.load_average()}")
    if args.keep:
        say(f"(copy {copy} kept for --reuse-copy; drop it with: DROP DATABASE {copy})")
    say(f"(template {template} kept for --reuse)")


if __name__ == "__main__":
    main()
