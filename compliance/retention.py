"""Retention: anonymise borrowers whose records have been kept long enough (PIPL art. 19 and 47,
GDPR art. 5(1)(e)), keeping the collection records themselves (NIFA 2018: 5 years; Reg F 1006.100:
3 years after the last collection activity).

A borrower is due on ``as_of`` when all of these hold:

- none of its loans is active (an active loan is an open balance);
- its latest activity is more than ``years`` before ``as_of``: the latest of its loans' ``closed_on``,
  the ``closed_on`` of every record found generically with one (the collections cases, found through
  ``compliance.export.borrower_record_models`` without importing ``debt_collections``; an open one,
  with no ``closed_on``, keeps the borrower), its latest contact attempt, and the day the borrower
  was recorded (so a borrower booked with no loan yet is never due at once);
- it has no unreleased ``legal_hold`` flag (an expired ``until`` does not release a legal hold:
  only a person does);
- it is not anonymised already.

Anonymising replaces the full name with ``已匿名化 #<id>``, clears the national ID (and its hash
column if the model has one), the date of birth, every contact point's value (a placeholder, unique
per contact point) and third-party names, in the live rows and in django-simple-history's
historical rows of borrowers and contact points, set-wise in batches. Loans, payments, cases,
transitions and contact attempts stay as they are. The partner's ``external_ref`` stays too: the
records must still reconcile with the partner's books, so strictly the result is pseudonymous for
whoever also holds the partner's data.

There is no "anonymised" column: the placeholder name is the mark (``anonymised_borrowers``), and
one ``retention`` audit event per run that anonymised anybody lists the ids.

The placeholder is Chinese (``已匿名化``, "anonymised") because the book and its operators are
Chinese first (``LANGUAGE_CODE`` zh-hans); it is a stored constant, not a translation, so the
mark does not change with the interface language.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, time

from dateutil.relativedelta import relativedelta
from django.conf import settings
from django.core.exceptions import FieldDoesNotExist
from django.db import models, transaction
from django.db.models import CharField, Exists, OuterRef, Q, Value
from django.db.models.functions import Cast, Concat
from django.utils import timezone

from compliance.audit import audit_record
from compliance.export import borrower_record_models, paths_to_borrower
from compliance.models import AuditEventType, BorrowerFlag, ContactAttempt
from loans.models import Borrower, ContactPoint, Loan

logger = logging.getLogger(__name__)

ANONYMISED_PREFIX = "已匿名化 #"
BATCH = 1000


def placeholder(id_field: str = "pk"):
    """``已匿名化 #<id>`` as a database expression over the row's id column."""
    text = CharField()
    return Concat(Value(ANONYMISED_PREFIX), Cast(id_field, output_field=text), output_field=text)


def anonymised_borrowers():
    """Borrowers anonymised by a purge: their name is exactly the placeholder with their own id."""
    return Borrower.objects.filter(full_name=placeholder())


@dataclass(frozen=True)
class RetentionResult:
    as_of: date
    years: int
    cutoff: date  # a borrower whose latest activity is before this day is due
    dry_run: bool
    borrower_ids: tuple[int, ...]
    contact_points: int = 0
    history_rows: int = 0
    audit_event_id: int | None = None

    @property
    def count(self) -> int:
        return len(self.borrower_ids)

    def line(self) -> str:
        ids = ", ".join(map(str, self.borrower_ids[:10]))
        if self.count > 10:
            ids += f", ... ({self.count - 10} more)"
        head = f"Retention purge as of {self.as_of} ({self.years} years: last activity before {self.cutoff})"
        if self.dry_run:
            listed = f" (ids {ids})" if ids else ""
            return f"{head}, dry run: {self.count} borrowers due{listed}; nothing written."
        if not self.count:
            return f"{head}: no borrower due; nothing written."
        return (
            f"{head}: {self.count} borrowers anonymised (ids {ids}), {self.contact_points} contact points "
            f"and {self.history_rows} history rows scrubbed (audit event #{self.audit_event_id})."
        )

    def as_dict(self) -> dict:
        return {
            "as_of": self.as_of.isoformat(),
            "years": self.years,
            "cutoff": self.cutoff.isoformat(),
            "dry_run": self.dry_run,
            "count": self.count,
            "borrower_ids": list(self.borrower_ids),
            "contact_points": self.contact_points,
            "history_rows": self.history_rows,
            "audit_event_id": self.audit_event_id,
        }


def _closable_records():
    """Records found generically that open and close (the collections cases): model and paths."""
    records = {r.model: r for r in borrower_record_models()}
    for model, record in records.items():
        if model is Loan:
            continue
        try:
            closed_on = model._meta.get_field("closed_on")
        except FieldDoesNotExist:
            continue
        if isinstance(closed_on, models.DateField) and not isinstance(closed_on, models.DateTimeField):
            yield model, paths_to_borrower(record, records)


