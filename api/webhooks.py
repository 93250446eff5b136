"""Webhooks: partners' subscriptions, fan-out from the outbox, signed delivery, retries, redelivery.

The flow has two steps, both safe to run in several workers at once and to repeat after a crash:

1. ``outbox_dispatch`` takes the outbox events nobody has fanned out yet (``delivered_at IS NULL``)
   and creates one ``WebhookDelivery`` per active subscription of the event's partner that wants the
   event's type, then stamps the events. An event waits in the outbox (in the same database as the
   change it reports) for as long as no worker runs, so nothing is lost while Redis or a receiver is
   down.
2. ``deliveries_send`` claims the due deliveries (``SKIP LOCKED``, and a lease on ``next_attempt_at``
   so that no other worker takes them while they are being sent), commits, POSTs each one, signed,
   then records the outcome. A failure is retried with exponential backoff until
   ``WEBHOOK_RETRY_HOURS`` after the first attempt; then the delivery is marked failed and a person
   may redeliver it.

Delivery is at least once: a worker that dies between the POST and recording its outcome leaves the
delivery to be sent again when its lease ends, so receivers deduplicate on ``X-Event-Id``.

The signature: ``X-Signature: sha256=<hex HMAC-SHA256 of "<X-Timestamp>.<body>">`` keyed with the
subscription's secret; ``verify`` is the receiver's check.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import math
import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import httpx
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.core.validators import URLValidator
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext_lazy

from api.models import WebhookDelivery, WebhookSubscription
from debt_collections.models import OutboxEvent
from loans.exceptions import field_error
from loans.models import Partner

logger = logging.getLogger(__name__)

# Every event type the code writes to the outbox (the scan: case.*, promise.broken; the restructuring
# decisions; the API's payment services: payment.*), with what it means for a partner.
EVENT_TYPES = {
    "case.opened": gettext_lazy("a loan became delinquent and a case was opened"),
    "case.stage_changed": gettext_lazy("a case moved to another stage"),
    "case.closed": gettext_lazy("a case was closed (cured, paid off, written off...)"),
    "case.referral_recommended": gettext_lazy("legal referral is recommended for a case"),
    "promise.broken": gettext_lazy("a promise to pay was broken or only partly kept"),
    "restructuring.decided": gettext_lazy("a restructuring was approved or rejected"),
    "payment.posted": gettext_lazy("a payment was posted"),
    "payment.reversed": gettext_lazy("a payment was reversed"),
}

SIGNATURE_PREFIX = "sha256="
SECRET_MIN_LENGTH = 16
SECRET_MAX_LENGTH = 100
MAX_SUBSCRIPTIONS_PER_PARTNER = 20
# Backoff doubles from WEBHOOK_RETRY_BASE_SECONDS and is never longer than this.
MAX_BACKOFF_SECONDS = 3600
# Deliveries one worker POSTs at a time (each waits at most WEBHOOK_TIMEOUT_SECONDS).
SEND_CONCURRENCY = 8
USER_AGENT = "loan-collections-webhooks/1"

MESSAGES = {
    "url": gettext_lazy("Give an http:// or https:// URL."),
    "private": gettext_lazy("Webhooks may not point at this machine or a private network."),
    "event_types": gettext_lazy("Unknown event types: %(unknown)s. Known: %(known)s."),
    "secret": gettext_lazy(
        "The secret must be %(min)d to %(max)d printable ASCII characters without spaces."
    ),
    "too_many": gettext_lazy("A partner may have at most %(n)d webhook subscriptions."),
    "partner": gettext_lazy("Partner %(p)s is not active."),
}


# --- signing ---------------------------------------------------------------------------------------


def signature(secret: str, timestamp, body: bytes) -> str:
    """The ``X-Signature`` value: ``sha256=`` and the hex HMAC-SHA256 of ``b"<timestamp>." + body``."""
    message = str(timestamp).encode() + b"." + body
    return SIGNATURE_PREFIX + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def verify(
    secret: str, timestamp, body: bytes, header: str, tolerance: int = 300, now: float | None = None
) -> bool:
    """The receiver's check: the signature matches these exact bytes and the timestamp is within
    ``tolerance`` seconds of now (an old request replayed is refused)."""
    try:
        sent_at = int(str(timestamp))
    except (TypeError, ValueError):
        return False
    if abs((time.time() if now is None else now) - sent_at) > tolerance:
        return False
    # As bytes: compare_digest refuses str with non-ASCII characters, which a forged header may carry.
    return hmac.compare_digest(signature(secret, sent_at, body).encode(), str(header or "").encode())


# --- subscriptions ---------------------------------------------------------------------------------


def _private_allowed() -> bool:
    """Development (DEBUG) may point webhooks at this machine; production may not, unless
    ``WEBHOOK_ALLOW_PRIVATE_URLS`` says so (a partner must not make us call our own services)."""
    return bool(getattr(settings, "WEBHOOK_ALLOW_PRIVATE_URLS", settings.DEBUG))


def _url_clean(url) -> str:
    url = (url or "").strip() if isinstance(url, str) else ""
    try:
        URLValidator(schemes=["http", "https"])(url)
    except ValidationError:
        raise field_error("url", MESSAGES["url"]) from None
    if len(url) > 500:
        raise field_error("url", MESSAGES["url"])
    host = (urlsplit(url).hostname or "").lower()
    if not _private_allowed():
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            address = None
        if (
            host in ("localhost", "localhost.localdomain")
            or host.endswith(".localhost")
            or (address is not None and not address.is_global)
        ):
            raise field_error("url", MESSAGES["private"])
    return url


def _event_types_clean(event_types) -> list[str]:
    if event_types is None:
        return []
    if isinstance(event_types, str) or not all(isinstance(e, str) for e in event_types):
        raise field_error(
            "event_types",
            MESSAGES["event_types"] % {"unknown": str(event_types), "known": ", ".join(EVENT_TYPES)},
        )
    wanted = sorted({e.strip() for e in event_types if e.strip()})
    unknown = [e for e in wanted if e not in EVENT_TYPES]
    if unknown:
        raise field_error(
            "event_types",
            MESSAGES["event_types"] % {"unknown": ", ".join(unknown), "known": ", ".join(EVENT_TYPES)},
        )
    return wanted


def _secret_clean(secret: str) -> str:
    if (
        not isinstance(secret, str)
        or not SECRET_MIN_LENGTH <= len(secret) <= SECRET_MAX_LENGTH
        or not all(33 <= ord(c) <= 126 for c in secret)
    ):
        raise field_error("secret", MESSAGES["secret"] % {"min": SECRET_MIN_LENGTH, "max": SECRET_MAX_LENGTH})
    return secret


@transaction.atomic
def subscription_create(
    *,
    partner: Partner,
    url: str,
    event_types=(),
    secret: str | None = None,
    description: str = "",
    is_active: bool = True,
) -> WebhookSubscription:
    """A new subscription; ``event_types`` empty means every event. Without a ``secret`` one is made
    (``secrets.token_urlsafe(32)``); the caller shows ``subscription.secret`` once, when it is made."""
    partner = Partner.objects.select_for_update().get(pk=partner.pk)
    if not partner.is_active:
        raise field_error("partner", MESSAGES["partner"] % {"p": partner.code})
    if WebhookSubscription.objects.filter(partner=partner).count() >= MAX_SUBSCRIPTIONS_PER_PARTNER:
        raise field_error("url", MESSAGES["too_many"] % {"n": MAX_SUBSCRIPTIONS_PER_PARTNER})
    subscription = WebhookSubscription(
        partner=partner,
        url=_url_clean(url),
        secret=_secret_clean(secret) if secret else secrets.token_urlsafe(32),
        event_types=_event_types_clean(event_types),
        description=(description or "").strip(),
        is_active=bool(is_active),
    )
    subscription.full_clean(exclude=["url"])  # the URL was checked above (URLField would refuse localhost)
    subscription.save()
    logger.info("webhook subscription %s created for %s: %s", subscription.pk, partner.code, subscription.url)
    return subscription


UNCHANGED = object()


@transaction.atomic
def subscription_update(
    *,
    subscription: WebhookSubscription,
    url=UNCHANGED,
    event_types=UNCHANGED,
    secret=UNCHANGED,
    description=UNCHANGED,
    is_active=UNCHANGED,
) -> WebhookSubscription:
    """Change what is given. A new ``secret`` (the partner's own) applies to the next attempt."""
    subscription = WebhookSubscription.objects.select_for_update().get(pk=subscription.pk)
    if url is not UNCHANGED:
        subscription.url = _url_clean(url)
    if event_types is not UNCHANGED:
        subscription.event_types = _event_types_clean(event_types)
    if secret is not UNCHANGED:
        subscription.secret = _secret_clean(secret)
    if description is not UNCHANGED:
        subscription.description = (description or "").strip()
    if is_active is not UNCHANGED:
        subscription.is_active = bool(is_active)
    subscription.full_clean(exclude=["url"])
    subscription.save()
    return subscription


@transaction.atomic
def subscription_delete(*, subscription: WebhookSubscription) -> None:
    """Delete a subscription and its delivery log; its pending deliveries are never sent."""
    WebhookSubscription.objects.filter(pk=subscription.pk).delete()
    logger.info("webhook subscription %s deleted", subscription.pk)


# --- fan-out from the outbox -----------------------------------------------------------------------


def outbox_dispatch(*, now: datetime | None = None, limit: int | None = None) -> int:
    """Fan the oldest undispatched outbox events out to deliveries; returns how many events were taken.

    Each event gets a delivery per active subscription of its partner that wants its type (none if
    the partner has no subscription). Locked with ``SKIP LOCKED``: two workers take different events;
    the unique (subscription, event) makes a repeat harmless.
    """
    now = now or timezone.now()
    limit = limit or settings.WEBHOOK_BATCH
    with transaction.atomic():
        events = list(
            OutboxEvent.objects.filter(delivered_at__isnull=True)
            .order_by("id")
            .select_for_update(skip_locked=True)
            .values_list("id", "partner_id", "event_type")[:limit]
        )
        if not events:
            return 0
        subscriptions: dict[int, list[WebhookSubscription]] = {}
        for subscription in WebhookSubscription.objects.filter(
            partner_id__in={partner_id for _id, partner_id, _type in events},
            is_active=True,
            partner__is_active=True,
        ).only("id", "partner_id", "event_types"):
            subscriptions.setdefault(subscription.partner_id, []).append(subscription)
        deliveries = [
            WebhookDelivery(
                subscription_id=subscription.pk,
                event_id=event_id,
                status=WebhookDelivery.Status.PENDING,
                next_attempt_at=now,
            )
            for event_id, partner_id, event_type in events
            for subscription in subscriptions.get(partner_id, ())
            if subscription.wants(event_type)
        ]
        WebhookDelivery.objects.bulk_create(deliveries, ignore_conflicts=True, batch_size=1000)
        # ``delivered_at`` on an outbox event means "handed to the webhook deliveries" (or, for a
        # partner with no subscription that wants it, "nobody to send it to"), not "received by the
        # partner": each delivery keeps its own status, attempts and delivered_at.
        OutboxEvent.objects.filter(pk__in=[event_id for event_id, _p, _t in events]).update(delivered_at=now)
    return len(events)


# --- sending ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Claimed:
    """A delivery taken for one attempt: what to send and how to recognise the claim afterwards."""

    id: int
    attempts: int
    first_attempt_at: datetime
    url: str
    body: bytes
    headers: dict


@dataclass(frozen=True)
class Outcome:
    status_code: int | None
    error: str

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def event_body(event: OutboxEvent) -> bytes:
    """The JSON a receiver gets, serialised once: these exact bytes are signed and sent."""
    document = {
        "id": event.pk,
        "type": event.event_type,
        "created_at": event.created_at.isoformat(),
        "partner": event.partner.code,
        "data": event.payload,
    }
    return json.dumps(document, cls=DjangoJSONEncoder, ensure_ascii=False, separators=(",", ":")).encode()


def _headers(delivery: WebhookDelivery, body: bytes, timestamp: int) -> dict:
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Timestamp": str(timestamp),
        "X-Signature": signature(delivery.subscription.secret, timestamp, body),
        "X-Event-Id": str(delivery.event_id),
        "X-Event-Type": delivery.event.event_type,
        "X-Delivery-Id": str(delivery.pk),
    }


