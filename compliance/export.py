"""Data-subject export: everything held on one borrower, as a ZIP of JSON and CSV, audited.

The borrower's right of access and copy (PIPL art. 45, GDPR art. 15): ``borrower_export`` returns a
ZIP with ``README.txt`` (what each file is, the as-of time, who exported it and why),
``borrower.json`` (the borrower, contact points, flags, channel opt-outs, contact-rule overrides)
and one CSV per kind of record.

``compliance`` never imports ``debt_collections``, so the records are found generically
(``borrower_record_models``): every installed model with a foreign key to ``loans.Borrower`` or
``loans.Loan`` (level 1: loans, installments, payments, contact points, flags, contact attempts,
cases, reminders, ...), and every model with a foreign key to one of those (level 2: allocations,
stage transitions, holds, promises, case contacts, notices, ...), and so on (level 3: a promise's
instalments). Models that reference loans only inside a JSON field (the
webhook outbox: ``{"loan_id": ...}``) are found by that key. Field history (django-simple-history)
of the borrower and the contact points is included, since it holds earlier versions of the same
personal data; so are the audit events whose subject is the borrower or one of its records, without
the staff member's name (who at the lender did what is not the borrower's data).

Amounts are written as decimal strings, dates as ``YYYY-MM-DD`` and times as ISO 8601 with their
UTC offset (in ``TIME_ZONE``). CSVs are UTF-8 with a byte-order mark, so that spreadsheet programs
show Chinese names correctly.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from uuid import UUID

from django.apps import apps
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone, translation
from django.utils.text import format_lazy, slugify
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from simple_history.models import HistoricalChanges

from compliance.audit import audit_record
from compliance.models import AuditEvent, AuditEventType, BorrowerFlag, ChannelOptOut, ContactOverride
from loans.exceptions import field_error
from loans.models import Borrower, ContactPoint, Loan

EXPORT_PERMISSION = "compliance.export_personal_data"
REASON_MAX_LENGTH = 300

# Columns never exported: derived secrets (a keyed hash or ciphertext of the national ID), which
# mean nothing to the borrower; ``national_id`` itself is exported in clear from the attribute.
SECRET_SUFFIXES = ("_hash", "_encrypted", "_ciphertext")
# Audit columns left out: the staff member's name and the chain's internals.
AUDIT_COLUMNS = ("id", "event_type", "at", "subject_type", "subject_id", "details")

# The records that go into borrower.json, under these keys.
JSON_SECTIONS = {
    ContactPoint: "contact_points",
    BorrowerFlag: "flags",
    ChannelOptOut: "channel_opt_outs",
    ContactOverride: "contact_overrides",
}


# --- finding the records ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordModel:
    """A model whose rows concern borrowers, and the foreign keys that tie a row to one."""

    model: type[models.Model]
    level: int  # 1: points at a borrower or a loan; n: points at a record of level n - 1
    links: tuple[models.ForeignKey, ...]


def _is_history(model) -> bool:
    return issubclass(model, HistoricalChanges)


def borrower_record_models() -> list[RecordModel]:
    """Every installed model that holds records about borrowers, reached by foreign keys from
    ``loans.Borrower`` or ``loans.Loan``; history models and proxies left out. In app order."""
    candidates = [
        m for m in apps.get_models() if m is not Borrower and not m._meta.proxy and not _is_history(m)
    ]

    def links_to(model, targets) -> tuple[models.ForeignKey, ...]:
        return tuple(
            f
            for f in model._meta.concrete_fields
            if isinstance(f, models.ForeignKey) and f.related_model in targets
        )

    level1 = {}
    for model in candidates:
        links = links_to(model, (Borrower, Loan))
        if links:
            level1[model] = RecordModel(model, 1, links)
    found, level, frontier = dict(level1), 1, level1
    while frontier:  # then records of those records (a promise's instalments: three keys away), ...
        level += 1
        frontier = {}
        for model in candidates:
            if model not in found:
                links = links_to(model, tuple(found))
                if links:
                    frontier[model] = RecordModel(model, level, links)
        found.update(frontier)
    return [found[m] for m in candidates if m in found]


def rows_of(record: RecordModel, borrower_pk: int, records: dict) -> Q:
    """The condition for ``record``'s rows that concern one borrower, as index-friendly subqueries."""
    condition = Q()
    for fk in record.links:
        if fk.related_model is Borrower:
            condition |= Q(**{fk.attname: borrower_pk})
        else:
            target = records[fk.related_model]
            targets = target.model._base_manager.filter(rows_of(target, borrower_pk, records))
            condition |= Q(**{f"{fk.name}__in": targets.values("pk")})
    return condition


