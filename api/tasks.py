"""Celery tasks of the partner API: thin wrappers around ``api.webhooks`` and ``api.idempotency``.

``api.webhooks_deliver`` (beat: every ``WEBHOOK_DISPATCH_SECONDS``) fans the outbox out to the
subscriptions and sends what is due; ``api.idempotency_purge`` (beat: hourly) forgets the
Idempotency-Key responses older than ``API_IDEMPOTENCY_HOURS``. Both are safe to run in several
workers at once and to retry: deliveries are claimed with ``SKIP LOCKED`` and a lease, so none is
sent twice by two workers, and an event no worker has taken waits in the outbox.
"""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from api import idempotency, webhooks


@shared_task(
    name="api.webhooks_deliver", autoretry_for=(OperationalError,), retry_backoff=True, max_retries=3
)
def webhooks_deliver(limit: int | None = None) -> dict:
    """Dispatch the outbox, then send the due deliveries (batches of ``WEBHOOK_BATCH``)."""
    return webhooks.webhooks_deliver(limit=limit)


@shared_task(name="api.idempotency_purge")
def idempotency_purge() -> dict:
    """Delete Idempotency-Key records past their keeping time."""
    return {"deleted": idempotency.idempotency_purge()}
