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
