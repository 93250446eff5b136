"""Benchmark: the nightly collections scan, in this process and on real Celery workers, in one run.

    .venv/bin/python bench/scan.py [--loans 1000000] [--reuse] [--chunk-size N] [--worker-chunk-size N]
                                   [--members-per-team 5] [--no-workers]

Seeds N loans x 12 monthly installments with bench/delinquency.py's set-based SQL (about 8% behind on
payments, over every bucket; its SEED_SQL and REFERENCE_SQL are imported, not copied) into a template
database, migrated (default policy, the five team queues) and with --members-per-team active collectors
in each team. The book is stale: every loan's figures zero, bucket 'current', no penalty. Each scenario
runs on its own copy of the template (CREATE DATABASE ... TEMPLATE, untimed, the copy time printed),
after VACUUM ANALYZE and CHECKPOINT before every timed step. It times

  1. reference:       REFERENCE_SQL (UPDATE loans_loan ... FROM (SELECT ... GROUP BY loan_id)) with the
                      refresh's session settings (loans.refresh.POSTGRES_SETTINGS), on the stale book;
  2. full first scan: scan_run(as_of=AS_OF, full=True) in this process from the same stale state:
                      refresh, cases, assignment, transitions, history, outbox (target: <= 3x the 1);
  3. next day:        untimed, 1% of the loans pay (half of them behind, half current) their oldest
                      unpaid installment(s) in full (set-based SQL on the installments' paid columns),
                      refreshed with delinquency_refresh(as_of=AS_OF + 1, loan_ids=...) as the payment
                      service would; then the incremental scan_run(as_of=AS_OF + 1) (target: < 10% of 2);
  4. same-day rerun:  scan_run(as_of=AS_OF + 1) again, a no-op (target: < 1 s); and, as an extra, a
                      forced rerun (force=True), which runs every chunk again and must write nothing;
  5. peak RSS of this process, which ran 2 to 4 (target: < 300 MB);
  6. scale-out:       the full first scan as the Celery task debt_collections.scan (full=True, about 10
                      chunks) on a `celery -A collections_site worker` over Redis, with --concurrency 1
                      and then 2 (prefork), each on a fresh stale copy, from dispatch until the ScanRun
                      is done (target: 2 processes >= 1.5x faster than 1).

It prints every figure, where the in-process scans spent their time (per SQL statement), and a table
of PASS/MISS against the targets. SCAN_BENCH_DATABASE_URL (default
postgres://postgres@127.0.0.1:5432/collections_scan_bench) names the server and the databases: the
template <name>_template (kept for --reuse) and the copies <name>_ref, <name>, <name>_w1, <name>_w2
(dropped at the end). SCAN_BENCH_REDIS_URL (default redis://127.0.0.1:6379/14) is the workers' broker
and result backend; they use its default queue, which the chord of chunk tasks is sent to, so give
the bench a Redis database of its own. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import os
import re
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _load_delinquency_bench():
    """bench/delinquency.py as a module: the seeding SQL, the reference UPDATE and the business date."""
    spec = importlib.util.spec_from_file_location("bench_delinquency", ROOT / "bench" / "delinquency.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # it points DATABASE_URL at its own database; ours is set below
    return module


delinquency_bench = _load_delinquency_bench()
os.environ["DATABASE_URL"] = os.environ.get(
    "SCAN_BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/collections_scan_bench"
)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "collections_site.settings")
# As in production: no query log in this process (its peak RSS is a target) nor in the workers.
os.environ["DEBUG"] = "false"
REDIS_URL = os.environ.get("SCAN_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")

AS_OF = delinquency_bench.AS_OF
NEXT_DAY = AS_OF + timedelta(days=1)
PAYING_SHARE = 0.01

# Targets.
FULL_VS_REFERENCE = 3.0
INCREMENTAL_VS_FULL = 0.10
RERUN_SECONDS = 1.0
PEAK_RSS_MB = 300
SCALE_OUT = 1.5

# The loan figures the refresh computes, penalty aside (the reference does not compute it).
DIGEST_SQL = """SELECT md5(string_agg(concat_ws(',', id, oldest_unpaid_due_date, overdue_principal,
    overdue_interest, overdue_fee, outstanding_principal, bucket), ';' ORDER BY id)) FROM loans_loan"""

# Next day's payers: half from the loans behind (paying 1 to 3 of their oldest unpaid installments, so
# some cure and some step down), half from current loans with an installment still to pay (paying
# their next one early).
PAYERS_SQL = [
    "SELECT setseed(0.24)",
    "DROP TABLE IF EXISTS bench_payers",
    """CREATE TEMPORARY TABLE bench_payers AS
       SELECT loan_id, 1 + floor(random() * 3)::int AS k FROM (
           SELECT id AS loan_id FROM loans_loan WHERE bucket <> 'current' ORDER BY random() LIMIT %(behind)s
       ) AS behind  -- k drawn apart from the sort key (in one SELECT both read the same random())
       UNION ALL
       (SELECT id, 1 FROM loans_loan
        WHERE bucket = 'current' AND oldest_unpaid_due_date IS NOT NULL ORDER BY random() LIMIT %(current)s)""",
]
# Each payer's k oldest unpaid current installments, paid in full (paid = due: the check constraints
# hold). No Payment rows: the bench book has none, and a replay would wipe the seeded paid amounts.
PAY_SQL = """
UPDATE loans_installment AS i
SET principal_paid = i.principal_due, interest_paid = i.interest_due, fee_paid = i.fee_due,
    penalty_paid = i.penalty_due
