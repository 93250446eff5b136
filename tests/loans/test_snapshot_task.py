"""The nightly bucket-snapshot task writes only on a month's last day (unless told otherwise) and is
scheduled by beat after the scan."""

from datetime import date

import pytest
from django.conf import settings

from loans.models import BucketSnapshot
from loans.tasks import snapshot_buckets
from tests.factories import make_loan

pytestmark = pytest.mark.django_db


def test_beat_runs_it_every_night_after_the_scan():
    entry = settings.CELERY_BEAT_SCHEDULE["bucket-snapshot"]
    assert entry["task"] == "loans.snapshot_buckets"
    assert snapshot_buckets.name == "loans.snapshot_buckets"


def test_it_skips_a_day_that_is_not_a_month_end():
    assert snapshot_buckets.delay(as_of="2025-03-30").get()["skipped"] == "not a month end"
    assert not BucketSnapshot.objects.exists()


def test_on_a_month_end_it_keeps_the_delinquent_loans_of_that_date():
    loan = make_loan(start_date=date(2025, 1, 1), first_due_date=date(2025, 2, 1))
    # Unpaid since 1 February: 58 days past due at the end of March (replayed: the date is past).
    result = snapshot_buckets.delay(as_of="2025-03-31").get()
    assert result["loans"] == 1
    row = BucketSnapshot.objects.get(loan=loan)
    assert (row.as_of, row.days_past_due, row.bucket) == (date(2025, 3, 31), 58, "31-60")
    assert snapshot_buckets.delay(as_of="2025-03-31").get()["loans"] == 1  # rerun replaces
    assert BucketSnapshot.objects.count() == 1
