"""Benchmark: the partner API over HTTP, gunicorn with 2 workers on PostgreSQL, driven by locust.

    .venv/bin/python bench/api.py [--loans 1000000] [--seconds 60] [--reuse] [--build-only]
        [--rate 50] [--batch-users 3] [--batch-size 1000] [--case-rate 20] [--pool N]
        [--scenarios single,batch,cases] [--warmup 5] [--workers 2]

Seeds N loans x 12 monthly installments into a template database with bench/scan.py's
build_template (bench/delinquency.py's set-based SQL, five collectors per team), then runs the full
first collections scan on it (scan_run(as_of=AS_OF, full=True): about 7% of the loans get an open
case, assigned), gives a pool of current loans with installments left to pay a payment history
(one payment per installment paid, with its allocation, as if paid on its due date, so that a new
payment adds to the history rather than replaying a loan that has none) and makes a partner key with
every scope (api.keys.partner_key_create, kept in the table apibench_key). The template is kept,
marked with a comment, for --reuse. Each run copies it (CREATE DATABASE ... TEMPLATE), starts
`gunicorn collections_site.wsgi -w 2` on a free loopback port (DEBUG off, CONN_MAX_AGE 60 as in
production, throttling out of reach, cache and Celery broker on Redis database 13, which is
flushed), waits for /healthz and drives three bounded locust scenarios (bench/api_locustfile.py,
headless, in a process of its own), each with a few seconds of warm-up before its measured window:

  1. single payment POST /api/v1/payments/ at a constant --rate requests/s (one user per request/s,
     started spread over a second), each to another loan: p50/p95/p99, achieved throughput, errors
     (target: p95 < 30 ms at 50 requests/s);
  2. batch ingestion POST /api/v1/payments/batch/ with --batch-size payments to distinct loans, from
     --batch-users users back to back (disjoint loans): accepted payments per second and the p95 of
     a batch (target: >= 5,000 payments/s);
  3. case list GET /api/v1/cases/ at --case-rate requests/s, rotating the filter mixes (none,
     status=, stage=, bucket=, dpd_min/dpd_max, assignee=), each its first page: p50/p95/p99,
     overall and per mix (target: p95 < 50 ms). The API counts days past due to today, so the dpd
     ranges are AS_OF's moved by the days since.

It prints every figure and a table of PASS/MISS against the targets. The reference is the issue's
targets themselves: there is no reference implementation to run beside it. Locust, gunicorn and
PostgreSQL share the machine (the load generator's CPU use is printed), so other work on it makes
the timings noisy. API_BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/apibench)
names the server and the databases: the template <name>_template_<loans> and the run's copy <name>
(dropped at the end); API_BENCH_REDIS_URL (default redis://127.0.0.1:6379/13) is flushed before
and after. Not part of the test suite; needs the bench extra (locust).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Run as a script, this file's folder comes first on sys.path, where "api" would be this file and
# not the Django app: the project root goes first instead.
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]

from bench import scan as scan_bench  # noqa: E402 - sets DATABASE_URL for itself; ours is set below

os.environ["DATABASE_URL"] = os.environ.get(
    "API_BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/apibench"
)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "collections_site.settings")
os.environ["DEBUG"] = "false"
REDIS_URL = os.environ.get("API_BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
LOCUSTFILE = ROOT / "bench" / "api_locustfile.py"

AS_OF = scan_bench.AS_OF
MEMBERS_PER_TEAM = 5

# Targets (the performance section).
SINGLE_P95_MS = 30.0
SINGLE_RATE = 50.0
BATCH_PAYMENTS_PER_S = 5000.0
CASES_P95_MS = 50.0

# The payment pool: current loans with installments still to pay (no penalty, no case), lowest ids
# first. Each installment paid so far gets the payment that paid it, on its due date, and the
# allocation row allocate() would give it, so that loan_replay finds the history it expects.
POOL_SQL = [
    "DROP TABLE IF EXISTS apibench_pool",
    """CREATE TABLE apibench_pool AS
       SELECT id AS loan_id FROM loans_loan
       WHERE status = 'active' AND bucket = 'current' AND oldest_unpaid_due_date IS NOT NULL
       ORDER BY id LIMIT %(pool)s""",
    "ALTER TABLE apibench_pool ADD PRIMARY KEY (loan_id)",
    # Payment ids are the installment ids (unique, and in due-date order within a loan).
    """INSERT INTO loans_payment (id, partner_id, loan_id, external_ref, amount, currency, value_date,
         received_at, channel, status, reversal_reason, unapplied_amount, created_at)
       SELECT i.id, l.partner_id, i.loan_id, 'HIST-' || i.id,
              i.principal_paid + i.interest_paid + i.fee_paid + i.penalty_paid, l.currency, i.due_date,
              (i.due_date + time '10:00') AT TIME ZONE 'Asia/Shanghai', 'bank_transfer', 'posted', '', 0, now()
       FROM apibench_pool AS p
       JOIN loans_loan AS l ON l.id = p.loan_id
       JOIN loans_installment AS i ON i.loan_id = p.loan_id
       WHERE NOT i.superseded AND i.principal_paid + i.interest_paid + i.fee_paid + i.penalty_paid > 0
       ORDER BY i.loan_id, i.due_date""",
    """INSERT INTO loans_allocation (payment_id, installment_id, principal, interest, fee, penalty)
       SELECT i.id, i.id, i.principal_paid, i.interest_paid, i.fee_paid, i.penalty_paid
       FROM apibench_pool AS p JOIN loans_installment AS i ON i.loan_id = p.loan_id
       WHERE NOT i.superseded AND i.principal_paid + i.interest_paid + i.fee_paid + i.penalty_paid > 0""",
    "SELECT setval(pg_get_serial_sequence('loans_payment', 'id'),"
    " (SELECT coalesce(max(id), 0) + 1 FROM loans_payment), false)",
]


def case_queries(shift: int, assignee: str | None) -> list[dict]:
    """The case list's filter mixes, each asking for its first page. The API's days past due count to
    today, ``shift`` days after the book's AS_OF: the dpd ranges are the AS_OF ones moved by it."""
    queries = [
        {"name": "no filter", "params": {}},
        {"name": "status=open", "params": {"status": "open"}},
        {"name": "stage=notice", "params": {"stage": "notice"}},
        {"name": "stage=early_warning", "params": {"stage": "early_warning"}},
        {"name": "bucket=31-60", "params": {"bucket": "31-60"}},
        {"name": "bucket=91-180", "params": {"bucket": "91-180"}},
    ]
    for low, high in ((31, 90), (91, 400)):
        queries.append(
            {
                "name": f"dpd {low}..{high} at AS_OF",
                "params": {"dpd_min": low + shift, "dpd_max": high + shift},
            }
        )
    if assignee:
        queries.append({"name": "assignee=<collector>", "params": {"assignee": assignee, "status": "open"}})
    return queries


