"""Reads for the compliance officer's pages (``compliance.views``): querysets built for each page, with
what the page shows already joined, so a page costs the same few queries whatever it lists.

The audit log may hold millions of rows: its lists (the audit browser, the PII reveals) page by keyset
on the id, newest first (``keyset_page``), and never count the table. The other lists (overrides,
requests, flags) are small tables and use Django's paginator.

Refused contacts: ``check_contact`` refusals are not stored on their own (``contact_attempt_record``
raises ``ContactDenied`` and its transaction writes nothing). What is on record is every refusal a
collector asked a supervisor to override (``OverrideRequest``) and every contact that went ahead
under an override (``ContactAttempt.override``, with the refusing decision frozen in ``decision``);
``denied_contacts`` reads both as one log.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import connection
from django.db.models import CharField, F, Prefetch, Q, QuerySet, Value
from django.db.models.fields.json import KeyTransform
from django.utils import timezone

from compliance.admin.audit import tail_status
from compliance.audit import ChainProblem, chain_problems, compute_hash
from compliance.models import (
    AuditEvent,
    AuditEventType,
    ContactAttempt,
    ContactOverride,
    JurisdictionProfile,
    OverrideRequest,
    ScreeningFlag,
)
from loans.models import Borrower, ContactPoint, Loan, Partner

AUDIT_PAGE_SIZE = 100
SEARCH_LIMIT = 50


def _json_list_has(path: str, value) -> Q:
    """Rows whose JSON list at ``path`` holds ``value`` (a string or a small object).

    PostgreSQL tests containment (``@>``); SQLite has no containment operator, so there the stored
    JSON text is searched for the element as Django writes it."""
    if connection.vendor == "postgresql":
        return Q(**{f"{path}__contains": [value]})
    if isinstance(value, dict):
        # Django stores JSON with ", " and ": " separators; one key is enough here.
        ((key, item),) = value.items()
        return Q(**{f"{path}__icontains": f'"{key}": "{item}"'})
    return Q(**{f"{path}__icontains": f'"{value}"'})


# --- home ------------------------------------------------------------------------------------------


def attention_counts(*, now: datetime, today_start: datetime) -> dict[str, int]:
    """What needs a compliance officer's eye: one small indexed count each."""
    return {
        "unreviewed_flags": ScreeningFlag.objects.filter(reviewed_at__isnull=True).count(),
        "overrides_week": ContactOverride.objects.filter(granted_at__gte=now - timedelta(days=7)).count(),
        "pending_requests": OverrideRequest.objects.filter(status=OverrideRequest.Status.PENDING).count(),
        "pii_reveals_today": AuditEvent.objects.filter(
            event_type=AuditEventType.PII_REVEAL, at__gte=today_start
        ).count(),
        "denied_today": denied_contacts(start=today_start).count(),
    }


# --- rule profiles ---------------------------------------------------------------------------------


def rule_profiles() -> QuerySet[JurisdictionProfile]:
    return JurisdictionProfile.objects.prefetch_related("rules").order_by("code")


def recent_rule_edits(limit: int = 10) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(event_type=AuditEventType.RULE_EDIT).order_by("-id")[:limit])


# --- refused contacts ------------------------------------------------------------------------------


