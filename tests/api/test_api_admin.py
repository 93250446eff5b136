"""The partner API's admin: keys are looked at and revoked (never made or edited there, their hash
never shown), webhook secrets are never shown, deliveries are redelivered, idempotency records are
read-only; every action needs the change permission."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from api import webhooks
from api.keys import key_find, partner_key_create
from api.models import IdempotencyRecord, PartnerKey, WebhookDelivery, WebhookSubscription
from compliance.models import AuditEvent
from debt_collections.models import OutboxEvent

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
SECRET = "never-show-this-secret-0123456789"


@pytest.fixture
def superuser_client():
    user = get_user_model().objects.create_superuser(username="root", password="x")
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(user)
    return client


def staff_with(*codenames) -> Client:
    user = get_user_model().objects.create_user(username=f"ops-{len(codenames)}", password="x", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="api", codename__in=codenames)
    )
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(user)
    return client


@pytest.fixture
def records(partner):
    row, key = partner_key_create(partner=partner, name="lending platform", scopes=["payments:write"])
    sub = webhooks.subscription_create(
        partner=partner, url="https://partner.example.com/hooks", secret=SECRET
    )
    event = OutboxEvent.objects.create(
        event_type="case.opened", partner=partner, subject_id=1, payload={}, created_at=T0
    )
    delivery = WebhookDelivery.objects.create(
        subscription=sub,
        event=event,
        status="failed",
        attempts=31,
        last_status_code=503,
        last_error="HTTP 503",
    )
    IdempotencyRecord.objects.create(
        owner=f"key:{row.pk}", key="idem-1", method="POST", path="/api/v1/payments/", request_hash="h",
        response_status=201, response_body={"id": 1}, created_at=T0,
    )  # fmt: skip
    return {"key": row, "raw": key, "sub": sub, "delivery": delivery}


MODEL_CLASSES = {
    "partnerkey": PartnerKey,
    "webhooksubscription": WebhookSubscription,
    "webhookdelivery": WebhookDelivery,
    "idempotencyrecord": IdempotencyRecord,
}
MODELS = list(MODEL_CLASSES)


@pytest.mark.parametrize("model", MODELS)
def test_every_screen_opens_and_none_adds(superuser_client, records, model):
    assert superuser_client.get(reverse(f"admin:api_{model}_changelist")).status_code == 200
    assert superuser_client.get(reverse(f"admin:api_{model}_add")).status_code == 403
    obj = MODEL_CLASSES[model].objects.get()
    page = superuser_client.get(reverse(f"admin:api_{model}_change", args=[obj.pk]))
    assert page.status_code == 200
    assert b'name="_save"' not in page.content  # read-only: nothing to save
    assert superuser_client.get(reverse(f"admin:api_{model}_delete", args=[obj.pk])).status_code == 403


def test_key_hash_and_webhook_secret_are_never_shown(superuser_client, records):
    key = records["key"]
    pages = [
        superuser_client.get(reverse("admin:api_partnerkey_changelist")),
        superuser_client.get(reverse("admin:api_partnerkey_change", args=[key.pk])),
        superuser_client.get(reverse("admin:api_webhooksubscription_changelist")),
        superuser_client.get(reverse("admin:api_webhooksubscription_change", args=[records["sub"].pk])),
        superuser_client.get(reverse("admin:api_webhookdelivery_change", args=[records["delivery"].pk])),
    ]
    for page in pages:
        text = page.content.decode()
        assert key.key_hash not in text and records["raw"] not in text and SECRET not in text
    assert key.prefix in pages[1].content.decode()


def test_keys_are_found_by_prefix_or_partner(superuser_client, records, other_partner):
    partner_key_create(partner=other_partner, name="rival platform", scopes=["loans:write"])
    url = reverse("admin:api_partnerkey_changelist")
    page = superuser_client.get(url, {"q": records["key"].prefix}).content.decode()
    assert "lending platform" in page and "rival platform" not in page
    page = superuser_client.get(url, {"q": "rival"}).content.decode()
    assert "rival platform" in page and "lending platform" not in page


def test_revoke_action_revokes_through_the_service(superuser_client, records):
    url = reverse("admin:api_partnerkey_changelist")
    response = superuser_client.post(
        url, {"action": "revoke", "_selected_action": [records["key"].pk]}, follow=True
    )
    assert "1 keys revoked." in response.content.decode()
    records["key"].refresh_from_db()
    assert records["key"].revoked_at is not None
    assert key_find(records["raw"]) is None
    audit = AuditEvent.objects.filter(event_type="api_key").order_by("-id").first()
    assert audit.details["action"] == "revoked" and audit.details["by"] == "root"


def test_redeliver_action_queues_the_delivery_again(superuser_client, records):
    url = reverse("admin:api_webhookdelivery_changelist")
    response = superuser_client.post(
        url, {"action": "redeliver", "_selected_action": [records["delivery"].pk]}, follow=True
    )
    assert "1 deliveries queued to be sent again." in response.content.decode()
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at is not None) == ("pending", 0, True)


def test_pause_and_resume_subscriptions(superuser_client, records):
    url = reverse("admin:api_webhooksubscription_changelist")
    superuser_client.post(url, {"action": "pause", "_selected_action": [records["sub"].pk]})
    assert WebhookSubscription.objects.get().is_active is False
    superuser_client.post(url, {"action": "resume", "_selected_action": [records["sub"].pk]})
    assert WebhookSubscription.objects.get().is_active is True


def test_view_permission_alone_shows_the_screens_but_no_action_runs(records):
    client = staff_with("view_partnerkey", "view_webhookdelivery", "view_webhooksubscription")
    assert client.get(reverse("admin:api_partnerkey_changelist")).status_code == 200
    assert 'value="revoke"' not in client.get(reverse("admin:api_partnerkey_changelist")).content.decode()
    client.post(
        reverse("admin:api_partnerkey_changelist"),
        {"action": "revoke", "_selected_action": [records["key"].pk]},
    )
    client.post(
        reverse("admin:api_webhookdelivery_changelist"),
        {"action": "redeliver", "_selected_action": [records["delivery"].pk]},
    )
    client.post(
        reverse("admin:api_webhooksubscription_changelist"),
        {"action": "pause", "_selected_action": [records["sub"].pk]},
    )
    records["key"].refresh_from_db()
    assert records["key"].revoked_at is None
    assert WebhookDelivery.objects.get().status == "failed"
    assert WebhookSubscription.objects.get().is_active is True
    # No view permission on idempotency records: the screen is refused.
    assert client.get(reverse("admin:api_idempotencyrecord_changelist")).status_code == 403


def test_change_permission_runs_the_action(records):
    client = staff_with("view_webhookdelivery", "change_webhookdelivery")
    page = client.get(reverse("admin:api_webhookdelivery_changelist")).content.decode()
    assert 'value="redeliver"' in page
    client.post(
        reverse("admin:api_webhookdelivery_changelist"),
        {"action": "redeliver", "_selected_action": [records["delivery"].pk]},
    )
    assert WebhookDelivery.objects.get().status == "pending"