def backoff(attempts: int) -> timedelta:
    """How long after the ``attempts``-th failed attempt to try again."""
    base = settings.WEBHOOK_RETRY_BASE_SECONDS
    return timedelta(seconds=min(base * 2 ** min(max(attempts - 1, 0), 20), MAX_BACKOFF_SECONDS))


def _lease(count: int) -> timedelta:
    """Long enough for one worker to send ``count`` deliveries, so that none is taken twice."""
    rounds = math.ceil(count / SEND_CONCURRENCY) + 1
    return timedelta(seconds=rounds * settings.WEBHOOK_TIMEOUT_SECONDS + 60)


def _claim(now: datetime, limit: int) -> list[Claimed]:
    """Take the due deliveries and move their ``next_attempt_at`` past the time this worker needs
    to send them, in one short transaction: the HTTP calls happen after it has committed."""
    with transaction.atomic():
        ids = list(
            WebhookDelivery.objects.filter(status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=now)
            .order_by("next_attempt_at", "id")
            .select_for_update(skip_locked=True)
            .values_list("id", flat=True)[:limit]
        )
        if not ids:
            return []
        lease_until = now + _lease(len(ids))
        WebhookDelivery.objects.filter(pk__in=ids, first_attempt_at__isnull=True).update(first_attempt_at=now)
        WebhookDelivery.objects.filter(pk__in=ids).update(
            attempts=F("attempts") + 1, last_attempt_at=now, next_attempt_at=lease_until
        )
        rows = (
            WebhookDelivery.objects.filter(pk__in=ids)
            .select_related("subscription", "event", "event__partner")
            .order_by("next_attempt_at", "id")
        )
        # The signature's timestamp is the wall clock (a receiver compares it with its own), even
        # when ``now``, the business clock that schedules retries, is given.
        timestamp = int(time.time())
        claimed = []
        for delivery in rows:
            body = event_body(delivery.event)
            claimed.append(
                Claimed(
                    id=delivery.pk,
                    attempts=delivery.attempts,
                    first_attempt_at=delivery.first_attempt_at,
                    url=delivery.subscription.url,
                    body=body,
                    headers=_headers(delivery, body, timestamp),
                )
            )
    return claimed