def paths_to_borrower(record: RecordModel, records: dict) -> tuple[str, ...]:
    """ORM lookups from ``record``'s model to the borrower's id, e.g. ``("loan__borrower",)``."""
    paths = []
    for fk in record.links:
        if fk.related_model is Borrower:
            paths.append(fk.name)
        else:
            paths.extend(
                f"{fk.name}__{rest}" for rest in paths_to_borrower(records[fk.related_model], records)
            )
    return tuple(paths)


def _json_linked_fields(exclude: Iterable[type[models.Model]]) -> list[tuple[type[models.Model], str]]:
    """Models that may name loans only inside a JSON field (the outbox: ``{"loan_id": ...}``). Not
    compliance's: the audit log is searched by subject instead, screening flags are about staff notes.
    Not the partner API's: its JSON holds configuration (key scopes, webhook event filters) and, for
    24 hours, the responses replayed for an idempotency key, which name no ``loan_id``."""
    skip = set(exclude)
    return [
        (m, f.name)
        for m in apps.get_models()
        if m not in skip and m is not Borrower and not _is_history(m) and not m._meta.proxy
        and m._meta.app_label not in ("compliance", "api")
        for f in m._meta.concrete_fields
        if isinstance(f, models.JSONField)
    ]  # fmt: skip


# --- values ----------------------------------------------------------------------------------------


def _iso(value: datetime) -> str:
    return (timezone.localtime(value) if timezone.is_aware(value) else value).isoformat()