# A run pays only pool loans with at least this much principal outstanding (payments are <= 250.50),
# so that none is paid off, and refuses the next payment, within a run.
POOL_MIN_OUTSTANDING = 2000


# --- the template ----------------------------------------------------------------------------------


def migrations_digest() -> str:
    """A digest of the migrations on disk: a template built before a new migration is not reused."""
    import hashlib

    from django.db.migrations.loader import MigrationLoader

    names = sorted(
        f"{app}.{name}" for app, name in MigrationLoader(None, ignore_no_migrations=True).disk_migrations
    )
    return hashlib.sha256("\n".join(names).encode()).hexdigest()[:12]


def template_marker(loans: int, pool: int) -> str:
    return (
        f"api bench template: {loans} loans, {MEMBERS_PER_TEAM} members per team, as of {AS_OF}, "
        f"scanned, payment pool {pool}, migrations {migrations_digest()}"
    )


def build_template(admin, template: str, loans: int, pool: int, reuse: bool) -> None:
    from django.db import connection, transaction

    from api.keys import partner_key_create
    from api.models import SCOPES
    from debt_collections.scan import scan_run
    from loans.models import Partner

    marker = template_marker(loans, pool)
    if reuse and scan_bench.database_comment(admin, template) == marker:
        print(f"reusing {template} ({marker})", flush=True)
        return
    started = time.perf_counter()
    scan_bench.build_template(admin, template, loans, MEMBERS_PER_TEAM, reuse=False)
    with admin.cursor() as cur:  # not a usable template until this build ends
        cur.execute(f'COMMENT ON DATABASE "{template}" IS NULL')
    scan_bench.use_database(template)

    step = time.perf_counter()
    summary = scan_run(as_of=AS_OF, full=True)
    print(f"full first scan as of {AS_OF}: {time.perf_counter() - step:.1f} s; {summary.line()}", flush=True)

    step = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cur:
        for statement in POOL_SQL:
            cur.execute(statement, {"pool": pool})
        cur.execute("SELECT count(*) FROM apibench_pool")
        pooled = cur.fetchone()[0]
        cur.execute("SELECT count(*) FROM loans_payment")
        history = cur.fetchone()[0]
    print(
        f"payment pool: {pooled:,} current loans, {history:,} past payments and allocations "
        f"({time.perf_counter() - step:.1f} s)",
        flush=True,
    )

    _row, key = partner_key_create(
        partner=Partner.objects.get(code="bench"),
        name="api bench",
        scopes=list(SCOPES),
        created_by="bench/api.py",
    )
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("CREATE TABLE apibench_key (key text NOT NULL)")
        cur.execute("INSERT INTO apibench_key (key) VALUES (%s)", [key])
    scan_bench.vacuum(template)
    with admin.cursor() as cur:
        cur.execute(f'COMMENT ON DATABASE "{template}" IS %s', [marker])
    print(f"template {template} built in {time.perf_counter() - started:.1f} s", flush=True)


