"""Benchmark: the full delinquency refresh against a hand-written reference UPDATE, same data, same run.

    .venv/bin/python bench/delinquency.py [--loans 1000000] [--repeat 2] [--reuse]

Seeds N loans x 12 monthly installments into its own PostgreSQL database (BENCH_DATABASE_URL,
default postgres://postgres@127.0.0.1:5432/collections_bench) with set-based SQL, about 8% of
them behind on payments and spread over every bucket. Then, from the same stale state each time
(figures zeroed, penalties cleared, table vacuumed), it times

  * refresh:   loans.services.delinquency_refresh(as_of=...) over the whole book: the penalty
               step plus the loan UPDATE (what the product runs), and
  * reference: one hand-written UPDATE loans_loan ... FROM (SELECT ... GROUP BY loan_id) that
               computes the same figures (no penalty step, no skipping of unchanged rows),

and prints both, the ratio (target <= 1.5 at 1,000,000 loans), a rerun of the refresh on the
same date (nothing changes, so nothing is written), and the Python process's peak RSS
(target < 300 MB). Not part of the test suite.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["DATABASE_URL"] = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/collections_bench"
)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "collections_site.settings")

AS_OF = date(2026, 6, 30)

REFERENCE_SQL = """
UPDATE loans_loan AS l
SET oldest_unpaid_due_date = a.oldest_unpaid,
    overdue_principal = a.overdue_principal,
    overdue_interest = a.overdue_interest,
    overdue_fee = a.overdue_fee,
    overdue_penalty = a.overdue_penalty,
    outstanding_principal = a.outstanding_principal,
    bucket = CASE
        WHEN a.oldest_unpaid IS NULL OR %(as_of)s::date - a.oldest_unpaid <= p.grace_days THEN 'current'
        WHEN %(as_of)s::date - a.oldest_unpaid <= 30 THEN '1-30'
        WHEN %(as_of)s::date - a.oldest_unpaid <= 60 THEN '31-60'
        WHEN %(as_of)s::date - a.oldest_unpaid <= 90 THEN '61-90'
        WHEN %(as_of)s::date - a.oldest_unpaid <= 180 THEN '91-180'
        ELSE '180+' END
