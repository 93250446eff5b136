"""The loan book's Celery tasks: in-process without a broker, and on a real worker over a real Redis."""

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from celery import Celery
from django.db import connection

from loans import tasks
from loans.models import Loan
from tests.factories import LoanProductFactory, make_loan

ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = os.environ.get("TEST_REDIS_URL", "")


@pytest.mark.django_db
def test_without_a_broker_the_task_runs_in_process():
    loan = make_loan(product=LoanProductFactory(penalty_rate="0.0365"))
    result = tasks.refresh_delinquency.delay(as_of="2025-04-15")
    assert result.get() == {"as_of": "2025-04-15", "loans_changed": 1, "installments_repriced": 3}
    loan.refresh_from_db()
    assert loan.bucket == "61-90"


@pytest.fixture
def worker(on_postgres):
    """A real `celery worker` process on the test database, fed through Redis on a queue of its own."""
    if not REDIS_URL:
        pytest.skip("set TEST_REDIS_URL to a running Redis (CI does)")
    db = connection.settings_dict
    env = dict(os.environ)
    env.update(
        DATABASE_URL=f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST']}:{db['PORT'] or 5432}"
        f"/{db['NAME']}",
        CELERY_BROKER_URL=REDIS_URL,
        CELERY_RESULT_BACKEND=REDIS_URL,
    )
    queue = f"test-{uuid.uuid4().hex}"
    process = subprocess.Popen(  # noqa: S603 - a fixed command line
        [sys.executable, "-m", "celery", "-A", "collections_site", "worker", "--pool", "solo", "-Q", queue,
         "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel", "WARNING"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    # The test process sends like a partner system or beat would: a client app on the same Redis.
    client = Celery("test-client", broker=REDIS_URL, backend=REDIS_URL)
    try:
        yield lambda **kwargs: client.send_task("loans.refresh_delinquency", kwargs=kwargs, queue=queue)
    finally:
        client.close()
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_real_worker_refreshes_the_book(worker):
    loan = make_loan(product=LoanProductFactory(penalty_rate="0.0365"))
    started = time.monotonic()
    result = worker(as_of="2025-04-15")
    assert result.get(timeout=60) == {"as_of": "2025-04-15", "loans_changed": 1, "installments_repriced": 3}
    assert time.monotonic() - started < 60
    loan.refresh_from_db()
    assert loan.bucket == "61-90"
    # Idempotent: the same message again (a retry) changes nothing.
    again = worker(as_of="2025-04-15")
    assert again.get(timeout=60)["loans_changed"] == 0
    assert Loan.objects.get(pk=loan.pk).bucket == "61-90"