def template_facts(database: str) -> dict:
    """What the run needs from its copy: the key, the pools' loans, the book's size."""
    conn = scan_bench.connect(database)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT key FROM apibench_key")
            key = cur.fetchone()[0]
            cur.execute(
                "SELECT p.loan_id FROM apibench_pool AS p JOIN loans_loan AS l ON l.id = p.loan_id"
                " WHERE l.status = 'active' AND l.outstanding_principal >= %s ORDER BY p.loan_id",
                [POOL_MIN_OUTSTANDING],
            )
            pool = [row[0] for row in cur.fetchall()]
            cur.execute("SELECT count(*) FROM loans_loan")
            loans = cur.fetchone()[0]
            cur.execute("SELECT count(*), count(*) FILTER (WHERE status = 'open') FROM debt_collections_case")
            cases, open_cases = cur.fetchone()
            cur.execute("SELECT count(*) FROM loans_payment")
            payments = cur.fetchone()[0]
            cur.execute(
                "SELECT u.username FROM debt_collections_case AS c JOIN auth_user AS u ON u.id = c.assignee_id"
                " WHERE c.status = 'open' GROUP BY u.username ORDER BY count(*) DESC, u.username LIMIT 1"
            )
            row = cur.fetchone()
    finally:
        conn.close()
    return {
        "key": key,
        "pool": pool,
        "loans": loans,
        "cases": cases,
        "open_cases": open_cases,
        "payments": payments,
        "assignee": row[0] if row else None,
    }


def payments_posted(database: str, run: str) -> tuple[int, int]:
    """(payments this run posted, loans they went to), from the database itself."""
    conn = scan_bench.connect(database)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT count(*), count(DISTINCT loan_id) FROM loans_payment WHERE external_ref LIKE %s",
                [f"{run}-%"],
            )
            return cur.fetchone()
    finally:
        conn.close()


# --- the server ------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def flush_redis() -> None:
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()