FROM (
    SELECT loan_id,
        MIN(due_date) FILTER (WHERE principal_paid + interest_paid + fee_paid + penalty_paid
                                    < principal_due + interest_due + fee_due + penalty_due) AS oldest_unpaid,
        COALESCE(SUM(principal_due - principal_paid) FILTER (WHERE due_date < %(as_of)s), 0) AS overdue_principal,
        COALESCE(SUM(interest_due - interest_paid) FILTER (WHERE due_date < %(as_of)s), 0) AS overdue_interest,
        COALESCE(SUM(fee_due - fee_paid) FILTER (WHERE due_date < %(as_of)s), 0) AS overdue_fee,
        COALESCE(SUM(penalty_due - penalty_paid) FILTER (WHERE due_date < %(as_of)s), 0) AS overdue_penalty,
        SUM(principal_due - principal_paid) AS outstanding_principal
    FROM loans_installment
    WHERE NOT superseded
    GROUP BY loan_id
) AS a, loans_loanproduct AS p
WHERE l.id = a.loan_id AND p.id = l.product_id
"""

# Installments: 12 monthly rows per loan. Loans started over the 18 months before AS_OF. 92% paid
# everything due; 8% stopped paying after a random number of installments (some with the next one
# half paid), which spreads them over every bucket.
SEED_SQL = [
    "SELECT setseed(0.42)",
    """INSERT INTO loans_partner (id, code, name, is_active, created_at, collections_email,
         collections_phone, payment_instructions, postal_address)
       VALUES (1, 'bench', 'Bench partner', true, now(), '', '', '', '')""",
    """INSERT INTO loans_loanproduct (id, code, name, currency, repayment_method, frequency, min_principal,
         max_principal, min_rate, max_rate, min_term, max_term, grace_days, penalty_rate, installment_fee,
         allocation_order, is_active)
       VALUES (1, 'bench-12m', 'Bench 12 months', 'CNY', 'annuity', 'monthly', 100, 1000000, 0, 0.24, 1, 360,
               3, 0.0365, 5.00, 'penalty,fee,interest,principal', true)""",
    """INSERT INTO loans_borrower (id, partner_id, external_ref, full_name, national_id, time_zone,
         preferred_language, region, created_at, updated_at)
       SELECT g, 1, 'B' || g, 'Borrower ' || g, '', 'Asia/Shanghai', 'zh-hans', 'CN', now(), now()
       FROM generate_series(1, %(n)s) AS g""",
    """CREATE TEMP TABLE bench_plan AS
       SELECT g AS id,
              (%(as_of)s::date - (30 + floor(random() * 510))::int) AS start_date,
              (1000 + floor(random() * 49) * 1000)::numeric(18, 2) AS principal,
              random() < 0.08 AS defaulter,
              random() AS stop_at,
              random() < 0.3 AS partial
       FROM generate_series(1, %(n)s) AS g""",
    """INSERT INTO loans_loan (id, partner_id, borrower_id, product_id, external_ref, currency, principal,
         annual_rate, term, start_date, first_due_date, status, schedule_version, at_risk, created_at,
         overdue_principal, overdue_interest, overdue_fee, overdue_penalty, outstanding_principal, bucket)
       SELECT id, 1, id, 1, 'L' || id, 'CNY', principal, 0.12, 12, start_date,
              (start_date + interval '1 month')::date, 'active', 1, false, now(), 0, 0, 0, 0, 0, 'current'
       FROM bench_plan""",
    """INSERT INTO loans_installment (loan_id, schedule_version, number, due_date, principal_due, interest_due,
         fee_due, penalty_due, principal_paid, interest_paid, fee_paid, penalty_paid, superseded,
         penalty_carried, penalty_waived)
       SELECT x.id, 1, x.k, x.due, x.pr, x.it, 5.00, 0,
              CASE WHEN x.paid_full THEN x.pr WHEN x.paid_half THEN round(x.pr / 2, 2) ELSE 0 END,
              CASE WHEN x.paid_full OR x.paid_half THEN x.it ELSE 0 END,
              CASE WHEN x.paid_full OR x.paid_half THEN 5.00 ELSE 0 END,
              0, false, 0, 0
       FROM (
           SELECT b.id, k, (b.start_date + k * interval '1 month')::date AS due,
                  CASE WHEN k < 12 THEN round(b.principal / 12, 2)
                       ELSE b.principal - 11 * round(b.principal / 12, 2) END AS pr,
                  round(b.principal * 0.01 * (13 - k) / 12, 2) AS it,
                  ((b.start_date + k * interval '1 month')::date < %(as_of)s
                    AND (NOT b.defaulter
                         OR k <= floor(b.stop_at * ((%(as_of)s::date - b.start_date) / 30)))) AS paid_full,
                  (b.defaulter AND b.partial
                    AND k = floor(b.stop_at * ((%(as_of)s::date - b.start_date) / 30)) + 1) AS paid_half
           FROM bench_plan AS b CROSS JOIN generate_series(1, 12) AS k
       ) AS x""",
    "SELECT setval(pg_get_serial_sequence('loans_loan', 'id'), %(n)s)",
    "SELECT setval(pg_get_serial_sequence('loans_borrower', 'id'), %(n)s)",
    "DROP TABLE bench_plan",
]

RESET_SQL = [
    "UPDATE loans_loan SET oldest_unpaid_due_date = NULL, overdue_principal = 0, overdue_interest = 0,"
    " overdue_fee = 0, overdue_penalty = 0, outstanding_principal = 0, bucket = 'current'",
    "UPDATE loans_installment SET penalty_due = 0 WHERE penalty_due <> 0",
]


def ensure_database() -> None:
    import psycopg2
    from django.conf import settings

    db = settings.DATABASES["default"]
    conn = psycopg2.connect(dbname="postgres", user=db["USER"], host=db["HOST"], port=db["PORT"] or 5432,
                            password=db["PASSWORD"] or None)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db["NAME"]])
        if not cur.fetchone():
            cur.execute(f'CREATE DATABASE "{db["NAME"]}"')
    conn.close()


def vacuum(cursor) -> None:
    from django.db import connection

    old = connection.connection.autocommit
    connection.connection.autocommit = True
    cursor.execute("VACUUM ANALYZE loans_loan")
    cursor.execute("VACUUM ANALYZE loans_installment")
    cursor.execute("CHECKPOINT")  # so no timed run pays for the previous run's dirty pages
    connection.connection.autocommit = old


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--loans", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--reuse", action="store_true", help="keep the seeded book if it has --loans loans")
    args = parser.parse_args()

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection, transaction

    from loans.refresh import POSTGRES_SETTINGS
    from loans.services import delinquency_refresh

    if connection.vendor != "postgresql":
        sys.exit("bench/delinquency.py needs PostgreSQL (BENCH_DATABASE_URL)")
    ensure_database()
    call_command("migrate", verbosity=0)
    params = {"n": args.loans, "as_of": AS_OF.isoformat()}

    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM loans_loan")
        have = cur.fetchone()[0]
        if not (args.reuse and have == args.loans):
            print(f"seeding {args.loans:,} loans x 12 installments ...", flush=True)
            started = time.perf_counter()
            cur.execute("TRUNCATE loans_allocation, loans_payment, loans_installment, loans_loan, loans_borrower,"
                        " loans_loanproduct, loans_partner RESTART IDENTITY CASCADE")
            with transaction.atomic():
                for statement in SEED_SQL:
                    cur.execute(statement, params)
            print(f"seeded in {time.perf_counter() - started:.1f} s", flush=True)

        def reset():
            with transaction.atomic():
                for statement in RESET_SQL:
                    cur.execute(statement)
            vacuum(cur)

        def reference():
            with transaction.atomic():
                for statement in POSTGRES_SETTINGS:  # the same session settings as the refresh
                    cur.execute(statement)
                cur.execute(REFERENCE_SQL, {"as_of": AS_OF.isoformat()})

        refresh_times, reference_times = [], []
        for _ in range(args.repeat):
            reset()
            refresh_times.append(timed(lambda: delinquency_refresh(as_of=AS_OF)))
            snapshot = "SELECT md5(string_agg(concat_ws(',', id, oldest_unpaid_due_date, overdue_principal," \
                " overdue_interest, overdue_fee, outstanding_principal, bucket), ';' ORDER BY id)) FROM loans_loan"
            cur.execute(snapshot)
            refresh_digest = cur.fetchone()[0]
            reset()
            reference_times.append(timed(reference))
            cur.execute(snapshot)
            reference_digest = cur.fetchone()[0]
        vacuum(cur)
        rerun = timed(lambda: delinquency_refresh(as_of=AS_OF))
        cur.execute("SELECT bucket, count(*) FROM loans_loan GROUP BY bucket ORDER BY bucket")
        buckets = dict(cur.fetchall())

    refresh_s, reference_s = statistics.median(refresh_times), statistics.median(reference_times)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"loans: {args.loans:,}  installments: {args.loans * 12:,}  as of {AS_OF}")
    print(f"buckets: {buckets}")
    print(f"same figures as the reference (penalty aside, which the reference does not compute): "
          f"{'yes' if refresh_digest == reference_digest else 'NO'}")
    print(f"refresh (penalty + loan update): {refresh_s:.2f} s  runs: {', '.join(f'{t:.2f}' for t in refresh_times)}")
    print(f"reference UPDATE ... FROM (SELECT ... GROUP BY loan_id): {reference_s:.2f} s"
          f"  runs: {', '.join(f'{t:.2f}' for t in reference_times)}")
    print(f"ratio refresh / reference: {refresh_s / reference_s:.2f}  (target <= 1.5)")
    print(f"rerun of the refresh on the same date (writes nothing): {rerun:.2f} s")
    print(f"peak RSS of this Python process: {peak_mb:.0f} MB  (target < 300 MB)")


if __name__ == "__main__":
    main()
