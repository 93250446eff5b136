"""The audit log: append-only and hash-chained.

Each event's hash is SHA-256 over the previous event's hash and the event's own fields in a
canonical JSON form, so editing, deleting or reordering any row breaks the chain from there on
(``verify_chain``). Appends are serialised (an advisory transaction lock on PostgreSQL; SQLite
writes one at a time anyway), so concurrent writers never fork the chain. Services call
``audit_record`` inside their own transaction: the event commits or rolls back with the action.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.utils import timezone

from compliance.models import AuditEvent, AuditEventType

GENESIS = "0" * 64
LOCK_SPACE_AUDIT = 730_201


def _normalise(details: dict | None) -> dict:
    """What the JSON column gives back: Decimals, dates and UUIDs as strings."""
    return json.loads(json.dumps(details or {}, cls=DjangoJSONEncoder))


def compute_hash(
    *,
    prev_hash: str,
    event_type: str,
    at: datetime,
    actor_id: int | None,
    actor_label: str,
    subject_type: str,
    subject_id: str,
    details: dict,
) -> str:
    body = json.dumps(
        {
            "prev": prev_hash,
            "type": event_type,
            "at": at.astimezone(UTC).isoformat(timespec="microseconds"),
            "actor_id": actor_id,
            "actor": actor_label,
            "subject_type": subject_type,
            "subject_id": subject_id,
            "details": details,
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def _hash_of(event: AuditEvent) -> str:
    return compute_hash(
        prev_hash=event.prev_hash,
        event_type=event.event_type,
        at=event.at,
        actor_id=event.actor_id,
        actor_label=event.actor_label,
        subject_type=event.subject_type,
        subject_id=event.subject_id,
        details=event.details,
    )


def _subject(subject) -> tuple[str, str]:
    if subject is None:
        return "", ""
    if isinstance(subject, tuple):
        kind, pk = subject
        return str(kind), str(pk)
    return subject._meta.label_lower, str(subject.pk)


@transaction.atomic
def audit_record(
    *,
    event_type: str,
    actor=None,
    actor_label: str | None = None,
    subject=None,
    details: dict | None = None,
    at: datetime | None = None,
) -> AuditEvent:
    """Append one event. ``subject``: a model instance or a ``(type, id)`` pair; ``actor``: a user,
    or None with ``actor_label`` ("scan", "system", or the username tried at a failed login)."""
    if event_type not in AuditEventType.values:
        raise ValueError(f"unknown audit event type {event_type!r}")
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, 0)", [LOCK_SPACE_AUDIT])
    last = AuditEvent.objects.order_by("-id").values_list("hash", flat=True).first()
    actor_id = getattr(actor, "pk", None)
    label = actor_label or (actor.get_username() if actor is not None else "system")
    subject_type, subject_id = _subject(subject)
    # Microseconds are what both databases keep; the hash must survive the round trip.
    at = (at or timezone.now()).astimezone(UTC)
    event = AuditEvent(
        event_type=event_type,
        at=at,
        actor_id=actor_id,
        actor_label=label[:150],
        subject_type=subject_type[:50],
        subject_id=subject_id[:50],
        details=_normalise(details),
        prev_hash=last or GENESIS,
    )
    event.hash = _hash_of(event)
    event.save()
    return event


@dataclass(frozen=True)
class ChainProblem:
    event_id: int
    problem: str


def chain_problems(events: Iterator[AuditEvent] | None = None) -> Iterator[ChainProblem]:
    """Walk the chain in id order; yield each event whose link or hash does not hold."""
    expected_prev = GENESIS
    rows = events if events is not None else AuditEvent.objects.order_by("id").iterator(chunk_size=2000)
    for event in rows:
        if event.prev_hash != expected_prev:
            yield ChainProblem(event.pk, "its link to the event before is broken (a row deleted or moved)")
        elif _hash_of(event) != event.hash:
            yield ChainProblem(event.pk, "its contents do not match its hash (the row was edited)")
        expected_prev = event.hash


def verify_chain() -> ChainProblem | None:
    """The first problem in the chain, or None when it is intact."""
    return next(chain_problems(), None)
