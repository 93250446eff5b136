"""Celery tasks of the loan book: thin wrappers around services, safe to retry (the refresh is idempotent)."""

from datetime import date

from celery import shared_task
from django.utils import timezone

from loans.services import delinquency_refresh


@shared_task(
    name="loans.refresh_delinquency", autoretry_for=(ConnectionError,), retry_backoff=True, max_retries=5
)
def refresh_delinquency(as_of: str | None = None, loan_ids: list[int] | None = None) -> dict:
    """Recompute penalty and delinquency figures as of a date (ISO string; default today in TIME_ZONE)."""
    business_date = date.fromisoformat(as_of) if as_of else timezone.localdate()
    result = delinquency_refresh(as_of=business_date, loan_ids=loan_ids)
    return {
        "as_of": business_date.isoformat(),
        "loans_changed": result.loans_changed,
        "installments_repriced": result.installments_repriced,
    }


@shared_task(
    name="loans.snapshot_buckets", autoretry_for=(ConnectionError,), retry_backoff=True, max_retries=5
)
def snapshot_buckets(as_of: str | None = None, month_end_only: bool = True) -> dict:
    """Keep the delinquent loans' buckets of a date (default today in TIME_ZONE, after the nightly scan
    refreshed them). Beat runs it every night; with ``month_end_only`` it writes only on a month's last
    day, the dates the roll rates compare."""
    from loans.snapshots import bucket_snapshot_take, month_end

    business_date = date.fromisoformat(as_of) if as_of else timezone.localdate()
    if month_end_only and business_date != month_end(business_date):
        return {"as_of": business_date.isoformat(), "loans": 0, "skipped": "not a month end"}
    result = bucket_snapshot_take(as_of=business_date)
    return {"as_of": result.as_of.isoformat(), "loans": result.loans, "source": result.source}