def denied_contacts(*, start=None, end=None, channel: str = "", reason: str = "", agent=None) -> QuerySet:
    """Refusals on record, newest first, as rows of ``source`` ("request" or "attempt"), ``row`` (its
    id), ``when``, ``channel_code``, ``codes`` (the reason codes), ``agent`` (user id), ``whose``
    (borrower id) and ``state`` (the request's status, or "overridden")."""
    requests = OverrideRequest.objects.all()
    attempts = ContactAttempt.objects.filter(override__isnull=False)
    if start is not None:
        requests, attempts = requests.filter(requested_at__gte=start), attempts.filter(at__gte=start)
    if end is not None:
        requests, attempts = requests.filter(requested_at__lt=end), attempts.filter(at__lt=end)
    if channel:
        requests, attempts = requests.filter(channel=channel), attempts.filter(channel=channel)
    if reason:
        requests = requests.filter(_json_list_has("reasons", reason))
        attempts = attempts.filter(_json_list_has("decision__reasons", reason))
    if agent is not None:
        requests, attempts = requests.filter(requested_by=agent), attempts.filter(actor=agent)
    text = CharField()
    # Every column an alias, in the same order on both sides of the UNION; no ORDER BY inside it (the
    # models' default orderings are cleared).
    request_rows = requests.order_by().values(
        source=Value("request", output_field=text),
        row=F("pk"),
        when=F("requested_at"),
        channel_code=F("channel"),
        codes=F("reasons"),
        agent=F("requested_by"),
        whose=F("borrower"),
        state=F("status"),
    )
    attempt_rows = attempts.order_by().values(
        source=Value("attempt", output_field=text),
        row=F("pk"),
        when=F("at"),
        channel_code=F("channel"),
        codes=KeyTransform("reasons", "decision"),
        agent=F("actor"),
        whose=F("borrower"),
        state=Value("overridden", output_field=text),
    )
    return request_rows.union(attempt_rows, all=True).order_by("-when", "-row")


def people(*, user_ids=(), borrower_ids=()) -> tuple[dict, dict]:
    """Users and borrowers by id, for rows that carry only ids (two queries at most)."""
    user_ids, borrower_ids = {i for i in user_ids if i}, {i for i in borrower_ids if i}
    users = get_user_model()._default_manager.only("pk", "username").in_bulk(user_ids) if user_ids else {}
    borrowers = (
        Borrower.objects.only("pk", "full_name", "external_ref").in_bulk(borrower_ids) if borrower_ids else {}
    )
    return users, borrowers


# --- overrides -------------------------------------------------------------------------------------


def contact_overrides(
    *, now: datetime, start=None, end=None, state: str = "", channel: str = "", granted_by=None
) -> QuerySet[ContactOverride]:
    """Granted overrides, newest first, with the borrower, the contact point, who granted it and the
    request it answered (if any)."""
    queryset = ContactOverride.objects.select_related(
        "borrower", "contact_point", "granted_by", "request__requested_by"
    ).defer("borrower__national_id")
    if start is not None:
        queryset = queryset.filter(granted_at__gte=start)
    if end is not None:
        queryset = queryset.filter(granted_at__lt=end)
    if state == "open":
        queryset = queryset.filter(used_at__isnull=True, valid_until__gt=now)
    elif state == "used":
        queryset = queryset.filter(used_at__isnull=False)
    elif state == "expired":
        queryset = queryset.filter(used_at__isnull=True, valid_until__lte=now)
    if channel:
        queryset = queryset.filter(channel=channel)
    if granted_by is not None:
        queryset = queryset.filter(granted_by=granted_by)
    return queryset.order_by("-granted_at", "-pk")


def override_requests(
    *, start=None, end=None, status: str = "", channel: str = "", requested_by=None
) -> QuerySet[OverrideRequest]:
    """Override requests, newest first, with who asked, who decided and the loan."""
    queryset = OverrideRequest.objects.select_related(
        "borrower", "contact_point", "loan", "requested_by", "decided_by", "override"
    ).defer("borrower__national_id")
    if start is not None:
        queryset = queryset.filter(requested_at__gte=start)
    if end is not None:
        queryset = queryset.filter(requested_at__lt=end)
    if status:
        queryset = queryset.filter(status=status)
    if channel:
        queryset = queryset.filter(channel=channel)
    if requested_by is not None:
        queryset = queryset.filter(requested_by=requested_by)
    return queryset.order_by("-requested_at", "-pk")


# --- flagged notes ---------------------------------------------------------------------------------


def screening_flags(*, state: str = "unreviewed", category: str = "", source: str = "") -> QuerySet:
    """Flagged notes: those waiting first (oldest waiting at the bottom of the newest), then the most
    recently reviewed."""
    queryset = ScreeningFlag.objects.select_related("reviewed_by")
    if state == "unreviewed":
        queryset = queryset.filter(reviewed_at__isnull=True)
    elif state == "reviewed":
        queryset = queryset.filter(reviewed_at__isnull=False)
    if category:
        queryset = queryset.filter(_json_list_has("matches", {"category": category}))
    if source:
        queryset = queryset.filter(source=source)
    return queryset.order_by(F("reviewed_at").desc(nulls_first=True), "-created_at", "-pk")


