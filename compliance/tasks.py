"""Celery tasks of compliance: thin wrappers around the services, safe to retry."""

from __future__ import annotations

from datetime import date

from celery import shared_task
from django.db import OperationalError
from django.utils import timezone

from compliance import retention


@shared_task(
    name="compliance.retention_purge", autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5
)
def retention_purge(as_of: str | None = None, years: int | None = None, dry_run: bool = False) -> dict:
    """Anonymise the borrowers due on a date (ISO string; default today in TIME_ZONE); beat runs it
    weekly (``retention-purge``). A rerun finds nobody left to anonymise."""
    business_date = date.fromisoformat(as_of) if as_of else timezone.localdate()
    return retention.retention_purge(as_of=business_date, years=years, dry_run=dry_run).as_dict()