def json_value(value):
    """A value as JSON: decimals as strings, dates and times as ISO 8601 (times with their offset)."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        return _iso(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, bytes | memoryview):
        return bytes(value).hex()
    return value


def csv_value(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True, default=json_value)
    return str(json_value(value))


def _columns(model) -> list[models.Field]:
    return [f for f in model._meta.concrete_fields if not f.name.endswith(SECRET_SUFFIXES)]


def _header(model) -> list[str]:
    names = [f.attname for f in _columns(model)]
    if model in (Borrower, Borrower.history.model) and "national_id" not in names:
        names.append("national_id")  # stored under another column (encrypted): read the attribute
    return names


def _row(obj, header: list[str]) -> dict:
    return {name: getattr(obj, name, None) for name in header}


# --- the export ------------------------------------------------------------------------------------


@dataclass
class ExportFile:
    name: str
    description: str
    rows: int


@dataclass
class BorrowerExport:
    content: bytes
    files: list[ExportFile]
    event: AuditEvent

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.files)


def _file_name(model, taken: set[str]) -> str:
    with translation.override("en"):
        base = slugify(str(model._meta.verbose_name_plural)).replace("-", "_")
    name = f"{base}.csv"
    if name in taken:
        name = f"{model._meta.app_label}_{base}.csv"
    taken.add(name)
    return name


class _Zip:
    def __init__(self, at: datetime):
        self.buffer = io.BytesIO()
        self.archive = zipfile.ZipFile(self.buffer, "w", compression=zipfile.ZIP_DEFLATED)
        self.stamp = timezone.localtime(at).timetuple()[:6]

    def add(self, name: str, text: str) -> None:
        info = zipfile.ZipInfo(name, date_time=self.stamp)
        info.compress_type = zipfile.ZIP_DEFLATED
        info.external_attr = 0o600 << 16
        self.archive.writestr(info, text.encode("utf-8"))

    def close(self) -> bytes:
        self.archive.close()
        return self.buffer.getvalue()


def _csv_writer() -> tuple[io.StringIO, csv.writer]:
    out = io.StringIO()
    out.write("\ufeff")  # byte-order mark: spreadsheet programs then read the file as UTF-8
    return out, csv.writer(out, lineterminator="\r\n")


def _csv(model, queryset) -> tuple[str, int, list]:
    header = _header(model)
    out, writer = _csv_writer()
    writer.writerow(header)
    pks = []
    for obj in queryset.order_by("pk").iterator(chunk_size=2000):
        row = _row(obj, header)
        writer.writerow([csv_value(row[name]) for name in header])
        pks.append(obj.pk)
    return out.getvalue(), len(pks), pks


def _audit_events_csv(subjects: dict[str, list]) -> tuple[str, int]:
    condition = Q()
    for subject_type, ids in subjects.items():
        if ids:
            condition |= Q(subject_type=subject_type, subject_id__in=[str(pk) for pk in ids])
    out, writer = _csv_writer()
    writer.writerow(AUDIT_COLUMNS)
    count = 0
    if condition:
        for values in AuditEvent.objects.filter(condition).order_by("id").values_list(*AUDIT_COLUMNS):
            writer.writerow([csv_value(v) for v in values])
            count += 1
    return out.getvalue(), count


def _require_reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise field_error("reason", _("Give a reason."))
    if len(reason) > REASON_MAX_LENGTH:
        raise field_error("reason", _("At most 300 characters."))
    return reason


def _document(borrower: Borrower, records: dict) -> tuple[dict, dict[str, int]]:
    """borrower.json: the borrower and the records that describe the person rather than the debt."""
    document = {"borrower": _json_row(borrower)}
    for model, key in JSON_SECTIONS.items():
        rows = model._base_manager.filter(rows_of(records[model], borrower.pk, records)).order_by("pk")
        document[key] = [_json_row(obj) for obj in rows]
    return document, {key: len(document[key]) for key in JSON_SECTIONS.values()}


def _json_row(obj) -> dict:
    return {name: json_value(value) for name, value in _row(obj, _header(type(obj))).items()}


@transaction.atomic
def borrower_export_run(*, borrower: Borrower, actor, reason: str) -> BorrowerExport:
    """Build the export and write its audit event (``data_subject_export``) in one transaction.

    Raises ``PermissionDenied`` without ``compliance.export_personal_data`` and ``ValidationError``
    naming ``reason`` when no reason is given. The audit event records the borrower, every file with
    its row count, the reason and the SHA-256 of the ZIP.
    """
    if actor is None or not actor.is_active or not actor.has_perm(EXPORT_PERMISSION):
        raise PermissionDenied(_("You are not allowed to do this."))
    reason = _require_reason(reason)
    borrower = Borrower.objects.get(pk=borrower.pk)
    as_of = timezone.now()
    language = borrower.preferred_language or settings.LANGUAGE_CODE
    records = {r.model: r for r in borrower_record_models()}
    files: list[ExportFile] = []
    texts: dict[str, str] = {}
    taken = {"README.txt", "borrower.json", "audit_events.csv"}

    def add(name: str, text: str, description, rows: int) -> None:
        with translation.override(language):
            files.append(ExportFile(name, str(description), rows))
        texts[name] = text

    def add_csv(model, queryset) -> list:
        text, count, pks = _csv(model, queryset)
        description = model._meta.verbose_name_plural
        if _is_history(model):
            description = format_lazy(
                gettext_lazy("{records}: earlier versions (field history)"),
                records=model.instance_type._meta.verbose_name_plural,
            )
        add(_file_name(model, taken), text, description, count)
        return pks

    document, sections = _document(borrower, records)
    add(
        "borrower.json",
        json.dumps(document, ensure_ascii=False, indent=2) + "\n",
        gettext_lazy("the borrower, contact points, flags, channel opt-outs and contact-rule overrides"),
        1 + sum(sections.values()),
    )
    # The audit log is searched by subject: the borrower and its records of level 1.
    subjects: dict[str, list] = {Borrower._meta.label_lower: [borrower.pk]}
    for model, key in JSON_SECTIONS.items():
        subjects[model._meta.label_lower] = [row["id"] for row in document[key]]
    loan_ids: list = []
    for record in records.values():
        if record.model in JSON_SECTIONS:
            continue
        queryset = record.model._base_manager.filter(rows_of(record, borrower.pk, records))
        pks = add_csv(record.model, queryset)
        if record.level == 1:
            subjects[record.model._meta.label_lower] = pks
        if record.model is Loan:
            loan_ids = pks
    for model, json_field in _json_linked_fields(exclude=records):
        queryset = model._base_manager.none()
        if loan_ids:
            queryset = model._base_manager.filter(**{f"{json_field}__loan_id__in": loan_ids})
        add_csv(model, queryset)
    history = Borrower.history.model
    add_csv(history, history.objects.filter(id=borrower.pk))
    history = ContactPoint.history.model
    add_csv(history, history.objects.filter(borrower_id=borrower.pk))
    text, count = _audit_events_csv(subjects)
    add("audit_events.csv", text, AuditEvent._meta.verbose_name_plural, count)

    archive = _Zip(as_of)
    archive.add("README.txt", _readme(borrower=borrower, actor=actor, reason=reason, as_of=as_of,
                                      files=files, language=language))  # fmt: skip
    for export_file in files:
        archive.add(export_file.name, texts[export_file.name])
    content = archive.close()
    event = audit_record(
        event_type=AuditEventType.DATA_SUBJECT_EXPORT,
        actor=actor,
        subject=borrower,
        details={
            "borrower_id": borrower.pk,
            "reason": reason,
            "as_of": as_of.isoformat(),
            "files": {f.name: f.rows for f in files},
            "borrower_json": sections,
            "sha256": hashlib.sha256(content).hexdigest(),
            "bytes": len(content),
        },
    )
    return BorrowerExport(content=content, files=files, event=event)


def borrower_export(*, borrower: Borrower, actor, reason: str) -> bytes:
    """Everything held on one borrower as a ZIP (bytes); audited. See ``borrower_export_run``."""
    return borrower_export_run(borrower=borrower, actor=actor, reason=reason).content


def _readme(*, borrower, actor, reason, as_of, files, language) -> str:
    with translation.override(language):
        lines = [
            _("Personal data held on borrower #%(id)s") % {"id": borrower.pk},
            "",
            _("As of: %(at)s") % {"at": _iso(as_of)},
            _("Exported by: %(user)s") % {"user": actor.get_username()},
            _("Reason: %(reason)s") % {"reason": reason},
            "",
            _("Files:"),
            *(
                "- "
                + ngettext(
                    "%(file)s: %(what)s, %(count)s record", "%(file)s: %(what)s, %(count)s records", f.rows
                )
                % {"file": f.name, "what": f.description, "count": f.rows}
                for f in files
            ),
            "",
            _(
                "Amounts are decimal numbers written as text; dates are YYYY-MM-DD; times are ISO 8601 "
                "with their offset from UTC. CSV files are UTF-8 with a byte-order mark, so that "
                "spreadsheet programs show Chinese correctly. Files named historical_* hold earlier "
                "versions of the records (field history); audit_events.csv lists what was done with "
                "the records, without the staff member's name."
            ),
        ]
    return "\r\n".join(lines) + "\r\n"


__all__ = [
    "BorrowerExport",
    "ExportFile",
    "RecordModel",
    "borrower_export",
    "borrower_export_run",
    "borrower_record_models",
    "paths_to_borrower",
    "rows_of",
]
