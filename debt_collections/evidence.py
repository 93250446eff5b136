"""The legal-referral evidence pack: what the lawyers and the court get, as one ZIP.

``evidence_pack_build`` returns the bytes; ``referrals.referral_approve`` stores them with their
SHA-256 on the referral. ``evidence_pack_download`` hands the stored file to a person who may have
it (``download_evidence_pack``), checks it is still the file that was approved (its hash), and
audits the download (``export``). The pack holds the borrower's national ID in clear (a court needs
it), which is why it is permission-controlled and every download is audited.

The ZIP is deterministic: entries in name order with a fixed time stamp (the business date), PDFs
built with ``invariant=True``, and the generation time in the manifest is the approval's time, so
the same referral gives the same bytes. Files:

* ``summary.pdf``: borrower, loan and contract terms, amounts, the case timeline, the referral;
* ``schedule.csv`` (every schedule version, superseded rows marked), ``payments.csv`` (reversals
  included), ``transitions.csv``, ``contacts.csv`` (every contact attempt on the borrower about
  this loan or no loan, with the compliance decision and the case contact's outcome and notes);
* ``notices/<id>-<channel>.pdf``: every notice sent on the loan, from its frozen text;
* ``attestation.pdf``: who approved and when, every contact-rule override on the borrower, every
  flagged note on the loan's case contacts (or "none");
* ``manifest.json``: each other file's SHA-256 and size, the referral, the generation time.

CSVs are UTF-8 with a byte-order mark (spreadsheet programs then show Chinese correctly).
Labels are in the site's default language (``LANGUAGE_CODE``), whoever approves.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile
from datetime import date, datetime
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Q, Sum
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from compliance.audit import audit_record
from compliance.models import AuditEventType, ContactAttempt, ContactOverride, ScreeningFlag
from debt_collections.models import (
    Case,
    CaseContact,
    CaseHold,
    LegalReferral,
    Notice,
    PromiseToPay,
    Restructuring,
    StageTransition,
)
from debt_collections.pdf import Section, letter_pdf, render_pdf
from loans.exceptions import field_error
from loans.models import Allocation, Installment, Payment

DOWNLOAD_PERMISSION = "debt_collections.download_evidence_pack"
SCREENING_SOURCE = "case_contact"


def sha256_hex(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return (
            timezone.localtime(value).isoformat(timespec="seconds")
            if timezone.is_aware(value)
            else value.isoformat()
        )
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    return str(value)


def _user(user) -> str:
    if user is None:
        return ""
    name = user.get_full_name() if hasattr(user, "get_full_name") else ""
    return f"{user.get_username()} ({name})" if name else user.get_username()


def _csv(header: list[str], rows) -> bytes:
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([_text(v) for v in row])
    return out.getvalue().encode("utf-8")


# --- the parts ---------------------------------------------------------------------------------------


def _schedule_csv(loan) -> bytes:
    components = ("principal", "interest", "fee", "penalty")
    header = ["schedule_version", "superseded", "number", "due_date"]
    header += [f"{c}_due" for c in components] + [f"{c}_paid" for c in components]
    header += ["penalty_carried", "penalty_waived"]
    rows = (
        [getattr(i, name) for name in header]
        for i in Installment.objects.filter(loan=loan).order_by("schedule_version", "number")
    )
    return _csv(header, rows)


def _payments_csv(loan) -> bytes:
    allocated = {
        row["payment_id"]: row
        for row in Allocation.objects.filter(payment__loan=loan)
        .values("payment_id")
        .annotate(p=Sum("principal"), i=Sum("interest"), f=Sum("fee"), n=Sum("penalty"))
    }
    header = [
        "id", "external_ref", "value_date", "received_at", "amount", "currency", "channel", "status",
        "reversed_at", "reversal_reason", "unapplied_amount", "allocated_principal", "allocated_interest",
        "allocated_fee", "allocated_penalty",
    ]  # fmt: skip
    rows = []
    for p in Payment.objects.filter(loan=loan).order_by("value_date", "id"):
        a = allocated.get(p.pk, {})
        rows.append(
            [
                p.pk,
                p.external_ref,
                p.value_date,
                p.received_at,
                p.amount,
                p.currency,
                p.channel,
                p.status,
                p.reversed_at,
                p.reversal_reason,
                p.unapplied_amount,
                a.get("p"),
                a.get("i"),
                a.get("f"),
                a.get("n"),
            ]  # fmt: skip
        )
    return _csv(header, rows)


def _transitions_csv(loan) -> bytes:
    header = [
        "id",
        "case",
        "at",
        "as_of",
        "from_stage",
        "to_stage",
        "close_reason",
        "by",
        "scan_chunk",
        "reason",
    ]
    rows = (
        [
            t.pk,
            t.case_id,
            t.at,
            t.as_of,
            t.from_stage,
            t.to_stage,
            t.close_reason,
            _user(t.actor) if t.actor_id else "scan",
            t.scan_chunk_id,
            t.reason,
        ]
        for t in StageTransition.objects.filter(case__loan=loan).select_related("actor").order_by("at", "id")
    )
    return _csv(header, rows)


def _attempts(loan):
    return (
        ContactAttempt.objects.filter(borrower_id=loan.borrower_id)
        .filter(Q(loan=loan) | Q(loan__isnull=True))
        .select_related("contact_point", "actor", "case_contact__second_staff")
        .order_by("at", "id")
    )


def _contacts_csv(loan) -> bytes:
    header = [
        "id", "at", "channel", "direction", "purpose", "contact_point_kind", "contact_point_label",
        "third_party", "connected", "answered", "right_party", "consented", "outcome", "by", "allowed",
        "reason_codes", "profile", "override_id", "case", "case_outcome", "case_notes", "second_staff",
        "recording_sha256",
    ]  # fmt: skip
    rows = []
    for a in _attempts(loan):
        decision = a.decision or {}
        point = a.contact_point
        try:
            contact = a.case_contact
        except CaseContact.DoesNotExist:
            contact = None
        rows.append(
            [
                a.pk,
                a.at,
                a.channel,
                a.direction,
                a.purpose,
                point.kind if point else "",
                point.label if point else "",
                point.is_third_party if point else "",
                a.connected,
                a.answered,
                a.right_party,
                a.consented,
                a.outcome,
                _user(a.actor),
                decision.get("allowed"),
                " ".join(decision.get("reasons") or []),
                decision.get("profile"),
                decision.get("override_id") or a.override_id,
                contact.case_id if contact else "",
                contact.outcome if contact else "",
                contact.notes if contact else "",
                _user(contact.second_staff) if contact else "",
                contact.recording_sha256 if contact else "",
            ]
        )
    return _csv(header, rows)


def _notices(loan) -> dict[str, bytes]:
    files = {}
    for notice in Notice.objects.filter(case__loan=loan, status=Notice.Status.SENT).order_by("id"):
        footer = _("Notice %(id)s, sent %(at)s") % {"id": notice.pk, "at": _text(notice.sent_at)}
        files[f"notices/{notice.pk}-{notice.channel}.pdf"] = letter_pdf(
            subject=notice.subject or notice.get_channel_display(), body=notice.body, footer=footer
        )
    return files


def _timeline(case: Case, referral: LegalReferral) -> list[tuple]:
    """(when, order, event, detail) for the case, oldest first."""
    events: list[tuple] = [(case.opened_on, 0, _("case opened"), case.get_stage_display())]
    for t in case.transitions.select_related("actor").order_by("at", "id"):
        who = _user(t.actor) if t.actor_id else _("scan")
        events.append(
            (t.at, 1, _("stage change"), f"{t.from_stage or '-'} -> {t.to_stage or '-'} ({who}): {t.reason}")
        )
    for h in CaseHold.objects.filter(case=case).order_by("set_at", "id"):
        until = f" -> {h.until}" if h.until else ""
        events.append((h.set_at, 2, _("hold set"), f"{h.get_reason_display()}{until} ({_user(h.set_by)})"))
        if h.released_at:
            events.append(
                (h.released_at, 2, _("hold released"), f"{h.get_reason_display()} ({_user(h.released_by)})")
            )
    for p in PromiseToPay.objects.filter(case=case).order_by("made_on", "id"):
        events.append((p.made_on, 3, _("promise to pay"), f"{_text(p.amount)} / {p.promised_date}"))
        if p.resolved_on:
            events.append(
                (p.resolved_on, 3, _("promise resolved"), f"{p.get_status_display()}: {_text(p.paid_amount)}")
            )
    for r in Restructuring.objects.filter(case=case).order_by("proposed_at", "id"):
        events.append(
            (
                r.proposed_at,
                4,
                _("restructuring proposed"),
                f"{r.get_kind_display()} ({_user(r.proposed_by)})",
            )
        )
        if r.decided_at:
            detail = f"{r.get_kind_display()}: {r.get_status_display()} ({_user(r.decided_by)})"
            events.append((r.decided_at, 4, _("restructuring decided"), detail))
    events.append(
        (
            referral.requested_at,
            5,
            _("legal referral requested"),
            f"{_user(referral.requested_by)}: {referral.reason}",
        )
    )
    if referral.decided_at:
        detail = f"{_user(referral.decided_by)}: {referral.decision_reason}"
        events.append((referral.decided_at, 5, _("legal referral approved"), detail))

    def key(event):
        when = event[0]
        if isinstance(when, datetime):
            return (
                timezone.localtime(when).date() if timezone.is_aware(when) else when.date(),
                _text(when),
                event[1],
            )
        return (when, "", event[1])

    return sorted(events, key=key)


def _summary_pdf(*, referral: LegalReferral, case: Case, as_of: date) -> bytes:
    loan = case.loan
    borrower, product = loan.borrower, loan.product
    currency = loan.currency
    total = loan.outstanding_principal + loan.overdue_interest + loan.overdue_fee + loan.overdue_penalty
    money = lambda value: f"{_text(value)} {currency}"  # noqa: E731
    sections = [
        Section(
            _("Borrower"),
            table=[
                [_("field"), _("value")],
                [_("name"), borrower.full_name],
                [_("national ID"), borrower.national_id],
                [_("date of birth"), _text(borrower.date_of_birth)],
                [_("region"), borrower.region],
                [_("borrower reference"), borrower.external_ref],
                [_("creditor"), loan.partner.name],
            ],
        ),
        Section(
            _("Loan and contract"),
            table=[
                [_("field"), _("value")],
                [_("loan reference"), loan.external_ref],
                [_("product"), f"{product.name} ({product.code})"],
                [_("principal"), money(loan.principal)],
                [_("yearly interest rate"), _text(loan.annual_rate)],
                [_("penalty yearly rate"), _text(product.penalty_rate)],
                [_("term (installments)"), str(loan.term)],
                [_("repayment"), f"{product.repayment_method}, {product.frequency}"],
                [_("disbursed on"), _text(loan.start_date)],
                [_("first due date"), _text(loan.first_due_date)],
                [_("currency"), currency],
                [_("current schedule version"), str(loan.schedule_version)],
                [_("limitation date"), _text(loan.limitation_date) or _("not set")],
            ],
        ),
        Section(
            _("Amounts on %(date)s") % {"date": as_of.isoformat()},
            table=[
                [_("item"), _("amount")],
                [_("days past due"), str(loan.days_past_due(as_of))],
                [_("overdue principal"), money(loan.overdue_principal)],
                [_("overdue interest"), money(loan.overdue_interest)],
                [_("overdue fees"), money(loan.overdue_fee)],
                [_("overdue penalty"), money(loan.overdue_penalty)],
                [_("overdue total"), money(loan.overdue_total)],
                [_("outstanding principal"), money(loan.outstanding_principal)],
                [_("total owed (outstanding principal, overdue interest, fees and penalty)"), money(total)],
            ],
        ),
        Section(
            _("Case timeline"),
            paragraphs=[_("Case %(id)s, opened %(date)s.") % {"id": case.pk, "date": case.opened_on}],
            table=[[_("when"), _("event"), _("detail")]]
            + [[_text(when), event, detail] for when, _order, event, detail in _timeline(case, referral)],
        ),
        Section(
            _("Legal referral"),
            table=[
                [_("field"), _("value")],
                [_("referral"), str(referral.pk)],
                [_("why"), referral.reason],
                [_("forbearance considered"), referral.forbearance_considered],
                [_("requested by"), _user(referral.requested_by)],
                [_("requested at"), _text(referral.requested_at)],
                [_("approved by"), _user(referral.decided_by)],
                [_("approved at"), _text(referral.decided_at)],
                [_("decision reason"), referral.decision_reason],
                [_("referred on"), _text(referral.referred_on)],
            ],
        ),
    ]
    return render_pdf(
        title=_("Legal referral evidence summary: loan %(ref)s") % {"ref": loan.external_ref},
        sections=sections,
        footer=_("Referral %(id)s") % {"id": referral.pk},
    )


def _attestation_pdf(*, referral: LegalReferral, case: Case) -> bytes:
    loan = case.loan
    overrides = ContactOverride.objects.filter(borrower_id=loan.borrower_id).select_related("granted_by")
    override_rows = [
        [
            o.pk,
            _text(o.granted_at),
            o.channel,
            " ".join(o.reasons or []),
            o.reason,
            _user(o.granted_by),
            _text(o.used_at),
        ]
        for o in overrides.order_by("granted_at", "id")
    ]
    contact_ids = [str(pk) for pk in CaseContact.objects.filter(case__loan=loan).values_list("pk", flat=True)]
    flags = ScreeningFlag.objects.filter(source=SCREENING_SOURCE, source_id__in=contact_ids).select_related(
        "reviewed_by"
    )
    flag_rows = [
        [
            f.pk,
            f.source_id,
            _text(f.created_at),
            f.excerpt,
            ", ".join(sorted({str(m.get("category", "")) for m in f.matches or []})),
            _user(f.reviewed_by),
            _text(f.reviewed_at),
            f.review_note,
        ]
        for f in flags.order_by("created_at", "id")
    ]
    none = [_("None.")]
    statement = _(
        "Legal referral %(id)s of case %(case)s (loan %(ref)s) was requested by %(requester)s on "
        "%(requested)s and approved by %(approver)s on %(approved)s, who is not the requester."
    ) % {
        "id": referral.pk,
        "case": case.pk,
        "ref": loan.external_ref,
        "requester": _user(referral.requested_by),
        "requested": _text(referral.requested_at),
        "approver": _user(referral.decided_by),
        "approved": _text(referral.decided_at),
    }
    sections = [
        Section(
            _("Approval"),
            paragraphs=[
                statement,
                _("Forbearance considered: %(text)s") % {"text": referral.forbearance_considered},
            ],
        ),
        Section(
            _("Contact-rule overrides on this borrower"),
            paragraphs=[] if override_rows else none,
            table=[
                [
                    _("id"),
                    _("granted at"),
                    _("channel"),
                    _("rules overridden"),
                    _("why"),
                    _("granted by"),
                    _("used at"),
                ]
            ]
            + override_rows
            if override_rows
            else (),
        ),
        Section(
            _("Flagged notes on this loan's case contacts"),
            paragraphs=[] if flag_rows else none,
            table=[
                [
                    _("id"),
                    _("case contact"),
                    _("flagged at"),
                    _("text"),
                    _("categories"),
                    _("reviewed by"),
                    _("reviewed at"),
                    _("review note"),
                ]
            ]
            + flag_rows
            if flag_rows
            else (),
        ),
    ]
    return render_pdf(
        title=_("Attestation: legal referral %(id)s") % {"id": referral.pk},
        sections=sections,
        footer=_("Referral %(id)s") % {"id": referral.pk},
    )


def _zip(files: dict[str, bytes], stamp: date) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=(stamp.year, stamp.month, stamp.day, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o600 << 16
            archive.writestr(info, files[name])
    return buffer.getvalue()


def evidence_pack_build(*, referral: LegalReferral, as_of: date) -> bytes:
    """The evidence pack of a referral being approved (its decision fields set), as ZIP bytes."""
    case = Case.objects.select_related("loan__borrower", "loan__product", "loan__partner").get(
        pk=referral.case_id
    )
    loan = case.loan
    generated_at = referral.decided_at or referral.requested_at
    with translation.override(settings.LANGUAGE_CODE):
        files = {
            "summary.pdf": _summary_pdf(referral=referral, case=case, as_of=as_of),
            "schedule.csv": _schedule_csv(loan),
            "payments.csv": _payments_csv(loan),
            "transitions.csv": _transitions_csv(loan),
            "contacts.csv": _contacts_csv(loan),
            "attestation.pdf": _attestation_pdf(referral=referral, case=case),
            **_notices(loan),
        }
    manifest = {
        "referral": {
            "id": referral.pk,
            "case": case.pk,
            "loan": loan.external_ref,
            "borrower": loan.borrower_id,
            "requested_by": referral.requested_by.get_username(),
            "requested_at": _text(referral.requested_at),
            "approved_by": referral.decided_by.get_username() if referral.decided_by_id else None,
            "approved_at": _text(referral.decided_at),
            "referred_on": _text(referral.referred_on),
        },
        "as_of": as_of.isoformat(),
        "generated_at": _text(generated_at),
        "files": [
            {"name": name, "sha256": sha256_hex(files[name]), "size": len(files[name])}
            for name in sorted(files)
        ],
    }
    files["manifest.json"] = json.dumps(manifest, ensure_ascii=False, indent=2, sort_keys=True).encode(
        "utf-8"
    )
    return _zip(files, as_of)


# --- the download ----------------------------------------------------------------------------------


@transaction.atomic
def evidence_pack_download(*, referral: LegalReferral, actor) -> bytes:
    """The stored pack, for someone with ``download_evidence_pack``; checks its hash and audits the
    download (``export``) in the same transaction."""
    if actor is None or not actor.is_active or not actor.has_perm(DOWNLOAD_PERMISSION):
        raise PermissionDenied(_("You are not allowed to download evidence packs."))
    referral = LegalReferral.objects.get(pk=referral.pk)
    if not referral.evidence_pack or not referral.evidence_sha256:
        raise field_error("referral", _("This referral has no evidence pack (it was never approved)."))
    try:
        with referral.evidence_pack.open("rb") as handle:
            content = handle.read()
    except OSError:
        raise field_error("referral", _("The evidence pack file is missing from storage.")) from None
    digest = sha256_hex(content)
    if digest != referral.evidence_sha256:
        raise field_error("referral", _("The stored evidence pack does not match its recorded hash."))
    audit_record(
        event_type=AuditEventType.EXPORT,
        actor=actor,
        subject=referral,
        details={
            "export": "evidence_pack",
            "referral": referral.pk,
            "case": referral.case_id,
            "sha256": digest,
            "size": len(content),
        },
    )
    return content