FROM (
    SELECT i.id, p.k, ROW_NUMBER() OVER (PARTITION BY i.loan_id ORDER BY i.due_date) AS n
    FROM bench_payers AS p
    JOIN loans_installment AS i ON i.loan_id = p.loan_id
    WHERE NOT i.superseded
      AND i.principal_paid + i.interest_paid + i.fee_paid + i.penalty_paid
          < i.principal_due + i.interest_due + i.fee_due + i.penalty_due
) AS u
WHERE i.id = u.id AND u.n <= u.k"""

# What a scan writes; a forced rerun of a done date must leave all of it as it was.
WRITTEN_SQL = {
    "cases": "SELECT count(*) FROM debt_collections_case",
    "open cases": "SELECT count(*) FROM debt_collections_case WHERE status = 'open'",
    "assigned": "SELECT count(*) FROM debt_collections_case WHERE status = 'open' AND assignee_id IS NOT NULL",
    "transitions": "SELECT count(*) FROM debt_collections_stagetransition",
    "case history": "SELECT count(*) FROM debt_collections_historicalcase",
    "outbox": "SELECT count(*) FROM debt_collections_outboxevent",
    "reminders": "SELECT count(*) FROM debt_collections_duereminder",
}


# --- databases --------------------------------------------------------------------------------------


def server_settings() -> dict:
    from django.conf import settings

    return settings.DATABASES["default"]


def connect(dbname: str):
    import psycopg2

    db = server_settings()
    conn = psycopg2.connect(
        dbname=dbname,
        user=db["USER"],
        host=db["HOST"],
        port=db["PORT"] or 5432,
        password=db["PASSWORD"] or None,
    )
    conn.autocommit = True
    return conn


def database_url(name: str) -> str:
    db = server_settings()
    return f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST']}:{db['PORT'] or 5432}/{name}"


def use_database(name: str | None) -> None:
    """Point this process's Django connection at another database (closed until next used)."""
    from django.db import connection

    connection.close()
    if name:
        connection.settings_dict["NAME"] = name


def drop_database(admin, name: str) -> None:
    use_database(None)  # in case this process is connected to it
    with admin.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def copy_database(admin, template: str, name: str) -> float:
    """A fresh copy of the template; FILE_COPY copies the files (WAL_LOG would log a GB-size book)."""
    drop_database(admin, name)
    started = time.perf_counter()
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}" STRATEGY = FILE_COPY')
    seconds = time.perf_counter() - started
    print(f"copy {name} from the template: {seconds:.1f} s", flush=True)
    return seconds


def database_comment(admin, name: str) -> str | None:
    with admin.cursor() as cur:
        cur.execute(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s", [name]
        )
        row = cur.fetchone()
    return row[0] if row else None


def vacuum(name: str) -> None:
    """VACUUM ANALYZE and CHECKPOINT, so no timed step pays for the previous step's dirty pages."""
    use_database(None)
    conn = connect(name)
    try:
        with conn.cursor() as cur:
            cur.execute("VACUUM ANALYZE")
            cur.execute("CHECKPOINT")
    finally:
        conn.close()


def load_average() -> str:
    return " / ".join(f"{x:.2f}" for x in os.getloadavg()) + " (1 / 5 / 15 min)"


