"""``/api/v1/webhooks/``: a partner subscribes, sees its delivery log and redelivers; nobody else sees
or touches its subscriptions; staff may read with the permission and never write."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import Permission
from rest_framework.test import APIClient

from api import webhooks
from api.models import WebhookDelivery, WebhookSubscription
from debt_collections.models import OutboxEvent
from tests.api.conftest import staff_client
from tests.api.test_webhooks import Receiver

pytestmark = pytest.mark.django_db

URL = "/api/v1/webhooks/"
T0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
BODY = {"url": "https://partner.example.com/hooks", "event_types": ["case.opened", "promise.broken"]}


@pytest.fixture(autouse=True)
def loopback_allowed(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True


@pytest.fixture
def hooks(partner, client_for):
    return client_for(partner, ["webhooks:manage"])


def make_sub(partner, **kwargs) -> WebhookSubscription:
    return webhooks.subscription_create(partner=partner, url=kwargs.pop("url", BODY["url"]), **kwargs)


def make_delivery(sub, event_type="case.opened", status="pending", subject_id=1) -> WebhookDelivery:
    event = OutboxEvent.objects.create(
        event_type=event_type, partner=sub.partner, subject_id=subject_id, payload={}, created_at=T0
    )
    delivered = status == "delivered"
    return WebhookDelivery.objects.create(
        subscription=sub,
        event=event,
        status=status,
        attempts=1,
        next_attempt_at=T0 if status == "pending" else None,
        delivered_at=T0 if delivered else None,
        last_status_code=200 if delivered else 503,
    )


def is_problem(response, status: int) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/problem+json")
    return response.json()


class TestSubscribing:
    def test_create_shows_the_secret_once_and_it_signs_what_is_sent(self, partner, hooks):
        receiver = Receiver(secret="")
        try:
            response = hooks.post(URL, {"url": receiver.url, "event_types": ["case.opened"]}, format="json")
            assert response.status_code == 201, response.content
            created = response.json()
            assert created["partner"] == "acme" and created["event_types"] == ["case.opened"]
            assert created["is_active"] is True and len(created["secret"]) >= 43
            # Never again: not in the list, not in the detail.
            assert "secret" not in hooks.get(f"{URL}{created['id']}/").json()
            assert all("secret" not in row for row in hooks.get(URL).json()["results"])

            receiver.secret = created["secret"]
            OutboxEvent.objects.create(
                event_type="case.opened", partner=partner, subject_id=5, payload={"case_id": 5}, created_at=T0
            )
            webhooks.webhooks_deliver()
        finally:
            receiver.close()
        [request] = receiver.requests
        assert request["verified"] is True and request["json"]["data"] == {"case_id": 5}

    def test_a_partner_may_bring_its_own_secret(self, hooks):
        response = hooks.post(URL, BODY | {"secret": "my-own-secret-0123456789"}, format="json")
        assert response.status_code == 201
        assert response.json()["secret"] == "my-own-secret-0123456789"
        assert WebhookSubscription.objects.get().secret == "my-own-secret-0123456789"

    def test_list_and_detail(self, partner, hooks):
        first, second = make_sub(partner), make_sub(partner, event_types=["case.closed"], description="ops")
        rows = hooks.get(URL).json()["results"]
        assert [r["id"] for r in rows] == [first.pk, second.pk]
        detail = hooks.get(f"{URL}{second.pk}/").json()
        assert detail == {
            "id": second.pk, "partner": "acme", "url": BODY["url"], "event_types": ["case.closed"],
            "description": "ops", "is_active": True, "created_at": detail["created_at"],
        }  # fmt: skip

    def test_patch_changes_what_is_given(self, partner, hooks):
        sub = make_sub(partner, event_types=["case.opened"])
        response = hooks.patch(f"{URL}{sub.pk}/", {"is_active": False}, format="json")
        assert response.status_code == 200
        assert response.json()["is_active"] is False and response.json()["event_types"] == ["case.opened"]
        response = hooks.patch(f"{URL}{sub.pk}/", {"event_types": []}, format="json")
        assert response.json()["event_types"] == []  # every event from now on
        assert "secret" not in response.json()
        assert hooks.put(f"{URL}{sub.pk}/", BODY, format="json").status_code == 405

    def test_delete(self, partner, hooks):
        sub = make_sub(partner)
        make_delivery(sub)
        assert hooks.delete(f"{URL}{sub.pk}/").status_code == 204
        assert not WebhookSubscription.objects.exists() and not WebhookDelivery.objects.exists()
        is_problem(hooks.get(f"{URL}{sub.pk}/"), 404)

    @pytest.mark.parametrize(
        ("body", "status", "field"),
        [
            ({"url": "ftp://partner.example.com/x"}, 400, "url"),
            ({"url": "https://partner.example.com/h", "event_types": ["case.eaten"]}, 400, "event_types.0"),
            ({"url": "https://partner.example.com/h", "event_types": "case.opened"}, 400, "event_types"),
            ({"url": "https://partner.example.com/h", "secret": "short"}, 400, "secret"),
            ({"url": "https://partner.example.com/h", "colour": "red"}, 400, "colour"),
            ({"url": 42}, 400, "url"),
            ({}, 400, "url"),
            (
                {"url": "https://partner.example.com/h", "secret": "with spaces in it, sixteen+"},
                422,
                "secret",
            ),
        ],
    )
    def test_bad_input_is_a_problem_and_nothing_is_written(self, hooks, body, status, field):
        problem = is_problem(hooks.post(URL, body, format="json"), status)
        assert field in problem["errors"]
        assert not WebhookSubscription.objects.exists()

    def test_a_private_address_is_refused_in_production(self, hooks, settings):
        settings.WEBHOOK_ALLOW_PRIVATE_URLS = False
        problem = is_problem(hooks.post(URL, {"url": "http://127.0.0.1:8000/admin/"}, format="json"), 422)
        assert problem["errors"]["url"] == ["Webhooks may not point at this machine or a private network."]

    def test_malformed_json_is_400(self, hooks):
        response = hooks.generic("POST", URL, b'{"url": ', content_type="application/json")
        is_problem(response, 400)
        assert not WebhookSubscription.objects.exists()


class TestDeliveryLog:
    def test_newest_first_with_a_status_filter(self, partner, hooks):
        sub = make_sub(partner)
        old = make_delivery(sub, status="delivered", subject_id=1)
        new = make_delivery(sub, event_type="promise.broken", status="pending", subject_id=2)
        rows = hooks.get(f"{URL}{sub.pk}/deliveries/").json()["results"]
        assert [r["id"] for r in rows] == [new.pk, old.pk]
        assert rows[0]["event_type"] == "promise.broken" and rows[0]["last_status_code"] == 503
        assert rows[1]["status"] == "delivered" and rows[1]["delivered_at"] is not None
        pending = hooks.get(f"{URL}{sub.pk}/deliveries/?status=pending").json()["results"]
        assert [r["id"] for r in pending] == [new.pk]
        by_type = hooks.get(f"{URL}{sub.pk}/deliveries/?event_type=case.opened").json()["results"]
        assert [r["id"] for r in by_type] == [old.pk]
        problem = is_problem(hooks.get(f"{URL}{sub.pk}/deliveries/?status=lost"), 400)
        assert "status" in problem["errors"]

    def test_pages_follow_the_cursor(self, partner, hooks):
        sub = make_sub(partner)
        made = [make_delivery(sub, subject_id=n).pk for n in range(5)]
        page = hooks.get(f"{URL}{sub.pk}/deliveries/?page_size=2").json()
        seen = [r["id"] for r in page["results"]]
        while page["next"]:
            page = hooks.get(page["next"]).json()
            seen += [r["id"] for r in page["results"]]
        assert seen == sorted(made, reverse=True)

    def test_redeliver_queues_it_and_the_next_run_sends_it(self, partner, hooks):
        receiver = Receiver()
        try:
            sub = make_sub(partner, url=receiver.url, secret=receiver.secret)
            delivery = make_delivery(sub, status="delivered")
            response = hooks.post(f"{URL}{sub.pk}/deliveries/{delivery.pk}/redeliver/")
            assert response.status_code == 202, response.content
            assert response.json()["status"] == "pending" and response.json()["attempts"] == 0
            webhooks.deliveries_send(now=datetime.now(UTC) + timedelta(seconds=1))
        finally:
            receiver.close()
        delivery.refresh_from_db()
        assert delivery.status == "delivered" and delivery.attempts == 1
        assert [r["headers"]["X-Delivery-Id"] for r in receiver.requests] == [str(delivery.pk)]

    def test_a_delivery_of_another_subscription_is_not_found(self, partner, other_partner, hooks):
        mine, theirs = make_sub(partner), make_sub(other_partner)
        my_other = make_sub(partner, url="https://partner.example.com/second")
        their_delivery = make_delivery(theirs)
        sibling_delivery = make_delivery(my_other, subject_id=2)
        for delivery in (their_delivery, sibling_delivery):
            is_problem(hooks.post(f"{URL}{mine.pk}/deliveries/{delivery.pk}/redeliver/"), 404)
        is_problem(hooks.post(f"{URL}{mine.pk}/deliveries/nope/redeliver/"), 404)
        is_problem(hooks.post(f"{URL}{mine.pk}/deliveries/99999999999999999999999/redeliver/"), 404)
        their_delivery.refresh_from_db()
        assert their_delivery.status == "pending" and their_delivery.attempts == 1


class TestAuthorisation:
    """Every endpoint x anonymous, wrong scope, other partner, collector, supervisor, compliance."""

    @pytest.fixture
    def world(self, partner, other_partner):
        sub = make_sub(partner)
        delivery = make_delivery(sub)
        return sub, delivery

    def calls(self, sub, delivery):
        base = f"{URL}{sub.pk}/"
        return [
            ("get", URL, None),
            ("post", URL, BODY),
            ("get", base, None),
            ("patch", base, {"description": "x"}),
            ("get", f"{base}deliveries/", None),
            ("post", f"{base}deliveries/{delivery.pk}/redeliver/", None),
            ("delete", base, None),
        ]

    def call(self, client, method, url, body):
        return getattr(client, method)(url, body, format="json") if body else getattr(client, method)(url)

    def assert_untouched(self, sub, delivery, subscriptions=1):
        sub.refresh_from_db()
        delivery.refresh_from_db()
        assert sub.description == "" and WebhookSubscription.objects.count() == subscriptions
        assert delivery.attempts == 1

    def test_anonymous_is_401(self, world):
        for method, url, body in self.calls(*world):
            response = self.call(APIClient(HTTP_ACCEPT_LANGUAGE="en"), method, url, body)
            assert is_problem(response, 401)["type"] == "/api/problems/not-authenticated", (method, url)
        self.assert_untouched(*world)

    def test_a_key_without_the_scope_is_403(self, world, partner, client_for):
        client = client_for(partner, ["cases:read", "cases:write", "loans:write", "payments:write"])
        for method, url, body in self.calls(*world):
            problem = is_problem(self.call(client, method, url, body), 403)
            assert "webhooks:manage" in problem["detail"], (method, url)
        self.assert_untouched(*world)

    def test_another_partner_gets_404_and_its_list_is_empty(self, world, other_partner, client_for):
        client = client_for(other_partner, ["webhooks:manage"])
        for method, url, body in self.calls(*world)[2:]:
            is_problem(self.call(client, method, url, body), 404)
        assert client.get(URL).json()["results"] == []
        self.assert_untouched(*world)

    @pytest.mark.parametrize("group", ["collector", "supervisor", "senior_supervisor", "compliance_officer"])
    def test_staff_roles_without_the_permission_are_403(self, world, group):
        client = staff_client(group)
        for method, url, body in self.calls(*world):
            is_problem(self.call(client, method, url, body), 403)
        self.assert_untouched(*world)

    def test_staff_with_the_view_permission_read_every_partner_and_never_write(self, world, other_partner):
        sub, delivery = world
        theirs = make_sub(other_partner)
        client = staff_client("supervisor")
        client.user.user_permissions.add(Permission.objects.get(codename="view_webhooksubscription"))
        rows = client.get(URL).json()["results"]
        assert {r["id"] for r in rows} == {sub.pk, theirs.pk}
        assert client.get(f"{URL}{sub.pk}/").status_code == 200
        assert client.get(f"{URL}{sub.pk}/deliveries/").json()["results"][0]["id"] == delivery.pk
        for method, url, body in self.calls(sub, delivery):
            if method != "get":
                problem = is_problem(self.call(client, method, url, body), 403)
                assert problem["detail"] == "Only partner systems use this endpoint."
        self.assert_untouched(sub, delivery, subscriptions=2)

    def test_the_owner_may_do_everything(self, world, hooks):
        sub, delivery = world
        for method, url, body in self.calls(sub, delivery):
            response = self.call(hooks, method, url, body)
            assert response.status_code in (200, 201, 202, 204), (method, url, response.content)

    def test_an_unknown_id_is_404(self, hooks):
        for path in ("0/", "abc/", "ref:x/", "99999999999999999999999/", "12/deliveries/"):
            is_problem(hooks.get(f"{URL}{path}"), 404)