def _post(client: httpx.Client, claimed: Claimed) -> Outcome:
    """One POST; the response body is not read (a receiver's answer is its status code)."""
    try:
        with client.stream("POST", claimed.url, content=claimed.body, headers=claimed.headers) as response:
            code = response.status_code
        return Outcome(code, "" if 200 <= code < 300 else f"HTTP {code}")
    except Exception as exc:  # any failure to deliver is an attempt to retry
        return Outcome(None, f"{type(exc).__name__}: {exc}"[:500])


def _record(claimed: Claimed, outcome: Outcome, now: datetime) -> str:
    """Store one attempt's outcome; returns the delivery's new status. Only the claim this worker
    made is updated (a redelivery or another worker's later claim is left alone)."""
    mine = WebhookDelivery.objects.filter(
        pk=claimed.id, status=WebhookDelivery.Status.PENDING, attempts=claimed.attempts, last_attempt_at=now
    )
    if outcome.ok:
        mine.update(
            status=WebhookDelivery.Status.DELIVERED,
            delivered_at=now,
            next_attempt_at=None,
            last_status_code=outcome.status_code,
            last_error="",
        )
        return WebhookDelivery.Status.DELIVERED
    deadline = claimed.first_attempt_at + timedelta(hours=settings.WEBHOOK_RETRY_HOURS)
    if now >= deadline:
        mine.update(
            status=WebhookDelivery.Status.FAILED,
            next_attempt_at=None,
            last_status_code=outcome.status_code,
            last_error=outcome.error,
        )
        logger.warning("webhook delivery %s failed for good: %s", claimed.id, outcome.error)
        return WebhookDelivery.Status.FAILED
    mine.update(
        # The last retry happens at the deadline itself, not up to an hour past it.
        next_attempt_at=min(now + backoff(claimed.attempts), deadline),
        last_status_code=outcome.status_code,
        last_error=outcome.error,
    )
    return WebhookDelivery.Status.PENDING


