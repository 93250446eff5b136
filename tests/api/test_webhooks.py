"""Webhooks end to end: events from the outbox reach a real receiver on loopback, signed; a receiver
that is down gets them later (backoff, then delivery); after 24 hours of failures the delivery gives
up and a person may send it again; nothing is lost while no worker runs; two workers never send one
delivery twice."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import socket
import threading
import time
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import connection

from api import tasks, webhooks
from api.models import IdempotencyRecord, WebhookDelivery
from debt_collections.models import OutboxEvent
from debt_collections.scan import scan_run
from tests.factories import BorrowerFactory, PartnerFactory, make_loan

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
SECRET = "test-secret-0123456789abcdef"


class Receiver:
    """A partner's endpoint on 127.0.0.1: checks every request's signature with ``webhooks.verify``
    and records it; answers ``status`` (200 unless told otherwise)."""

    def __init__(self, secret: str = SECRET, port: int = 0, status: int = 200, delay: float = 0.0):
        self.secret, self.status, self.delay = secret, status, delay
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if receiver.delay:
                    time.sleep(receiver.delay)
                record = {
                    "headers": dict(self.headers),
                    "body": body,
                    "json": json.loads(body),
                    "verified": webhooks.verify(
                        receiver.secret,
                        self.headers.get("X-Timestamp"),
                        body,
                        self.headers.get("X-Signature"),
                    ),
                }
                with receiver.lock:
                    receiver.requests.append(record)
                self.send_response(receiver.status)
                if 300 <= receiver.status < 400:
                    self.send_header("Location", "http://127.0.0.1:9/elsewhere")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def closed_port() -> int:
    """A loopback port nothing listens on (connections are refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(autouse=True)
def loopback_allowed(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    settings.WEBHOOK_TIMEOUT_SECONDS = 5.0


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


def event(partner, event_type="case.opened", subject_id=1, **payload) -> OutboxEvent:
    return OutboxEvent.objects.create(
        event_type=event_type,
        partner=partner,
        subject_id=subject_id,
        payload=payload or {"case_id": subject_id},
        created_at=T0,
    )


def subscribe(partner, url, **kwargs):
    kwargs.setdefault("secret", SECRET)
    return webhooks.subscription_create(partner=partner, url=url, **kwargs)


class TestSignature:
    def test_the_signature_is_hmac_sha256_over_timestamp_dot_body(self):
        body = b'{"id":1,"type":"case.opened"}'
        expected = hmac.new(b"k" * 20, b"1767225600." + body, hashlib.sha256).hexdigest()
        assert webhooks.signature("k" * 20, 1767225600, body) == f"sha256={expected}"

    def test_verify_accepts_the_real_thing_and_refuses_tampering_replays_and_garbage(self):
        body, now = b'{"a":1}', time.time()
        ts = int(now)
        good = webhooks.signature(SECRET, ts, body)
        assert webhooks.verify(SECRET, str(ts), body, good)
        assert not webhooks.verify(SECRET, ts, body + b" ", good)  # body changed
        assert not webhooks.verify("another-secret-value", ts, body, good)  # wrong secret
        assert not webhooks.verify(SECRET, ts + 1, body, good)  # timestamp changed
        assert not webhooks.verify(SECRET, ts, body, good, now=now + 301)  # replayed later
        assert webhooks.verify(SECRET, ts, body, good, now=now + 299)
        assert not webhooks.verify(SECRET, "yesterday", body, good)
        assert not webhooks.verify(SECRET, ts, body, "")
        assert not webhooks.verify(SECRET, None, body, None)
        assert not webhooks.verify(SECRET, ts, body, "sha256=签名")


class TestSubscriptions:
    def test_a_secret_is_made_when_none_is_given(self, partner):
        first = webhooks.subscription_create(partner=partner, url="https://partner.example.com/hooks")
        second = webhooks.subscription_create(partner=partner, url="https://partner.example.com/hooks")
        assert len(first.secret) >= 43 and first.secret != second.secret
        assert first.event_types == []  # every event

    @pytest.mark.parametrize(
        ("fields", "field", "message"),
        [
            ({"url": "ftp://partner.example.com/x"}, "url", "Give an http:// or https:// URL."),
            ({"url": "not a url"}, "url", "Give an http:// or https:// URL."),
            (
                {"event_types": ["case.opened", "case.eaten"]},
                "event_types",
                "Unknown event types: case.eaten.",
            ),
            ({"secret": "short"}, "secret", "The secret must be 16 to 100"),
            ({"secret": "has spaces in the secret"}, "secret", "The secret must be 16 to 100"),
        ],
    )
    def test_bad_input_is_refused_naming_the_field(self, partner, fields, field, message):
        with pytest.raises(ValidationError) as refused:
            webhooks.subscription_create(partner=partner, **({"url": "https://p.example.com/h"} | fields))
        assert message in " ".join(refused.value.message_dict[field])
        assert not partner.webhooks.exists()

    @pytest.mark.parametrize(
        "url",
        [
            "http://127.0.0.1:6379/",
            "http://localhost/x",
            "http://10.1.2.3/x",
            "http://[::1]/x",
            "http://169.254.169.254/",
        ],
    )
    def test_in_production_a_webhook_may_not_point_inside(self, partner, settings, url):
        settings.WEBHOOK_ALLOW_PRIVATE_URLS = False
        with pytest.raises(ValidationError) as refused:
            webhooks.subscription_create(partner=partner, url=url)
        assert "private network" in " ".join(refused.value.message_dict["url"])

    def test_a_partner_has_at_most_twenty(self, partner):
        for n in range(webhooks.MAX_SUBSCRIPTIONS_PER_PARTNER):
            webhooks.subscription_create(partner=partner, url=f"https://p.example.com/{n}")
        with pytest.raises(ValidationError, match="at most 20"):
            webhooks.subscription_create(partner=partner, url="https://p.example.com/one-more")

    def test_update_changes_only_what_is_given(self, partner):
        sub = subscribe(partner, "https://p.example.com/h", event_types=["case.opened"], description="d")
        sub = webhooks.subscription_update(subscription=sub, is_active=False)
        assert (sub.is_active, sub.event_types, sub.description, sub.secret) == (
            False, ["case.opened"], "d", SECRET,
        )  # fmt: skip
        with pytest.raises(ValidationError):
            webhooks.subscription_update(subscription=sub, event_types=["nope"])
        sub.refresh_from_db()
        assert sub.event_types == ["case.opened"]


class TestDelivery:
    def test_a_case_opened_by_the_scan_reaches_the_receiver_signed(self, partner, receiver):
        sub = subscribe(partner, receiver.url, event_types=["case.opened"])
        loan = make_loan(borrower=BorrowerFactory(partner=partner))
        scan_run(as_of=date(2025, 2, 2))  # one day past the first due date: a case opens
        opened = OutboxEvent.objects.get(event_type="case.opened")
        assert opened.delivered_at is None

        totals = webhooks.webhooks_deliver()

        assert totals["events"] == 1 and totals["delivered"] == 1
        [request] = receiver.requests
        assert request["verified"] is True
        delivery = WebhookDelivery.objects.get()
        assert request["headers"]["X-Event-Id"] == str(opened.pk)
        assert request["headers"]["X-Event-Type"] == "case.opened"
        assert request["headers"]["X-Delivery-Id"] == str(delivery.pk)
        assert request["headers"]["Content-Type"] == "application/json"
        assert request["json"]["id"] == opened.pk and request["json"]["type"] == "case.opened"
        assert request["json"]["partner"] == "acme"
        assert request["json"]["data"]["loan_ref"] == loan.external_ref
        assert request["json"]["data"]["case_id"] == opened.subject_id
        assert datetime.fromisoformat(request["json"]["created_at"]) == opened.created_at
        assert (delivery.subscription, delivery.status, delivery.attempts, delivery.last_status_code) == (
            sub, "delivered", 1, 200,
        )  # fmt: skip
        assert delivery.delivered_at is not None and delivery.next_attempt_at is None
        opened.refresh_from_db()
        assert opened.delivered_at is not None
        # Running again sends nothing more.
        assert webhooks.webhooks_deliver()["sent"] == 0
        assert len(receiver.requests) == 1

    def test_the_signature_covers_the_exact_bytes_sent(self, partner, receiver):
        subscribe(partner, receiver.url)
        event(partner, payload_note="配额 €")
        webhooks.webhooks_deliver(now=T0)
        [request] = receiver.requests
        headers = request["headers"]
        expected = webhooks.signature(SECRET, headers["X-Timestamp"], request["body"])
        assert headers["X-Signature"] == expected
        assert abs(int(headers["X-Timestamp"]) - time.time()) < 60  # the wall clock, not the business now
        assert request["json"]["data"]["payload_note"] == "配额 €"

    def test_event_filters_and_partners_are_respected(self, partner, receiver):
        other = PartnerFactory(code="rival")
        everything = subscribe(partner, receiver.url)
        promises_only = subscribe(partner, receiver.url, event_types=["promise.broken"])
        paused = subscribe(partner, receiver.url, is_active=False)
        rivals = subscribe(other, receiver.url)
        opened = event(partner, "case.opened", 1)
        broken = event(partner, "promise.broken", 2)
        rival_event = event(other, "case.closed", 3)

        assert webhooks.outbox_dispatch(now=T0) == 3
        pairs = set(WebhookDelivery.objects.values_list("subscription_id", "event_id"))
        assert pairs == {
            (everything.pk, opened.pk),
            (everything.pk, broken.pk),
            (promises_only.pk, broken.pk),
            (rivals.pk, rival_event.pk),
        }
        assert not WebhookDelivery.objects.filter(subscription=paused).exists()
        webhooks.deliveries_send(now=T0)
        assert sorted((r["json"]["partner"], r["json"]["type"]) for r in receiver.requests) == [
            ("acme", "case.opened"), ("acme", "promise.broken"), ("acme", "promise.broken"),
            ("rival", "case.closed"),
        ]  # fmt: skip

    def test_events_of_a_partner_with_no_subscription_are_marked_and_never_sent_later(
        self, partner, receiver
    ):
        early = event(partner)
        assert webhooks.outbox_dispatch(now=T0) == 1
        early.refresh_from_db()
        assert early.delivered_at == T0 and not WebhookDelivery.objects.exists()
        subscribe(partner, receiver.url)
        late = event(partner, subject_id=2)
        webhooks.webhooks_deliver(now=T0 + timedelta(minutes=1))
        assert [r["json"]["id"] for r in receiver.requests] == [late.pk]

    def test_events_wait_in_the_outbox_while_nothing_runs_and_none_is_lost(self, partner, receiver):
        subscribe(partner, receiver.url)
        made = [event(partner, subject_id=n) for n in range(7)]
        # No worker, no broker: the events stay in the database, undispatched.
        assert OutboxEvent.objects.filter(delivered_at__isnull=True).count() == 7
        assert not WebhookDelivery.objects.exists()
        # The oldest first, a batch at a time, until none is left.
        assert webhooks.outbox_dispatch(now=T0, limit=3) == 3
        assert set(WebhookDelivery.objects.values_list("event_id", flat=True)) == {e.pk for e in made[:3]}
        totals = webhooks.webhooks_deliver(now=T0, limit=3)
        assert totals["events"] == 4 and totals["delivered"] == 7
        assert sorted(r["json"]["id"] for r in receiver.requests) == [e.pk for e in made]

    def test_the_celery_task_and_the_command_deliver(self, partner, receiver):
        subscribe(partner, receiver.url)
        event(partner, subject_id=1)
        result = tasks.webhooks_deliver.delay()  # eager: no broker in the tests
        assert result.get()["delivered"] == 1
        event(partner, subject_id=2)
        call_command("deliver_webhooks", stdout=(out := io.StringIO()))
        assert "events 1, sent 1: delivered 1" in out.getvalue()
        assert [r["json"]["data"]["case_id"] for r in receiver.requests] == [1, 2]

    def test_the_purge_task_forgets_old_idempotency_keys(self):
        old = datetime.now(UTC) - timedelta(hours=25)
        IdempotencyRecord.objects.create(
            owner="key:1", key="a", method="POST", path="/", request_hash="h", created_at=old
        )
        IdempotencyRecord.objects.create(
            owner="key:1", key="b", method="POST", path="/", request_hash="h", created_at=datetime.now(UTC)
        )
        assert tasks.idempotency_purge.delay().get() == {"deleted": 1}
        assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["b"]


class TestRetries:
    def test_a_receiver_that_is_down_gets_it_after_backoff_when_it_is_up(self, partner):
        port = closed_port()
        sub = subscribe(partner, f"http://127.0.0.1:{port}/hooks")
        sent = event(partner)

        webhooks.webhooks_deliver(now=T0)
        delivery = WebhookDelivery.objects.get()
        assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("pending", 1, None)
        assert "ConnectError" in delivery.last_error
        assert delivery.first_attempt_at == T0
        assert delivery.next_attempt_at == T0 + timedelta(seconds=30)

        # Not due yet: nothing is tried.
        assert webhooks.deliveries_send(now=T0 + timedelta(seconds=29))["sent"] == 0
        webhooks.deliveries_send(now=T0 + timedelta(seconds=30))
        delivery.refresh_from_db()
        assert delivery.attempts == 2
        assert delivery.next_attempt_at == T0 + timedelta(seconds=30 + 60)  # the wait doubles

        up = Receiver(port=port, secret=sub.secret)
        try:
            totals = webhooks.deliveries_send(now=T0 + timedelta(seconds=90))
        finally:
            up.close()
        assert totals["delivered"] == 1
        delivery.refresh_from_db()
        assert (delivery.status, delivery.attempts, delivery.last_status_code, delivery.last_error) == (
            "delivered", 3, 200, "",
        )  # fmt: skip
        [request] = up.requests
        assert request["verified"] and request["json"]["id"] == sent.pk

    @pytest.mark.parametrize("status", [500, 503, 404, 302])
    def test_an_answer_other_than_2xx_is_a_failure_to_retry(self, partner, status):
        down = Receiver(status=status)
        try:
            subscribe(partner, down.url)
            event(partner)
            webhooks.webhooks_deliver(now=T0)
        finally:
            down.close()
        delivery = WebhookDelivery.objects.get()
        assert (delivery.status, delivery.last_status_code, delivery.last_error) == (
            "pending", status, f"HTTP {status}",
        )  # fmt: skip
        assert len(down.requests) == 1  # a redirect is not followed

    def test_it_gives_up_24_hours_after_the_first_attempt_and_a_person_may_redeliver(self, partner):
        port = closed_port()
        sub = subscribe(partner, f"http://127.0.0.1:{port}/hooks")
        event(partner)
        webhooks.outbox_dispatch(now=T0)
        attempts_at, now = [], T0
        for _ in range(100):
            webhooks.deliveries_send(now=now)
            delivery = WebhookDelivery.objects.get()
            attempts_at.append(now)
            if delivery.status != "pending":
                break
            now = delivery.next_attempt_at
        gaps = [(b - a).total_seconds() for a, b in zip(attempts_at, attempts_at[1:], strict=False)]
        assert gaps[:8] == [30, 60, 120, 240, 480, 960, 1920, 3600]  # doubling, at most an hour
        assert set(gaps[8:-1]) == {3600}
        assert delivery.status == "failed" and delivery.next_attempt_at is None
        assert attempts_at[-1] == T0 + timedelta(hours=24)  # the last try is at the deadline
        assert delivery.attempts == len(attempts_at)
        # Nothing is sent once it has given up.
        assert webhooks.deliveries_send(now=now + timedelta(days=1))["sent"] == 0

        later = T0 + timedelta(days=3)
        delivery = webhooks.delivery_redeliver(delivery=delivery, actor=None, now=later)
        assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == ("pending", 0, later)
        up = Receiver(port=port, secret=sub.secret)
        try:
            assert webhooks.deliveries_send(now=later)["delivered"] == 1
        finally:
            up.close()
        delivery.refresh_from_db()
        assert delivery.status == "delivered" and delivery.first_attempt_at == later  # a new window
        assert up.requests[0]["verified"]

    def test_a_delivered_event_can_be_sent_again(self, partner, receiver):
        subscribe(partner, receiver.url)
        event(partner)
        webhooks.webhooks_deliver(now=T0)
        delivery = WebhookDelivery.objects.get()
        webhooks.delivery_redeliver(delivery=delivery, now=T0 + timedelta(hours=1))
        delivery.refresh_from_db()
        assert (delivery.status, delivery.delivered_at) == ("pending", None)
        webhooks.webhooks_deliver(now=T0 + timedelta(hours=1))
        first, second = receiver.requests
        assert first["headers"]["X-Event-Id"] == second["headers"]["X-Event-Id"]
        assert first["body"] == second["body"]  # the same event, for the receiver to recognise
        delivery.refresh_from_db()
        assert delivery.status == "delivered"

    def test_a_deleted_subscription_is_not_sent_to(self, partner, receiver):
        sub = subscribe(partner, receiver.url)
        event(partner)
        webhooks.outbox_dispatch(now=T0)
        webhooks.subscription_delete(subscription=sub)
        assert webhooks.deliveries_send(now=T0)["sent"] == 0
        assert receiver.requests == []


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_workers_never_send_one_delivery_twice(on_postgres, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    partner = PartnerFactory(code="acme-concurrent")
    receiver = Receiver(delay=0.02)
    try:
        subscribe(partner, receiver.url)
        subscribe(partner, receiver.url, event_types=["case.opened"])
        for n in range(40):
            event(partner, subject_id=n)
        barrier = threading.Barrier(4)
        errors, claimed = [], [0, 0, 0, 0]

        def worker(index, job):
            try:
                barrier.wait()
                if job == "dispatch":
                    while webhooks.outbox_dispatch(now=T0, limit=5):
                        pass
                while True:
                    webhooks.outbox_dispatch(now=T0, limit=5)
                    sent = webhooks.deliveries_send(now=T0, limit=7)["sent"]
                    claimed[index] += sent
                    if not sent and not OutboxEvent.objects.filter(delivered_at__isnull=True).exists():
                        break
            except Exception as exc:  # pragma: no cover - reported below
                errors.append(exc)
            finally:
                connection.close()

        threads = [
            threading.Thread(target=worker, args=(i, j))
            for i, j in enumerate(("dispatch", "dispatch", "send", "send"))
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert errors == []
    finally:
        receiver.close()
    # Each delivery was claimed by exactly one worker, and the workers shared the work.
    assert sum(claimed) == 80 and sum(1 for n in claimed if n) >= 2
    delivery_ids = [r["headers"]["X-Delivery-Id"] for r in receiver.requests]
    assert len(delivery_ids) == 80 and len(set(delivery_ids)) == 80
    assert all(r["verified"] for r in receiver.requests)
    assert WebhookDelivery.objects.filter(status="delivered", attempts=1).count() == 80
    assert not OutboxEvent.objects.filter(delivered_at__isnull=True).exists()