# --- the audit log ---------------------------------------------------------------------------------


def audit_events(
    *,
    event_type: str = "",
    actor: str = "",
    subject_type: str = "",
    subject_id: str = "",
    start=None,
    end=None,
) -> QuerySet[AuditEvent]:
    """Audit events matching the filters (unordered: ``keyset_page`` orders by id).

    ``actor``: a username finds that user's events by the indexed foreign key (also those recorded
    under an earlier name) and the failed sign-ins tried with that name (no user is attached to
    those); anything else ("scan", "system", a name nobody has) is matched on the recorded label."""
    queryset = AuditEvent.objects.all()
    if event_type:
        queryset = queryset.filter(event_type=event_type)
    if actor:
        User = get_user_model()
        user_id = User._default_manager.filter(**{User.USERNAME_FIELD: actor}).values_list("pk", flat=True)
        user_id = user_id.first()
        by_label = Q(actor__isnull=True, actor_label=actor)
        queryset = queryset.filter(Q(actor_id=user_id) | by_label if user_id else by_label)
    if subject_type:
        queryset = queryset.filter(subject_type=subject_type)
    if subject_id:
        queryset = queryset.filter(subject_id=subject_id)
    if start is not None:
        queryset = queryset.filter(at__gte=start)
    if end is not None:
        queryset = queryset.filter(at__lt=end)
    return queryset


def pii_reveals(
    *, start=None, end=None, actor=None, borrower: int | None = None, field: str = ""
) -> QuerySet:
    """``pii_reveal`` audit events: who revealed what of whom, and why."""
    queryset = AuditEvent.objects.filter(event_type=AuditEventType.PII_REVEAL)
    if actor is not None:
        queryset = queryset.filter(actor=actor)
    if borrower is not None:
        queryset = queryset.filter(subject_type=Borrower._meta.label_lower, subject_id=str(borrower))
    if field == "national_id":
        queryset = queryset.filter(details__field="national_id")
    elif field:
        queryset = queryset.filter(details__kind=field)
    if start is not None:
        queryset = queryset.filter(at__gte=start)
    if end is not None:
        queryset = queryset.filter(at__lt=end)
    return queryset


@dataclass(frozen=True)
class KeysetPage:
    rows: list
    newer: int | None  # the next page up: ``?after=<newer>``
    older: int | None  # the next page down: ``?before=<older>``


def keyset_page(queryset: QuerySet, *, before: int | None = None, after: int | None = None,
                size: int = AUDIT_PAGE_SIZE) -> KeysetPage:  # fmt: skip
    """One page of ``queryset`` newest first, by id: an index scan of ``size + 1`` rows, no COUNT.

    ``before``: the rows older than that id (the next page); ``after``: the rows newer than it (the
    page before). Without either, the newest rows."""
    if after is not None:
        rows = list(queryset.filter(pk__gt=after).order_by("pk")[: size + 1])
        more_newer = len(rows) > size
        rows = rows[:size][::-1]
        older = rows[-1].pk if rows and queryset.filter(pk__lt=rows[-1].pk).exists() else None
        return KeysetPage(rows, rows[0].pk if more_newer else None, older)
    older_rows = queryset.filter(pk__lt=before) if before is not None else queryset
    rows = list(older_rows.order_by("-pk")[: size + 1])
    older = rows[size - 1].pk if len(rows) > size else None
    rows = rows[:size]
    newer = None
    if before is not None and rows and queryset.filter(pk__gt=rows[0].pk).exists():
        newer = rows[0].pk
    return KeysetPage(rows, newer, older)


# --- the audit chain -------------------------------------------------------------------------------

