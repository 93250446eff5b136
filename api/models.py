"""What the partner API keeps of its own: partner keys, idempotency records, webhook subscriptions and
their deliveries. The loan book and the cases stay in their apps; the API only reads and writes them
through their services."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from loans.crypto import EncryptedCharField

# Every scope a partner key may carry. Reads and writes are separate so that a payment processor's key
# can post payments and read nothing else.
SCOPES = {
    "borrowers:read": _("read borrowers"),
    "borrowers:write": _("create borrowers"),
    "loans:read": _("read loans and schedules"),
    "loans:write": _("create loans"),
    "payments:read": _("read payments"),
    "payments:write": _("post and reverse payments"),
    "cases:read": _("read cases, restructurings, legal referrals; ask contact checks"),
    "cases:write": _("log contacts, record promises, send notices, propose restructurings"),
    "webhooks:manage": _("manage webhook subscriptions and redeliver"),
}


class PartnerKey(models.Model):
    """A partner system's API key. Only its SHA-256 is stored; the key is shown once, when made.

    ``prefix`` (the key's first characters after ``ck_``) finds the row without a scan and lets an
    operator tell keys apart in logs; ``service_user`` is who the audit trail names when the key acts.
    """

    partner = models.ForeignKey("loans.Partner", on_delete=models.PROTECT, related_name="api_keys")
    name = models.CharField(_("name"), max_length=100)
    prefix = models.CharField(_("prefix"), max_length=12, unique=True)
    key_hash = models.CharField(_("key hash"), max_length=64)
    scopes = models.JSONField(_("scopes"), default=list)
    service_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="partner_keys"
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    created_by = models.CharField(_("created by"), max_length=150, blank=True)
    last_used_at = models.DateTimeField(_("last used at"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)

    class Meta:
        verbose_name = _("partner key")
        verbose_name_plural = _("partner keys")
        ordering = ["partner_id", "-created_at"]
        constraints = [
            models.CheckConstraint(condition=~Q(name=""), name="partner_key_name_required"),
            models.CheckConstraint(
                condition=Q(key_hash__regex=r"^[0-9a-f]{64}$"), name="partner_key_hash_hex"
            ),
        ]

    def __str__(self):
        return f"{self.partner_id}:{self.name} ({self.prefix})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes


class IdempotencyRecord(models.Model):
    """The first response to a request with an ``Idempotency-Key`` header, replayed for a retry.

    The row is inserted at the start of the request's transaction: a concurrent request with the same
    key waits on the unique index until the first commits, then finds the stored response. A request
    that fails (any 4xx/5xx) rolls its row back with everything else, so the key may be used again.
    """

    owner = models.CharField(_("owner"), max_length=64)  # "key:<partner key id>" or "user:<user id>"
    key = models.CharField(_("idempotency key"), max_length=255)
    method = models.CharField(_("method"), max_length=10)
    path = models.CharField(_("path"), max_length=300)
    request_hash = models.CharField(_("request hash"), max_length=64)
    response_status = models.PositiveSmallIntegerField(_("response status"), null=True)
    response_body = models.JSONField(_("response body"), null=True)
    created_at = models.DateTimeField(_("created at"), db_index=True)

    class Meta:
        verbose_name = _("idempotency record")
        verbose_name_plural = _("idempotency records")
        constraints = [
            models.UniqueConstraint(fields=["owner", "key"], name="idempotency_unique_key_per_owner"),
            models.CheckConstraint(condition=~Q(key=""), name="idempotency_key_required"),
        ]

    def __str__(self):
        return f"{self.owner} {self.key}"


class WebhookSubscription(models.Model):
    """Where a partner wants its events sent. ``event_types`` empty means every event."""

    partner = models.ForeignKey("loans.Partner", on_delete=models.PROTECT, related_name="webhooks")
    url = models.URLField(_("URL"), max_length=500)
    # The HMAC key both sides hold; encrypted at rest like national IDs (it must be read back to sign).
    secret = EncryptedCharField(_("signing secret"), max_length=100)
    event_types = models.JSONField(_("event types"), default=list, blank=True)
    description = models.CharField(_("description"), max_length=200, blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("webhook subscription")
        verbose_name_plural = _("webhook subscriptions")
        ordering = ["partner_id", "id"]

    def __str__(self):
        return self.url

    def wants(self, event_type: str) -> bool:
        return not self.event_types or event_type in self.event_types


class WebhookDelivery(models.Model):
    """One event for one subscription: every attempt's outcome, and when to try next."""

    class Status(models.TextChoices):
        PENDING = "pending", _("pending")
        DELIVERED = "delivered", _("delivered")
        FAILED = "failed", _("failed (gave up)")

    subscription = models.ForeignKey(WebhookSubscription, on_delete=models.CASCADE, related_name="deliveries")
    event = models.ForeignKey("debt_collections.OutboxEvent", on_delete=models.PROTECT, related_name="+")
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt at"), null=True, blank=True)
    # Retries stop this long after the first attempt (settings.WEBHOOK_RETRY_HOURS).
    first_attempt_at = models.DateTimeField(_("first attempt at"), null=True, blank=True)
    last_attempt_at = models.DateTimeField(_("last attempt at"), null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(_("last HTTP status"), null=True, blank=True)
    last_error = models.CharField(_("last error"), max_length=500, blank=True)
    delivered_at = models.DateTimeField(_("delivered at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["subscription", "event"], name="webhook_delivery_once_per_event"),
            models.CheckConstraint(
                condition=Q(status__in=["pending", "delivered", "failed"]),
                name="webhook_delivery_status_valid",
            ),
            models.CheckConstraint(
                condition=(Q(status="delivered") & Q(delivered_at__isnull=False))
                | (~Q(status="delivered") & Q(delivered_at__isnull=True)),
                name="webhook_delivered_iff_delivered_at",
            ),
            models.CheckConstraint(
                condition=~Q(status="pending") | Q(next_attempt_at__isnull=False),
                name="webhook_pending_has_next_attempt",
            ),
        ]
        indexes = [
            models.Index(
                fields=["next_attempt_at"], name="webhook_delivery_due_idx", condition=Q(status="pending")
            )
        ]

    def __str__(self):
        return f"{self.event_id} -> {self.subscription_id} ({self.status})"