@contextmanager
def gunicorn(database: str, workers: int):
    """``gunicorn collections_site.wsgi`` on a free loopback port, its process group ended on the way out."""
    port = free_port()
    env = dict(os.environ)
    env.update(
        DATABASE_URL=scan_bench.database_url(database),
        DJANGO_ENV="development",
        DEBUG="false",
        CONN_MAX_AGE="60",
        API_THROTTLE_RATE="1000000/min",
        CACHE_URL=REDIS_URL,
        CELERY_BROKER_URL=REDIS_URL,
        CELERY_RESULT_BACKEND=REDIS_URL,
        LOG_LEVEL="WARNING",
    )
    log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - kept open for the server's lifetime
        mode="w", prefix="api-bench-gunicorn-", suffix=".log", delete=False
    )
    process = subprocess.Popen(  # noqa: S603 - a fixed command line
        [sys.executable, "-m", "gunicorn", "collections_site.wsgi", "--workers", str(workers),
         "--bind", f"127.0.0.1:{port}", "--timeout", "300", "--log-level", "warning"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    host = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {process.returncode}; its log: {log.name}")
            try:
                with urllib.request.urlopen(f"{host}/healthz", timeout=2) as response:  # noqa: S310
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not answer /healthz within 60 s; its log: {log.name}")
            time.sleep(0.2)
        print(f"gunicorn: {workers} sync workers on {host} (log {log.name})", flush=True)
        yield host, log.name
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        log.close()


def run_scenario(config_path: str, scenario: str, seconds: float, warmup: float, users: int, rate) -> dict:
    """One locust scenario in a process of its own (locust monkey-patches with gevent)."""
    with tempfile.NamedTemporaryFile(prefix=f"api-bench-{scenario}-", suffix=".json", delete=False) as out:
        out_path = out.name
    command = [
        sys.executable, str(LOCUSTFILE), "--config", config_path, "--scenario", scenario,
        "--seconds", str(seconds), "--warmup", str(warmup), "--users", str(users), "--out", out_path,
    ]  # fmt: skip
    if rate:
        command += ["--rate", str(rate)]
    completed = subprocess.run(  # noqa: S603 - a fixed command line
        command, cwd=ROOT, capture_output=True, text=True, timeout=seconds + warmup + 600
    )
    if completed.returncode != 0:
        raise RuntimeError(
            f"locust ({scenario}) failed with {completed.returncode}:\n{completed.stderr[-3000:]}"
        )
    with open(out_path) as f:
        result = json.load(f)
    os.unlink(out_path)
    return result


# --- the report ------------------------------------------------------------------------------------


def ms(value) -> str:
    return "-" if value is None else f"{value:.1f} ms"


def print_result(title: str, result: dict) -> None:
    lat = result["latency_ms"]
    print(
        f"{title}: {result['requests']:,} requests in {result['window_seconds']:.1f} s "
        f"({result['throughput']:.1f}/s), {result['errors']} errors; p50 {ms(lat['p50'])}, "
        f"p95 {ms(lat['p95'])}, p99 {ms(lat['p99'])}, max {ms(lat['max'])}; load generator CPU "
        f"{result['load_generator_cpu']:.0%} of a core",
        flush=True,
    )
    if "payments_per_second" in result:
        print(
            f"  batches: {result['batches']:,}, payments accepted {result['accepted']:,}, rejected "
            f"{result['rejected']:,}: {result['payments_per_second']:,.0f} accepted payments/s"
        )
    if len(result["by_name"]) > 1:
        for name, figures in result["by_name"].items():
            print(
                f"  {name}: {figures['n']:,} requests, p50 {ms(figures['p50'])}, p95 {ms(figures['p95'])}, "
                f"p99 {ms(figures['p99'])}"
            )
    for message, count in result["failure_examples"]:
        print(f"  x{count} {message}")
    if not result.get("drained", True):
        print(
            "  requests were still in flight 300 s after the window closed: the next scenario overlaps them"
        )


def print_table(args, facts: dict, results: dict) -> None:
    def verdict(ok: bool) -> str:
        return "PASS" if ok else "MISS"

    rows = []
    single = results.get("single")
    if single:
        p95 = single["latency_ms"]["p95"]
        rate_ok = single["throughput"] >= 0.95 * args.rate
        rows += [
            (
                f"single POST p95 at {args.rate:g} req/s",
                ms(p95),
                f"< {SINGLE_P95_MS:g} ms",
                verdict(p95 is not None and p95 < SINGLE_P95_MS and rate_ok and not single["errors"]),
            ),
            ("  p50 / p99", f"{ms(single['latency_ms']['p50'])} / {ms(single['latency_ms']['p99'])}", "", ""),
            (
                "  throughput achieved",
                f"{single['throughput']:.1f}/s",
                f">= 95% of {args.rate:g}/s",
                verdict(rate_ok),
            ),
            ("  errors", str(single["errors"]), "0", verdict(not single["errors"])),
        ]
    batch = results.get("batch")
    if batch:
        rows += [
            (
                f"batch ingestion ({args.batch_size:,}/batch)",
                f"{batch['payments_per_second']:,.0f}/s",
                f">= {BATCH_PAYMENTS_PER_S:,.0f} payments/s",
                verdict(batch["payments_per_second"] >= BATCH_PAYMENTS_PER_S),
            ),
            ("  p95 of a batch", ms(batch["latency_ms"]["p95"]), "", ""),
            (
                "  items rejected / failed batches",
                f"{batch['rejected']} / {batch['errors']}",
                "0 / 0",
                verdict(not batch["rejected"] and not batch["errors"]),
            ),
        ]
    cases = results.get("cases")
    if cases:
        p95 = cases["latency_ms"]["p95"]
        rows += [
            (
                "case list p95 (all filter mixes)",
                ms(p95),
                f"< {CASES_P95_MS:g} ms",
                verdict(p95 is not None and p95 < CASES_P95_MS and not cases["errors"]),
            ),
            ("  p50 / p99", f"{ms(cases['latency_ms']['p50'])} / {ms(cases['latency_ms']['p99'])}", "", ""),
        ]
        worst = max(cases["by_name"].items(), key=lambda item: item[1]["p95"] or 0, default=None)
        if worst:
            rows.append((f"  worst mix: {worst[0].split('[')[-1].rstrip(']')}", ms(worst[1]["p95"]), "", ""))
        rows.append(("  errors", str(cases["errors"]), "0", verdict(not cases["errors"])))
    print()
    print(
        f"loans: {facts['loans']:,}  cases: {facts['cases']:,} ({facts['open_cases']:,} open)  "
        f"payments before the run: {facts['payments']:,}  window: {args.seconds:g} s per scenario "
        f"(+{args.warmup:g} s warm-up)  gunicorn: {args.workers} workers"
    )
    print(
        "reference: the issue's targets themselves (there is no named reference implementation to "
        "run beside it)"
    )
    width = max(len(r[0]) for r in rows)
    print(f"{'figure':<{width}}  {'value':>19}  {'target':<22}  result")
    for name, value, target, result in rows:
        print(f"{name:<{width}}  {value:>19}  {target:<22}  {result}")
    print(f"load average at the end: {scan_bench.load_average()}")


# --- the run ---------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--loans", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=60, help="measured window of each scenario")
    parser.add_argument("--warmup", type=float, default=5, help="seconds of load before each window")
    parser.add_argument("--reuse", action="store_true", help="keep the template if it was built alike")
    parser.add_argument("--build-only", action="store_true", help="build (or check) the template, stop")
    parser.add_argument("--rate", type=float, default=SINGLE_RATE, help="single POSTs per second")
    parser.add_argument("--batch-users", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--case-rate", type=float, default=20, help="case list requests per second")
    parser.add_argument(
        "--pool",
        type=int,
        default=None,
        help="loans given a payment history (default: a quarter, <= 250,000)",
    )
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--scenarios", default="single,batch,cases")
    args = parser.parse_args()
    scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = set(scenarios) - {"single", "batch", "cases"}
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    if not 1 <= args.batch_size <= 1000:
        parser.error("--batch-size: 1 to 1,000 payments (the API's limit)")
    pool_size = args.pool or min(args.loans // 4, 250_000)

    import django

    django.setup()
    from django.db import connection
    from django.utils import timezone

    if connection.vendor != "postgresql":
        sys.exit("bench/api.py needs PostgreSQL (API_BENCH_DATABASE_URL)")
    base = scan_bench.server_settings()["NAME"]
    # One template per book size: a smoke run's small book does not replace the 1,000,000-loan one.
    template, copy = f"{base}_template_{args.loans}", base
    admin = scan_bench.connect("postgres")
    print(
        f"API bench: {args.loans:,} loans x 12 installments, as of {AS_OF}, {os.cpu_count()} CPUs, "
        f"load average {scan_bench.load_average()} (other work on the machine makes the timings noisy)",
        flush=True,
    )
    results: dict = {}
    try:
        scan_bench.drop_database(admin, copy)  # left over from a run that was killed
        build_template(admin, template, args.loans, pool_size, args.reuse)
        if args.build_only:
            print(f"template {template} ready (--build-only: no run)")
            return
        scan_bench.copy_database(admin, template, copy)
        scan_bench.vacuum(copy)
        facts = template_facts(copy)
        flush_redis()

        # The single POSTs take one loan each (as many as the window needs, at most a fifth of the
        # pool); the batches the rest, in disjoint slices per user.
        pool = facts["pool"]
        single_n = min(len(pool) // 5, int(args.rate * (args.seconds + args.warmup) * 1.2) + 1)
        single_loans, batch_loans = pool[:single_n], pool[single_n:]
        if len(batch_loans) < args.batch_users * args.batch_size and "batch" in scenarios:
            print(
                f"note: {len(batch_loans):,} pool loans for {args.batch_users} batch users: batches of "
                f"{len(batch_loans) // args.batch_users:,} (raise --pool)",
                flush=True,
            )
        run_id = f"bench{int(time.time())}"
        value_date = timezone.localdate().isoformat()
        print(
            f"run {run_id}: payments value-dated {value_date}; single-payment loans {len(single_loans):,}, "
            f"batch loans {len(batch_loans):,}",
            flush=True,
        )
        with gunicorn(copy, args.workers) as (host, _log):
            config = {
                "host": host,
                "key": facts["key"],
                "run": run_id,
                "currency": "CNY",
                "value_date": value_date,
                "single_loans": single_loans,
                "batch_loans": batch_loans,
                "batch_size": args.batch_size,
                "case_queries": case_queries((timezone.localdate() - AS_OF).days, facts["assignee"]),
            }
            with tempfile.NamedTemporaryFile(
                "w", prefix="api-bench-config-", suffix=".json", delete=False
            ) as f:
                json.dump(config, f)
                config_path = f.name
            try:
                plan = {
                    "single": ("single payment POST", int(args.rate), args.rate),
                    "batch": ("batch ingestion", args.batch_users, None),
                    "cases": ("case list", max(1, int(args.case_rate)), args.case_rate),
                }
                for scenario in scenarios:
                    title, users, rate = plan[scenario]
                    with admin.cursor() as cur:
                        cur.execute("CHECKPOINT")  # no scenario pays for the previous one's dirty pages
                    result = run_scenario(config_path, scenario, args.seconds, args.warmup, users, rate)
                    results[scenario] = result
                    print_result(f"{title} ({users} users)", result)
            finally:
                os.unlink(config_path)
        posted, loans_paid = payments_posted(copy, run_id)
        print(f"posted in this run (warm-ups included): {posted:,} payments to {loans_paid:,} loans")
    finally:
        scan_bench.drop_database(admin, copy)
        admin.close()
        try:
            flush_redis()
        except Exception as exc:  # noqa: BLE001 - a report, not a failure of the run
            print(f"could not flush {REDIS_URL}: {exc}")

    print_table(args, facts, results)
    print(f"(template {template} kept for --reuse; drop it with: DROP DATABASE {template})")


if __name__ == "__main__":
    main()
