"""The scan's entry points: the command, the Celery tasks (in-process and on a real worker over a
real Redis), the nightly beat entry, and the locks that keep two scans apart (PostgreSQL)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from datetime import date, timedelta
from io import StringIO
from pathlib import Path

import psycopg2
import pytest
from celery import Celery
from django.core.management import CommandError, call_command
from django.db import connection

from compliance.models import ContactAttempt
from debt_collections import scan as scanning
from debt_collections import tasks
from debt_collections.models import (
    Case,
    CaseContact,
    LegalReferral,
    Notice,
    OutboxEvent,
    PromiseToPay,
    Restructuring,
    ScanChunk,
    ScanRun,
    StageTransition,
)
from tests.factories import make_loan

ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = os.environ.get("TEST_REDIS_URL", "")
FEB1 = date(2025, 2, 1)


def run_command(*args) -> str:
    out = StringIO()
    call_command("run_collections_scan", *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
class TestCommand:
    def test_prints_a_one_line_summary(self):
        make_loan(), make_loan()
        out = run_command("--as-of", "2025-03-10")
        assert out.count("\n") == 1
        assert out.startswith("Collections scan 2025-03-10: 2 loans refreshed")
        assert "2 cases opened, 0 escalated, 0 de-escalated, 0 closed" in out
        again = run_command("--as-of", "2025-03-10")
        assert "already done, nothing changed" in again
        assert Case.objects.count() == 2

    @pytest.mark.parametrize(
        ("args", "message"),
        [
            (["--as-of", "2025-02-30"], "--as-of must be a date as YYYY-MM-DD"),
            (["--chunk-size", "0"], "--chunk-size must be a positive number"),
            (["--on-workers"], "--on-workers needs CELERY_BROKER_URL"),
        ],
    )
    def test_bad_input_is_one_readable_line_and_writes_nothing(self, args, message):
        make_loan()
        with pytest.raises(CommandError) as excinfo:
            run_command(*args)
        assert message in str(excinfo.value) and "\n" not in str(excinfo.value)
        assert not ScanRun.objects.exists()

    def test_back_dated_is_refused_unless_forced(self):
        make_loan()
        run_command("--as-of", "2025-03-10")
        with pytest.raises(CommandError, match="before the latest scan"):
            run_command("--as-of", "2025-03-09")
        assert "Collections scan 2025-03-09:" in run_command("--as-of", "2025-03-09", "--force")


@pytest.mark.django_db
def test_the_demo_comes_with_staffed_teams_and_worked_cases_and_resets_cleanly():
    call_command("seed_demo", "--loans", "80", "--seed", "5", "--as-of", "2026-06-30", stdout=StringIO())
    out = StringIO()
    call_command("demo_collections", "--as-of", "2026-06-30", stdout=out)
    assert "cases opened" in out.getvalue()
    open_cases = Case.objects.filter(status="open")
    assert open_cases.exists() and not open_cases.filter(assignee__isnull=True).exists()
    assert open_cases.filter(assignee__username="collector").exists()
    # Worked like a collector would: calls at 10:30, the stage notices, a proposal, a referral request.
    assert "Demo case work: 4 calls logged (0 refused" in out.getvalue()
    assert CaseContact.objects.count() == 4 and PromiseToPay.objects.filter(status="open").count() == 1
    assert Notice.objects.filter(status="sent").exists()
    assert Restructuring.objects.filter(status="proposed").count() == 1
    assert LegalReferral.objects.filter(status="requested").count() == 1
    call_command("demo_collections", "--clear", stdout=StringIO())
    assert not Case.objects.exists() and not ScanRun.objects.exists()
    assert not (CaseContact.objects.exists() or Notice.objects.exists() or ContactAttempt.objects.exists())
    seed = ("seed_demo", "--loans", "80", "--seed", "5", "--as-of", "2026-06-30")
    call_command(*seed, "--reset", "--no-users", stdout=StringIO())
    assert Case.objects.count() == 0


@pytest.mark.django_db
def test_without_a_broker_the_task_runs_the_chunks_in_process():
    make_loan(), make_loan(), make_loan()
    result = tasks.scan.delay(as_of="2025-03-10", chunk_size=1).get()
    assert result["status"] == "done" and result["chunks"] == 3 and result["cases_opened"] == 3
    assert ScanChunk.objects.filter(status="done").count() == 3
    refused = tasks.scan.delay(as_of="2025-03-09").get()
    assert refused["refused"].startswith("2025-03-09 is before the latest scan")


# The scheduler closes the connection, as beat does; the rollback restores the migrations' rows.
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_nightly_scan_is_defined_in_code_and_shows_in_the_admin_schedule(settings):
    from django_celery_beat.models import PeriodicTask
    from django_celery_beat.schedulers import DatabaseScheduler

    from collections_site.celery import app

    entry = settings.CELERY_BEAT_SCHEDULE["collections-nightly-scan"]
    assert entry["task"] == "debt_collections.scan" == tasks.scan.name
    DatabaseScheduler(app=app)  # what `celery beat` does when it starts: sync the code's entries
    task = PeriodicTask.objects.get(name="collections-nightly-scan")
    assert task.task == "debt_collections.scan"
    assert (task.crontab.hour, task.crontab.minute, str(task.crontab.timezone)) == ("1", "0", "Asia/Shanghai")


@pytest.fixture
def other_session(on_postgres):
    """A second PostgreSQL session on the test database, as another scan process would have."""
    db = connection.settings_dict
    conn = psycopg2.connect(
        dbname=db["NAME"], user=db["USER"], password=db["PASSWORD"], host=db["HOST"], port=db["PORT"] or 5432
    )
    conn.autocommit = True
    yield conn.cursor()
    conn.close()


class TestTwoScansAtOnce:
    def test_a_second_scan_exits_cleanly_saying_one_is_running(self, other_session):
        make_loan()
        other_session.execute("SELECT pg_advisory_lock(%s, 0)", [scanning.LOCK_SPACE_SCAN])
        out = run_command("--as-of", "2025-03-10")
        assert out == "Collections scan 2025-03-10: another scan is running; nothing done.\n"
        assert tasks.scan.delay(as_of="2025-03-10").get()["busy"] == "a collections scan is already running"
        assert not ScanRun.objects.exists() and not Case.objects.exists()
        other_session.execute("SELECT pg_advisory_unlock(%s, 0)", [scanning.LOCK_SPACE_SCAN])
        assert "1 cases opened" in run_command("--as-of", "2025-03-10")

    def test_a_chunk_another_worker_holds_is_left_to_it(self, other_session):
        make_loan()
        run, _ = scanning.plan_run(as_of=date(2025, 3, 10))
        chunk = run.chunks.get()
        other_session.execute("BEGIN")
        other_session.execute("SELECT pg_advisory_xact_lock(%s, %s)", [scanning.LOCK_SPACE_CHUNK, chunk.pk])
        assert scanning.process_chunk(chunk.pk) is None
        chunk.refresh_from_db()
        assert chunk.status == "pending" and not Case.objects.exists()
        assert not scanning.finish_run(run.pk)
        other_session.execute("ROLLBACK")
        assert scanning.process_chunk(chunk.pk)["cases_opened"] == 1
        assert scanning.process_chunk(chunk.pk) is None  # done already: never twice
        assert scanning.finish_run(run.pk)


@pytest.fixture
def worker(on_postgres):
    """A real `celery worker` process on the test database, fed through Redis on a queue of its own
    (the scan sends its chord's chunk tasks to the queue it came from)."""
    if not REDIS_URL:
        pytest.skip("set TEST_REDIS_URL to a running Redis (CI does)")
    db = connection.settings_dict
    queue = f"test-{uuid.uuid4().hex}"
    env = dict(os.environ)
    env.update(
        DATABASE_URL=f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST']}:{db['PORT'] or 5432}"
        f"/{db['NAME']}",
        CELERY_BROKER_URL=REDIS_URL,
        CELERY_RESULT_BACKEND=REDIS_URL,
        COLLECTIONS_NOTICE_BATCH="2",
    )
    process = subprocess.Popen(  # noqa: S603 - a fixed command line
        [sys.executable, "-m", "celery", "-A", "collections_site", "worker", "--pool", "prefork",
         "--concurrency", "2", "-Q", queue, "--without-gossip", "--without-mingle", "--without-heartbeat",
         "--loglevel", "WARNING"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    client = Celery("test-client", broker=REDIS_URL, backend=REDIS_URL)
    try:
        yield lambda task="debt_collections.scan", **kwargs: client.send_task(
            task, kwargs=kwargs, queue=queue
        )
    finally:
        client.close()
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def wait_for_run(as_of: date, timeout: float = 90) -> ScanRun:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = ScanRun.objects.filter(as_of=as_of, status="done").first()
        if run:
            return run
        time.sleep(0.2)
    raise AssertionError(f"the scan for {as_of} did not finish in {timeout} s")


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_real_workers_share_a_scan_over_redis_and_a_chord_finishes_it(worker):
    for k in range(6):
        make_loan(first_due_date=FEB1 + timedelta(days=k), start_date=date(2025, 1, 1))
    as_of = date(2025, 3, 20)
    started = worker(as_of=as_of.isoformat(), chunk_size=2).get(timeout=60)
    assert started["chunks_dispatched"] == 3
    run = wait_for_run(as_of)
    assert list(run.chunks.values_list("status", flat=True)) == ["done"] * 3
    assert Case.objects.filter(status="open").count() == 6
    assert StageTransition.objects.count() == 6
    assert OutboxEvent.objects.filter(event_type="case.opened").count() == 6
    # The same date again (beat firing twice, a retry): nothing to do.
    again = worker(as_of=as_of.isoformat(), chunk_size=2).get(timeout=60)
    assert again["already_done"] is True
    assert StageTransition.objects.count() == 6
    # The stage notices the scan queued go out on the workers, two a task (COLLECTIONS_NOTICE_BATCH).
    queued = Notice.objects.filter(status="queued").count()
    assert queued == 18  # 42 to 47 days past due, the notice stage: a letter, an e-mail and an SMS each
    sent = worker("debt_collections.notices_send_queued", as_of=as_of.isoformat()).get(timeout=60)
    assert sent == {"notices": 18, "batches": 9}
    # Worked by the workers: these test borrowers have no phone, e-mail or address on file, so each
    # notice is refused with that reason (whatever the time of day).
    deadline = time.monotonic() + 60
    while Notice.objects.filter(status="queued").exists():
        assert time.monotonic() < deadline, "the notice batches did not finish"
        time.sleep(0.2)
    outcomes = {
        (status, tuple(codes)) for status, codes in Notice.objects.values_list("status", "reason_codes")
    }
    assert outcomes == {("refused", ("no_contact_point",))}