# Where the last check's result is kept: Django's cache (Redis in production, shared by every worker;
# this process's memory in development). Nothing new is stored in the database, and no audit event
# type fits a check that changes nothing.
CHAIN_RESULT_KEY = "compliance:audit-chain:{scope}"
CHAIN_LOCK_KEY = "compliance:audit-chain:running"
CHAIN_RESULT_SECONDS = 90 * 24 * 3600
# One request's share of a walk, under gunicorn's 30-second worker timeout: about 600,000 events. A
# longer log is walked in parts ("continue"); ``manage.py verify_audit_chain`` walks it in one go.
CHAIN_WALK_SECONDS = 20
CHAIN_LOCK_SECONDS = 2 * CHAIN_WALK_SECONDS + 20
FULL, CONTINUE, RECENT = "full", "continue", "recent"
# The finding when the event an earlier part of the walk stopped at is gone or no longer what it was.
CHANGED_SINCE = "it changed after an earlier part of the walk checked it (edited or deleted)"


@dataclass(frozen=True)
class ChainCheck:
    """The result of a walk of the chain: ``full`` (every event from the first, possibly in parts)
    or ``recent`` (the newest ``compliance.admin.audit.CHAIN_WINDOW``).

    ``complete`` is False when the walk stopped at the time limit after ``last_id`` with no problem
    found so far; ``chain_check_run(scope=CONTINUE)`` walks on from there."""

    scope: str
    started_at: datetime
    checked_at: datetime
    by: str
    events: int
    first_id: int | None
    last_id: int | None
    last_hash: str
    problem_event: int | None
    problem: str
    seconds: float
    complete: bool = True

    @property
    def intact(self) -> bool:
        return self.problem_event is None


def chain_check_last(scope: str) -> ChainCheck | None:
    stored = cache.get(CHAIN_RESULT_KEY.format(scope=scope))
    try:
        return ChainCheck(**stored) if stored else None
    except TypeError:  # stored by an older version of this code
        return None


def _holds(event: AuditEvent) -> bool:
    """Does the event still match its own hash?"""
    return event.hash == compute_hash(
        prev_hash=event.prev_hash, event_type=event.event_type, at=event.at, actor_id=event.actor_id,
        actor_label=event.actor_label, subject_type=event.subject_type, subject_id=event.subject_id,
        details=event.details,
    )  # fmt: skip


def _walk(resume: ChainCheck | None) -> dict:
    """Walk the chain in id order from the start, or on from where ``resume`` stopped, for at most
    ``CHAIN_WALK_SECONDS``."""
    began = time.monotonic()
    rows = AuditEvent.objects.order_by("id")
    walked = {"count": 0, "first": None, "last": None, "stopped": False, "problem": None}
    anchor = None
    if resume is not None:
        # The event the last part stopped at, checked again: it anchors the link of the next one.
        anchor = AuditEvent.objects.filter(pk=resume.last_id).first()
        if anchor is None or anchor.hash != resume.last_hash or not _holds(anchor):
            walked["problem"] = ChainProblem(resume.last_id, CHANGED_SINCE)
            return {**walked, "seconds": time.monotonic() - began}
        rows = rows.filter(pk__gt=anchor.pk)
        walked["last"] = anchor

    def events():
        if anchor is not None:
            yield anchor
        for event in rows.iterator(chunk_size=2000):
            walked["count"] += 1
            walked["first"] = walked["first"] or event
            walked["last"] = event
            yield event  # checked by chain_problems before the next one is asked for
            if time.monotonic() - began >= CHAIN_WALK_SECONDS:
                walked["stopped"] = True
                return

    # The anchor's own link (to an event before it) was checked by the earlier part.
    problems = (p for p in chain_problems(events()) if anchor is None or p.event_id != anchor.pk)
    walked["problem"] = next(problems, None)
    return {**walked, "seconds": time.monotonic() - began}