def deliveries_send(*, now: datetime | None = None, limit: int | None = None) -> dict:
    """Send the due deliveries (at most ``limit``); returns counts by outcome."""
    now = now or timezone.now()
    limit = limit or settings.WEBHOOK_BATCH
    claimed = _claim(now, limit)
    counts = {"sent": len(claimed), "delivered": 0, "retrying": 0, "failed": 0}
    if not claimed:
        return counts
    timeout = settings.WEBHOOK_TIMEOUT_SECONDS
    with (
        httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False) as client,
        ThreadPoolExecutor(max_workers=min(SEND_CONCURRENCY, len(claimed))) as pool,
    ):
        # Only the POSTs run in the pool; the database is written from this thread.
        outcomes = list(pool.map(lambda c: _post(client, c), claimed))
    names = {
        WebhookDelivery.Status.DELIVERED: "delivered",
        WebhookDelivery.Status.PENDING: "retrying",
        WebhookDelivery.Status.FAILED: "failed",
    }
    for item, outcome in zip(claimed, outcomes, strict=True):
        counts[names[_record(item, outcome, now)]] += 1
    return counts


def webhooks_deliver(*, now: datetime | None = None, limit: int | None = None, rounds: int = 10) -> dict:
    """Dispatch the outbox, then send what is due, batch after batch (at most ``rounds`` of each):
    what the Celery task and the ``deliver_webhooks`` command run."""
    totals = {"events": 0, "sent": 0, "delivered": 0, "retrying": 0, "failed": 0}
    limit = limit or settings.WEBHOOK_BATCH
    for _round in range(rounds):
        taken = outbox_dispatch(now=now or timezone.now(), limit=limit)
        totals["events"] += taken
        if taken < limit:
            break
    for _round in range(rounds):
        counts = deliveries_send(now=now or timezone.now(), limit=limit)
        for name, value in counts.items():
            totals[name] += value
        if counts["sent"] < limit:
            break
    return totals


@transaction.atomic
def delivery_redeliver(
    *, delivery: WebhookDelivery, actor=None, now: datetime | None = None
) -> WebhookDelivery:
    """Send a delivery again on the next run, whatever its status, with a new retry window."""
    now = now or timezone.now()
    delivery = WebhookDelivery.objects.select_for_update().get(pk=delivery.pk)
    delivery.status = WebhookDelivery.Status.PENDING
    delivery.delivered_at = None
    delivery.next_attempt_at = now
    delivery.first_attempt_at = None
    delivery.attempts = 0
    delivery.save(update_fields=["status", "delivered_at", "next_attempt_at", "first_attempt_at", "attempts"])
    logger.info(
        "webhook delivery %s queued again by %s", delivery.pk, actor.get_username() if actor else "system"
    )
    return delivery