def query_one(sql: str, params=None):
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchone()[0]


def written_counts() -> dict:
    return {name: query_one(sql) for name, sql in WRITTEN_SQL.items()}


# --- the template ----------------------------------------------------------------------------------


def staff_teams(per_team: int) -> int:
    """``per_team`` active collectors in every team queue (none by default: cases open unassigned)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from debt_collections.models import Team, TeamMember

    user_model = get_user_model()
    users, members = [], []
    for team in Team.objects.order_by("code"):
        for i in range(1, per_team + 1):
            user = user_model(username=f"bench-{team.code}-{i}", is_active=True)
            user.set_unusable_password()
            users.append(user)
            members.append(TeamMember(team=team, user=user, is_active=True))
    user_model.objects.bulk_create(users)
    TeamMember.objects.bulk_create(members)
    Group.objects.get(name="collector").user_set.add(*users)
    return len(members)


def build_template(admin, template: str, loans: int, per_team: int, reuse: bool) -> None:
    from django.core.management import call_command
    from django.db import connection, transaction

    marker = f"scan bench template: {loans} loans, {per_team} members per team, as of {AS_OF}"
    if reuse and database_comment(admin, template) == marker:
        print(f"reusing {template} ({marker})", flush=True)
        return
    print(f"seeding {loans:,} loans x 12 installments into {template} ...", flush=True)
    started = time.perf_counter()
    drop_database(admin, template)
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{template}"')
    use_database(template)
    call_command("migrate", verbosity=0)
    migrated = time.perf_counter() - started
    params = {"n": loans, "as_of": AS_OF.isoformat()}
    with transaction.atomic(), connection.cursor() as cur:
        for statement in delinquency_bench.SEED_SQL:
            cur.execute(statement, params)
        members = staff_teams(per_team)
    vacuum(template)
    with admin.cursor() as cur:
        cur.execute(f'COMMENT ON DATABASE "{template}" IS %s', [marker])
    print(
        f"seeded in {time.perf_counter() - started:.1f} s (migrate {migrated:.1f} s); "
        f"{members} active team members",
        flush=True,
    )


# --- timing -----------------------------------------------------------------------------------------


def _label(sql: str) -> str:
    text = " ".join(sql.split())
    if text.startswith("WITH a AS MATERIALIZED"):
        return "delinquency_refresh: penalty UPDATE + loan UPDATE (one statement)"
    if text.startswith("WITH RECURSIVE"):
        return "assignment: INSERT INTO scan_assign (least-loaded, recursive CTE)"
    event = re.match(r"INSERT INTO \"debt_collections_outboxevent\".*?SELECT '([\w.]+)'", text)
    if event:
        return f"INSERT INTO outbox: {event.group(1)}"
    history = re.match(r"INSERT INTO \"(\w+)\"", text)
    if history and history.group(1).startswith("debt_collections_historical"):
        return f"INSERT INTO {history.group(1)} (history rows)"
    return text[:90]


class StatementTimer:
    """A Django execute wrapper adding up the time of each kind of SQL statement."""

    def __init__(self):
        self.totals = defaultdict(lambda: [0, 0.0])

    def __call__(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            total = self.totals[_label(sql)]
            total[0] += 1
            total[1] += time.perf_counter() - started

    def report(self, wall: float, top: int = 12) -> None:
        rows = sorted(self.totals.items(), key=lambda item: -item[1][1])
        in_sql = sum(seconds for _, seconds in self.totals.values())
        print(
            f"  where the time went ({in_sql:.2f} s in {sum(n for n, _ in self.totals.values())} SQL "
            f"statements, {max(wall - in_sql, 0):.2f} s in Python):"
        )
        for label, (count, seconds) in rows[:top]:
            print(f"    {seconds:8.2f} s {100 * seconds / wall:5.1f}%  x{count:<4} {label}")


def timed_scan(**kwargs):
    """scan_run(**kwargs) in this process: (seconds, summary, statement timer)."""
    from django.db import connection

    from debt_collections.scan import scan_run

    timer = StatementTimer()
    started = time.perf_counter()
    with connection.execute_wrapper(timer):
        summary = scan_run(**kwargs)
    return time.perf_counter() - started, summary, timer


# --- workers ----------------------------------------------------------------------------------------


@contextmanager
def celery_worker(database: str, concurrency: int):
    """A real `celery worker` process group on ``database``, ended on the way out whatever happens."""
    from celery import Celery

    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url(database), CELERY_BROKER_URL=REDIS_URL, CELERY_RESULT_BACKEND=REDIS_URL
    )
    log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - kept open for the worker's lifetime
        mode="w", prefix=f"scan-bench-worker-c{concurrency}-", suffix=".log", delete=False
    )
    process = subprocess.Popen(  # noqa: S603 - a fixed command line
        [sys.executable, "-m", "celery", "-A", "collections_site", "worker", "--pool", "prefork",
         "--concurrency", str(concurrency), "--purge", "--without-gossip", "--without-mingle",
         "--without-heartbeat", "--loglevel", "INFO", "--hostname", f"scan-bench-c{concurrency}@%h"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    client = Celery("scan-bench-client", broker=REDIS_URL, backend=REDIS_URL)
    try:
        deadline = time.monotonic() + 120
        while not client.control.ping(timeout=0.5):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the celery worker did not start; its log: {log.name}")
        yield client, process, log.name
    finally:
        client.close()
        if process.poll() is None:
            process.terminate()  # warm shutdown: its tasks are done by now, unless something failed
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)  # its own process group: the worker and its pool
                process.wait()
        log.close()


def scan_on_workers(database: str, concurrency: int, chunk_size: int, timeout: float):
    """The full first scan as the Celery task: (seconds from dispatch to done, summary)."""
    from debt_collections.models import ScanRun
    from debt_collections.scan import summarise

    use_database(database)
    with celery_worker(database, concurrency) as (client, process, log_name):
        started = time.perf_counter()
        client.send_task(
            "debt_collections.scan",
            kwargs={"as_of": AS_OF.isoformat(), "full": True, "chunk_size": chunk_size},
        )
        while not ScanRun.objects.filter(as_of=AS_OF, status=ScanRun.Status.DONE).exists():
            if process.poll() is not None:
                raise RuntimeError(f"the celery worker died; its log: {log_name}")
            if time.perf_counter() - started > timeout:
                raise RuntimeError(f"the scan on the workers took over {timeout:.0f} s; log: {log_name}")
            time.sleep(0.2)
        seconds = time.perf_counter() - started
    print(f"  worker log: {log_name}")
    return seconds, summarise(ScanRun.objects.get(as_of=AS_OF))


# --- the run ----------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--loans", type=int, default=1_000_000)
    parser.add_argument(
        "--reuse", action="store_true", help="keep the seeded template if it has --loans loans"
    )
    parser.add_argument(
        "--chunk-size",
        type=int,
        default=None,
        help="loans per chunk of the in-process scans (default COLLECTIONS_SCAN_CHUNK_SIZE)",
    )
    parser.add_argument(
        "--worker-chunk-size",
        type=int,
        default=None,
        help="loans per chunk on the workers (default: about 10 chunks)",
    )
    parser.add_argument("--members-per-team", type=int, default=5)
    parser.add_argument("--worker-timeout", type=float, default=3600)
    parser.add_argument("--no-workers", action="store_true", help="skip the scale-out on Celery workers")
    args = parser.parse_args()

    import django

    django.setup()
    from django.conf import settings
    from django.db import connection, transaction

    from loans.refresh import POSTGRES_SETTINGS, delinquency_refresh

    if connection.vendor != "postgresql":
        sys.exit("bench/scan.py needs PostgreSQL (SCAN_BENCH_DATABASE_URL)")
    chunk_size = args.chunk_size or settings.COLLECTIONS_SCAN_CHUNK_SIZE
    worker_chunk_size = args.worker_chunk_size or max(1, math.ceil(args.loans / 10))
    base = server_settings()["NAME"]
    template = f"{base}_template"
    ref_db, main_db = f"{base}_ref", base
    worker_dbs = {1: f"{base}_w1", 2: f"{base}_w2"}
    copies = [ref_db, main_db, *worker_dbs.values()]
    figures: dict = {}
    admin = connect("postgres")
    print(
        f"scan bench: {args.loans:,} loans x 12 installments, as of {AS_OF}, {os.cpu_count()} CPUs, "
        f"load average {load_average()} (other work on the machine makes the timings noisy)",
        flush=True,
    )
    try:
        for name in copies:
            drop_database(admin, name)  # left over from a run that was killed
        build_template(admin, template, args.loans, args.members_per_team, args.reuse)
        use_database(None)

        # 1. The reference, on a stale copy of its own.
        figures["copy"] = copy_database(admin, template, ref_db)
        vacuum(ref_db)
        use_database(ref_db)

        def reference():
            with transaction.atomic(), connection.cursor() as cur:
                for statement in POSTGRES_SETTINGS:
                    cur.execute(statement)
                cur.execute(delinquency_bench.REFERENCE_SQL, {"as_of": AS_OF.isoformat()})

        started = time.perf_counter()
        reference()
        figures["reference"] = time.perf_counter() - started
        reference_digest = query_one(DIGEST_SQL)
        print(
            f"reference UPDATE ... FROM (SELECT ... GROUP BY loan_id): {figures['reference']:.2f} s",
            flush=True,
        )
        drop_database(admin, ref_db)

        # 2. The full first scan, in this process, from the same stale state.
        copy_database(admin, template, main_db)
        vacuum(main_db)
        use_database(main_db)
        figures["full"], full, timer = timed_scan(as_of=AS_OF, full=True, chunk_size=chunk_size)
        print(f"full first scan, in-process, chunks of {chunk_size:,}: {figures['full']:.2f} s", flush=True)
        print(f"  {full.line()}")
        figures["same_figures"] = query_one(DIGEST_SQL) == reference_digest
        print(
            f"  same loan figures as the reference (penalty aside): {'yes' if figures['same_figures'] else 'NO'}"
        )
        print(f"  written: {written_counts()}")
        timer.report(figures["full"])

        # 3. Next day: 1% of the loans pay (untimed), then the incremental scan.
        paying = max(2, round(args.loans * PAYING_SHARE))
        with transaction.atomic(), connection.cursor() as cur:
            for statement in PAYERS_SQL:
                cur.execute(statement, {"behind": paying // 2, "current": paying - paying // 2})
            cur.execute(PAY_SQL)
            installments_paid = cur.rowcount
            cur.execute("SELECT loan_id FROM bench_payers ORDER BY loan_id")
            payers = [row[0] for row in cur.fetchall()]
            cur.execute(
                "SELECT count(*) FROM bench_payers AS p JOIN loans_loan AS l ON l.id = p.loan_id"
                " WHERE l.bucket <> 'current'"
            )
            behind = cur.fetchone()[0]
            cur.execute("DROP TABLE bench_payers")
        refreshed = delinquency_refresh(as_of=NEXT_DAY, loan_ids=payers)
        print(
            f"next day ({NEXT_DAY}), untimed: {len(payers):,} loans pay ({behind:,} behind, "
            f"{len(payers) - behind:,} current), {installments_paid:,} installments paid in full; "
            f"delinquency_refresh(loan_ids=...): {refreshed.loans_changed:,} loans changed",
            flush=True,
        )
        vacuum(main_db)
        use_database(main_db)
        figures["incremental"], incremental, timer = timed_scan(as_of=NEXT_DAY, chunk_size=chunk_size)
        print(f"next-day incremental scan: {figures['incremental']:.2f} s", flush=True)
        print(f"  {incremental.line()}")
        timer.report(figures["incremental"])

        # 4. Same-day rerun (a no-op), then a forced rerun that must write nothing.
        vacuum(main_db)
        use_database(main_db)
        figures["rerun"], rerun, _ = timed_scan(as_of=NEXT_DAY, chunk_size=chunk_size)
        print(f"same-day rerun: {figures['rerun']:.3f} s (already done: {rerun.already_done})", flush=True)
        before = written_counts()
        vacuum(main_db)
        use_database(main_db)
        forced_at = query_one("SELECT now()")
        figures["forced"], forced, timer = timed_scan(as_of=NEXT_DAY, force=True, chunk_size=chunk_size)
        after = written_counts()
        touched = query_one("SELECT count(*) FROM debt_collections_case WHERE updated_at >= %s", [forced_at])
        figures["forced_wrote_nothing"] = (
            before == after and touched == 0 and forced.counts["loans_changed"] == 0
        )
        print(f"forced rerun (force=True), every chunk again: {figures['forced']:.2f} s", flush=True)
        print(f"  {forced.line()}")
        print(f"  before: {before}")
        print(f"  after:  {after}")
        print(
            f"  cases updated by it: {touched}, loans changed: {forced.counts['loans_changed']}; "
            f"wrote nothing: {'yes' if figures['forced_wrote_nothing'] else 'NO'}"
        )
        timer.report(figures["forced"], top=6)

        # 5. This process ran every in-process scan.
        figures["rss"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"peak RSS of this Python process: {figures['rss']:.0f} MB (its whole life: the migrate and seeding"
            " of the template too, when this run built it)",
            flush=True,
        )
        drop_database(admin, main_db)

        # 6. Scale-out on real workers, each from a fresh stale copy.
        if not args.no_workers:
            import redis

            redis.Redis.from_url(REDIS_URL).ping()
            for concurrency, name in worker_dbs.items():
                copy_database(admin, template, name)
                vacuum(name)
                seconds, summary = scan_on_workers(name, concurrency, worker_chunk_size, args.worker_timeout)
                figures[f"workers{concurrency}"] = seconds
                same = summary.counts == full.counts
                print(
                    f"Celery worker --concurrency {concurrency}, chunks of {worker_chunk_size:,}: "
                    f"{seconds:.2f} s from dispatch to done",
                    flush=True,
                )
                print(f"  {summary.line()}")
                print(f"  same counts as the in-process full scan: {'yes' if same else 'NO'}")
                figures[f"workers{concurrency}_same"] = same
                drop_database(admin, name)
    finally:
        for name in copies:
            drop_database(admin, name)
        admin.close()

    print_table(args, figures, chunk_size, worker_chunk_size, template)


def print_table(args, figures: dict, chunk_size: int, worker_chunk_size: int, template: str) -> None:
    def verdict(ok: bool) -> str:
        return "PASS" if ok else "MISS"

    rows = [
        ("reference: REFERENCE_SQL, stale book", f"{figures['reference']:.2f} s", "", ""),
        (
            "full first scan, in-process",
            f"{figures['full']:.2f} s",
            f"<= {FULL_VS_REFERENCE:g}x reference",
            f"{figures['full'] / figures['reference']:.2f}x  {verdict(figures['full'] <= FULL_VS_REFERENCE * figures['reference'])}",
        ),
        (
            "  same loan figures as the reference",
            "yes" if figures["same_figures"] else "NO",
            "yes",
            verdict(figures["same_figures"]),
        ),
        (
            "next-day incremental scan (1% paid)",
            f"{figures['incremental']:.2f} s",
            f"< {INCREMENTAL_VS_FULL:.0%} of full",
            f"{figures['incremental'] / figures['full']:.1%}  {verdict(figures['incremental'] < INCREMENTAL_VS_FULL * figures['full'])}",
        ),
        (
            "same-day rerun (done: no-op)",
            f"{figures['rerun']:.3f} s",
            f"< {RERUN_SECONDS:g} s",
            verdict(figures["rerun"] < RERUN_SECONDS),
        ),
        (
            "forced rerun (extra)",
            f"{figures['forced']:.2f} s",
            "writes nothing",
            verdict(figures["forced_wrote_nothing"]),
        ),
        (
            "peak RSS, this process",
            f"{figures['rss']:.0f} MB",
            f"< {PEAK_RSS_MB} MB",
            verdict(figures["rss"] < PEAK_RSS_MB),
        ),
    ]
    if "workers1" in figures:
        speedup = figures["workers1"] / figures["workers2"]
        rows += [
            ("Celery, 1 worker process", f"{figures['workers1']:.2f} s", "", ""),
            (
                "Celery, 2 worker processes",
                f"{figures['workers2']:.2f} s",
                f">= {SCALE_OUT:g}x faster than 1",
                f"{speedup:.2f}x  {verdict(speedup >= SCALE_OUT)}",
            ),
            (
                "  same counts as in-process",
                "yes" if figures["workers1_same"] and figures["workers2_same"] else "NO",
                "yes",
                verdict(figures["workers1_same"] and figures["workers2_same"]),
            ),
        ]
    print()
    print(
        f"loans: {args.loans:,}  installments: {args.loans * 12:,}  as of {AS_OF}  chunks: {chunk_size:,} "
        f"in-process, {worker_chunk_size:,} on the workers  template copy: {figures['copy']:.1f} s"
    )
    width = max(len(r[0]) for r in rows)
    print(f"{'figure':<{width}}  {'value':>10}  {'target':<26}  result")
    for name, value, target, result in rows:
        print(f"{name:<{width}}  {value:>10}  {target:<26}  {result}")
    print(f"load average at the end: {load_average()}")
    print(f"(template {template} kept for --reuse; drop it with: DROP DATABASE {template})")


if __name__ == "__main__":
    main()