def chain_check_run(*, scope: str, actor) -> ChainCheck | None:
    """Walk the chain and keep the result with its time and who ran it.

    ``full``: from the first event (a log too long for one request is walked in parts, see
    ``CHAIN_WALK_SECONDS``); ``continue``: on from where the last full walk stopped (from the first
    event when there is nothing to continue); ``recent``: the newest events only. Returns None
    without walking while another check is running (one at a time)."""
    if scope not in (FULL, CONTINUE, RECENT):
        raise ValueError(f"unknown scope {scope!r}")
    resume = None
    if scope == CONTINUE:
        resume = chain_check_last(FULL)
        if resume is None or resume.complete or not resume.intact or resume.last_id is None:
            resume = None
    if not cache.add(CHAIN_LOCK_KEY, actor.get_username(), CHAIN_LOCK_SECONDS):
        return None
    try:
        now = timezone.now()
        if scope == RECENT:
            began = time.monotonic()
            problem, checked = tail_status()
            first, last = (checked[0], checked[-1]) if checked else (None, None)
            result = ChainCheck(
                scope=RECENT,
                started_at=now,
                checked_at=timezone.now(),
                by=actor.get_username(),
                events=len(checked),
                first_id=first.pk if first else None,
                last_id=last.pk if last else None,
                last_hash=last.hash if last and problem is None else "",
                problem_event=problem.event_id if problem else None,
                problem=problem.problem if problem else "",
                seconds=round(time.monotonic() - began, 3),
            )
        else:
            walked = _walk(resume)
            problem, first, last = walked["problem"], walked["first"], walked["last"]
            first_id = resume.first_id if resume else (first.pk if first else None)
            result = ChainCheck(
                scope=FULL,
                started_at=resume.started_at if resume else now,
                checked_at=timezone.now(),
                by=actor.get_username(),
                events=(resume.events if resume else 0) + walked["count"],
                first_id=first_id,
                # At a problem the walk ends there: "last" is the event found wrong.
                last_id=problem.event_id if problem else (last.pk if last else None),
                last_hash=last.hash if last and problem is None else "",
                problem_event=problem.event_id if problem else None,
                problem=problem.problem if problem else "",
                seconds=round((resume.seconds if resume else 0) + walked["seconds"], 3),
                complete=problem is not None or not walked["stopped"],
            )
        cache.set(CHAIN_RESULT_KEY.format(scope=result.scope), asdict(result), CHAIN_RESULT_SECONDS)
        return result
    finally:
        cache.delete(CHAIN_LOCK_KEY)


# --- data-subject export ---------------------------------------------------------------------------


def borrower_search(*, kind: str, query: str, limit: int = SEARCH_LIMIT) -> list[Borrower]:
    """Borrowers found by national ID (through its keyed hash), by borrower or loan reference, or by
    the start of the name; at most ``limit + 1`` (the caller says when there are more), each with its
    partner, contact points and loans.

    Every branch is an index lookup: the national ID hash index; the (partner, reference) unique
    index, partner by partner, and the loan reference index; the name prefix index."""
    query = (query or "").strip()
    if not query:
        return []
    if kind == "national_id":
        queryset = Borrower.objects.with_national_id(query)
    elif kind == "reference":
        partners = list(Partner.objects.values_list("pk", flat=True))
        ids = set(
            Borrower.objects.filter(partner_id__in=partners, external_ref=query).values_list("pk", flat=True)
        )
        ids |= set(Loan.objects.filter(external_ref=query).values_list("borrower_id", flat=True))
        queryset = Borrower.objects.filter(pk__in=ids)
    elif kind == "name":
        queryset = Borrower.objects.filter(full_name__startswith=query)
    else:
        raise ValueError(f"unknown search {kind!r}")
    return list(borrower_cards(queryset)[: limit + 1])


def borrower_cards(queryset: QuerySet[Borrower]) -> QuerySet[Borrower]:
    """Borrowers with what tells them apart: partner, contact points, loan references."""
    return (
        queryset.select_related("partner")
        .prefetch_related(
            Prefetch("contact_points", queryset=ContactPoint.objects.order_by("-is_primary", "pk")),
            Prefetch("loans", queryset=Loan.objects.only("pk", "borrower_id", "external_ref", "status")),
        )
        .order_by("full_name", "pk")
    )