def due_borrowers(*, cutoff: date) -> models.QuerySet[Borrower]:
    """Borrowers due for anonymisation when activity before ``cutoff`` is old enough (see the module)."""
    cutoff_start = timezone.make_aware(datetime.combine(cutoff, time.min))
    borrower = OuterRef("pk")
    due = (
        Borrower.objects.exclude(full_name=placeholder())
        .filter(created_at__lt=cutoff_start)
        .filter(
            ~Exists(
                Loan.objects.filter(borrower=borrower).filter(
                    Q(status=Loan.Status.ACTIVE) | Q(closed_on__gte=cutoff)
                )
            ),
            ~Exists(ContactAttempt.objects.filter(borrower=borrower, at__gte=cutoff_start)),
            ~Exists(
                BorrowerFlag.objects.filter(
                    borrower=borrower, kind=BorrowerFlag.Kind.LEGAL_HOLD, released_at__isnull=True
                )
            ),
        )
    )
    for model, paths in _closable_records():
        concerns = Q()
        for path in paths:
            concerns |= Q(**{path: borrower})
        recent = model._base_manager.filter(concerns).filter(
            Q(closed_on__isnull=True) | Q(closed_on__gte=cutoff)
        )
        due = due.filter(~Exists(recent))
    return due


def _cleared(model, name: str) -> dict:
    """``{name: empty}`` when the model has that column (None if nullable, else "")."""
    try:
        column = model._meta.get_field(name)
    except FieldDoesNotExist:
        return {}
    return {name: None if column.null else ""}


def _anonymise(ids: list[int], now: datetime) -> tuple[int, int]:
    """Scrub the personal fields of these borrowers, live and historical. (contact points, history rows)"""
    borrower_history = Borrower.history.model
    contact_history = ContactPoint.history.model
    personal = {"date_of_birth": None}
    contact_points = history_rows = 0
    for start in range(0, len(ids), BATCH):
        batch = ids[start : start + BATCH]
        Borrower.objects.filter(pk__in=batch).update(
            full_name=placeholder("pk"),
            updated_at=now,
            **personal,
            **_cleared(Borrower, "national_id"),
            **_cleared(Borrower, "national_id_hash"),
        )
        history_rows += borrower_history.objects.filter(id__in=batch).update(
            full_name=placeholder("id"),
            **personal,
            **_cleared(borrower_history, "national_id"),
            **_cleared(borrower_history, "national_id_hash"),
        )
        contact_points += ContactPoint.objects.filter(borrower_id__in=batch).update(
            value=placeholder("pk"), third_party_name=""
        )
        history_rows += contact_history.objects.filter(borrower_id__in=batch).update(
            value=placeholder("id"), third_party_name=""
        )
    return contact_points, history_rows


def retention_purge(*, as_of: date, years: int | None = None, dry_run: bool = False) -> RetentionResult:
    """Anonymise every borrower due on ``as_of`` (``years``: default ``settings.RETENTION_YEARS``).

    Set-wise and in one transaction with its audit event (``retention``: as_of, years, cutoff, count,
    ids), written only when somebody was anonymised, so a rerun is a no-op. ``dry_run`` only lists
    who is due and writes nothing.
    """
    years = settings.RETENTION_YEARS if years is None else years
    if isinstance(years, bool) or not isinstance(years, int) or years < 1:
        raise ValueError(f"years must be a whole number of at least 1, got {years!r}")
    cutoff = as_of - relativedelta(years=years)
    due = due_borrowers(cutoff=cutoff)
    if dry_run:
        ids = tuple(due.order_by("pk").values_list("pk", flat=True))
        return RetentionResult(as_of=as_of, years=years, cutoff=cutoff, dry_run=True, borrower_ids=ids)
    with transaction.atomic():
        # Lock the candidates, then ask again: a loan, contact or legal hold added meanwhile for one of
        # them either committed before the second question (which then sees it) or waits for this
        # transaction (a new row referencing a borrower needs the lock held here).
        candidates = list(due.select_for_update(of=("self",)).order_by("pk").values_list("pk", flat=True))
        ids: list[int] = []
        for start in range(0, len(candidates), BATCH):
            batch = candidates[start : start + BATCH]
            ids.extend(due.filter(pk__in=batch).order_by("pk").values_list("pk", flat=True))
        if not ids:
            return RetentionResult(as_of=as_of, years=years, cutoff=cutoff, dry_run=False, borrower_ids=())
        now = timezone.now()
        contact_points, history_rows = _anonymise(ids, now)
        event = audit_record(
            event_type=AuditEventType.RETENTION,
            actor_label="retention",
            details={
                "as_of": as_of,
                "years": years,
                "cutoff": cutoff,
                "count": len(ids),
                "borrower_ids": ids,
                "contact_points": contact_points,
                "history_rows": history_rows,
            },
        )
    logger.info("retention purge as of %s: %d borrowers anonymised", as_of, len(ids))
    return RetentionResult(
        as_of=as_of,
        years=years,
        cutoff=cutoff,
        dry_run=False,
        borrower_ids=tuple(ids),
        contact_points=contact_points,
        history_rows=history_rows,
        audit_event_id=event.pk,
    )


__all__ = [
    "ANONYMISED_PREFIX",
    "RetentionResult",
    "anonymised_borrowers",
    "due_borrowers",
    "placeholder",
    "retention_purge",
]
