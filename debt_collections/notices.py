"""Collection notices: versioned templates, and sending them.

**Templates** are Django template text with a fixed set of placeholders (``PLACEHOLDERS``), rendered by
a dedicated ``Engine`` with autoescaping off (every notice is plain text: SMS, a letter PDF, a
plain-text e-mail) and no tags but ``{% if %}`` and ``{% comment %}``. ``notice_template_save``
refuses (field errors, nothing written) a template that the language screening flags, that does not
parse, that uses an unknown placeholder or a tag outside those two, or that leaves out a required
placeholder (``required_placeholders``): a formal notice (a letter or e-mail at the notice,
restructuring or legal-referral stage) itemises the arrears and says how to pay and how to dispute;
every e-mail and SMS carries the opt-out line. Each change is a new version (the history keeps the
old ones) and a ``template_edit`` audit event.

**Sending** (``notice_send``) renders the case's figures into the borrower's language, checks the
contact rules by recording the contact attempt (``compliance.contact.contact_attempt_record``),
freezes the text, the figures and the template version on the notice, and delivers it through the
channel's backend (``debt_collections.channels``). The scan queues a stage's notices when a case
enters it (``queue_stage_notices``, called from ``scan.apply_plan``); ``notices_send_queued`` sends
what is queued (Celery beat, every 30 minutes, and ``manage.py send_notices``).

Delivery happens inside the sending transaction, last, so that a backend's failure can be written
on the notice (status failed, with the message) in the same transaction. A failed delivery keeps
its contact attempt: the contact was attempted, counts towards the contact limits, and the record
shows exactly what was tried; a person can queue a new notice after fixing the cause.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Q
from django.template import Context, Engine, TemplateSyntaxError
from django.template.base import FilterExpression, TextNode, Variable, VariableNode
from django.template.defaulttags import CommentNode, IfNode, TemplateLiteral
from django.utils import timezone
from django.utils.translation import gettext as _

from compliance.audit import audit_record
from compliance.contact import CHANNEL_KIND, ContactDenied, contact_attempt_record, profile_for
from compliance.models import AuditEventType, Direction, Purpose
from compliance.screening import template_text_validate
from debt_collections.channels import email_send, letter_backend, sms_backend
from debt_collections.models import (
    Case,
    CaseHold,
    Notice,
    NoticeChannel,
    NoticeLanguage,
    NoticeTemplate,
    StageChoices,
)
from debt_collections.pdf import letter_pdf
from debt_collections.permissions import require_perm as _require_perm
from loans.exceptions import field_error
from loans.models import ContactPoint
from loans.money import quantize

logger = logging.getLogger(__name__)

__all__ = [
    "PLACEHOLDERS",
    "notice_context",
    "notice_pdf",
    "notice_send",
    "notice_template_save",
    "notices_send_queued",
    "queue_stage_notices",
    "render_notice",
    "required_placeholders",
    "template_check",
]

# --- placeholders ----------------------------------------------------------------------------------

PLACEHOLDERS: dict[str, str] = {
    "borrower_name": "the borrower's full name",
    "creditor_name": "the creditor (the partner that owns the loan)",
    "creditor_contact": "the creditor's collections phone, e-mail and postal address",
    "loan_ref": "the loan's reference",
    "currency": "the loan's currency (ISO 4217)",
    "principal_overdue": "principal overdue",
    "interest_overdue": "interest overdue",
    "fees_overdue": "fees overdue",
    "penalty_overdue": "penalty interest overdue",
    "total_due": "the total overdue",
    "days_past_due": "days past due",
    "pay_by": "the deadline: the date of the notice plus COLLECTIONS_NOTICE_PAY_BY_DAYS",
    "notice_date": "the business date of the notice",
    "how_to_pay": "the creditor's payment instructions",
    "how_to_dispute": "how to dispute the debt, and the borrower's rights (by jurisdiction)",
    "opt_out": "how to stop messages on this channel",
    "plans_on_offer": "the repayment plans on offer (instalment plans, restructuring)",
}

FORMAL_STAGES = frozenset({StageChoices.NOTICE, StageChoices.RESTRUCTURING, StageChoices.LEGAL_REFERRAL})
FORMAL_CHANNELS = frozenset({NoticeChannel.LETTER, NoticeChannel.EMAIL})
BASE_REQUIRED = ("borrower_name", "creditor_name", "total_due", "pay_by", "creditor_contact")
FORMAL_REQUIRED = (
    "borrower_name", "creditor_name", "principal_overdue", "interest_overdue", "fees_overdue",
    "penalty_overdue", "total_due", "pay_by", "how_to_pay", "how_to_dispute", "creditor_contact",
)  # fmt: skip

# Channels whose notices carry the borrower's way out (Reg F 1006.6(e)).
OPT_OUT_CHANNELS = frozenset({NoticeChannel.SMS, NoticeChannel.EMAIL})

ALLOWED_NODES = (TextNode, VariableNode, IfNode, CommentNode)


def is_formal(*, stage: str, channel: str) -> bool:
    return stage in FORMAL_STAGES and channel in FORMAL_CHANNELS


def required_placeholders(*, stage: str, channel: str) -> tuple[str, ...]:
    required = FORMAL_REQUIRED if is_formal(stage=stage, channel=channel) else BASE_REQUIRED
    if channel in OPT_OUT_CHANNELS:
        required = (*required, "opt_out")
    return required


# --- texts kept in code, per language (notice content, not interface: it follows the borrower) -----

# How to dispute, and the borrower's rights, per jurisdiction profile (compliance.JurisdictionProfile
# code) and language. A borrower whose region has no profile gets the CN text (the default profile).
DISPUTE_TEXTS: dict[str, dict[str, str]] = {
    "cn": {
        "zh-hans": (
            "如您对欠款金额或本通知内容有异议，请在收到本通知之日起15日内通过上述联系方式提出，并提供相关"
            "证据；我们核实后会书面答复，核实期间暂停对有异议部分的催收。您有权查询账户明细和还款记录，"
            "有权要求我们依法保护您的个人信息，也可以向金融消费者权益保护部门投诉。"
        ),
        "en": (
            "If you disagree with the amount or anything in this notice, tell us within 15 days of receiving "
            "it, using the contact details above, and send us any evidence; we will check and reply in "
            "writing, and we pause collection of the disputed part while we do. You may ask for your "
            "account statement and repayment record, ask us to protect your personal information as the "
            "law requires, and complain to the financial consumer protection authority."
        ),
    },
    "us": {
        "zh-hans": (
            "除非您在收到本通知后30日内对该笔债务或其中任何部分提出异议，我们将视其为有效。如您在该期限内"
            "书面告知我们有异议，我们将暂停催收，直至向您寄送核实材料。您可以要求我们提供原债权人的名称和"
            "地址。更多权利说明请见 www.consumerfinance.gov/debt-collection 。"
        ),
        "en": (
            "Unless you dispute this debt, or any part of it, within 30 days after you receive this notice, "
            "we will assume it is valid. If you tell us in writing within that period that you dispute it, "
            "we will stop collection until we send you verification. You may ask for the name and address of "
            "the original creditor. Learn more about your rights at www.consumerfinance.gov/debt-collection."
        ),
    },
    "uk": {
        "zh-hans": (
            "如您对金额有异议，请与我们联系，我们会进行核查，核查期间不会就有异议的金额采取进一步行动。如您"
            "还款有困难，可通过 MoneyHelper（moneyhelper.org.uk）获得免费、中立的债务咨询。如对我们的投诉处理"
            "结果不满意，您可以将投诉提交金融申诉专员服务机构（Financial Ombudsman Service）。"
        ),
        "en": (
            "If you disagree with the amount, contact us and we will look into it; we will take no further "
            "action on the disputed amount while we do. If you are finding it hard to pay, free and "
            "impartial debt advice is available from MoneyHelper (moneyhelper.org.uk). If you are unhappy "
            "with how we handle a complaint, you can refer it to the Financial Ombudsman Service."
        ),
    },
}

OPT_OUT_TEXTS: dict[str, dict[str, str]] = {
    NoticeChannel.SMS: {"zh-hans": "回复TD退订", "en": "Reply STOP to opt out of texts."},
    NoticeChannel.EMAIL: {
        "zh-hans": "如不希望再收到此类电子邮件，请直接回复“退订”。",
        "en": "To stop these e-mails, reply with the word UNSUBSCRIBE.",
    },
    NoticeChannel.LETTER: {
        "zh-hans": "如不希望再收到信函，请通过上述联系方式告知我们。",
        "en": "If you would rather not receive letters, tell us using the contact details above.",
    },
}

PLANS_TEXTS: dict[str, str] = {
    "zh-hans": (
        "分期还款计划（将逾期金额分几个月还清）；债务重组（延长期限、暂缓还款、降低利率或减免罚息，须经审批）。"
    ),
    "en": (
        "an instalment plan (spread the arrears over several months) or a restructuring (a longer term, a "
        "payment holiday, a lower rate or a penalty waiver, subject to approval)."
    ),
}

CONTACT_LABELS: dict[str, tuple[str, str, str, str]] = {
    # phone, e-mail, post, separator
    "zh-hans": ("电话 ", "电子邮箱 ", "通信地址 ", "；"),
    "en": ("phone ", "e-mail ", "post ", "; "),
}

HOW_TO_PAY_FALLBACK: dict[str, str] = {
    "zh-hans": "请通过{creditor}的官方还款渠道还款，或联系我们获取还款账户信息。",
    "en": "Pay through {creditor}'s official repayment channels, or contact us for the payment details.",
}


def _money(amount) -> str:
    return f"{quantize(amount):,.2f}"


def _engine() -> Engine:
    # No loaders, no libraries: nothing outside the text itself can be pulled in.
    return Engine(autoescape=False, libraries={}, loaders=[], string_if_invalid="")


# --- checking a template ---------------------------------------------------------------------------


def _names_in(expression: FilterExpression) -> set[str]:
    names = set()
    var = expression.var
    if isinstance(var, Variable) and var.lookups:
        names.add(var.lookups[0])
    for _func, args in expression.filters:
        for is_lookup, arg in args:
            if is_lookup and isinstance(arg, Variable) and arg.lookups:
                names.add(arg.lookups[0])
    return names


def _names_in_condition(condition) -> set[str]:
    if condition is None:
        return set()
    if isinstance(condition, TemplateLiteral):
        return _names_in(condition.value)
    names = set()
    for side in ("first", "second"):
        part = getattr(condition, side, None)
        if part is not None:
            names |= _names_in_condition(part)
    return names


@dataclass
class _Scan:
    printed: set[str]
    referenced: set[str]
    bad_tags: list[str]


def _scan(nodelist, found: _Scan) -> _Scan:
    for node in nodelist:
        if not isinstance(node, ALLOWED_NODES):
            token = getattr(node, "token", None)
            found.bad_tags.append(token.contents.split()[0] if token is not None else type(node).__name__)
            continue
        if isinstance(node, VariableNode):
            names = _names_in(node.filter_expression)
            found.printed |= names
            found.referenced |= names
        elif isinstance(node, IfNode):
            for condition, branch in node.conditions_nodelists:
                found.referenced |= _names_in_condition(condition)
                _scan(branch, found)
    return found


def _parse(text: str, field: str, errors: dict) -> _Scan | None:
    try:
        template = _engine().from_string(text)
    except TemplateSyntaxError as exc:
        errors.setdefault(field, []).append(
            ValidationError(_("The template does not parse: %(error)s"), params={"error": exc}, code="syntax")
        )
        return None
    return _scan(template.nodelist, _Scan(set(), set(), []))


def template_check(*, stage: str, channel: str, language: str, subject: str, body: str) -> None:
    """Every check a template must pass; raises one ``ValidationError`` naming each bad field."""
    errors: dict[str, list] = {}
    if stage not in StageChoices.values:
        errors["stage"] = [_("Unknown stage.")]
    if channel not in NoticeChannel.values:
        errors["channel"] = [_("Unknown channel.")]
    if language not in NoticeLanguage.values:
        errors["language"] = [_("Unknown language.")]
    if errors:
        raise ValidationError(errors)
    if not body.strip():
        errors["body"] = [_("Write the text of the notice.")]
    if channel != NoticeChannel.SMS and not subject.strip():
        errors["subject"] = [_("A letter or e-mail needs a subject.")]
    for field, text in (("subject", subject), ("body", body)):
        try:
            template_text_validate(text, field=field)
        except ValidationError as exc:
            for name, messages in exc.error_dict.items():
                errors.setdefault(name, []).extend(messages)
    printed: set[str] = set()
    for field, text in (("subject", subject), ("body", body)):
        found = _parse(text, field, errors)
        if found is None:
            continue
        unknown = sorted(found.referenced - set(PLACEHOLDERS))
        if unknown:
            errors.setdefault(field, []).append(
                ValidationError(
                    _("Unknown placeholders: %(names)s."),
                    params={"names": ", ".join(unknown)},
                    code="unknown",
                )
            )
        if found.bad_tags:
            errors.setdefault(field, []).append(
                ValidationError(
                    _("Only {%% if %%} and {%% comment %%} tags may be used, not: %(tags)s."),
                    params={"tags": ", ".join(sorted(set(found.bad_tags)))},
                    code="tag",
                )
            )
        printed |= found.printed
    if "subject" not in errors and "body" not in errors:
        missing = [
            name for name in required_placeholders(stage=stage, channel=channel) if name not in printed
        ]
        if missing:
            errors["body"] = [
                ValidationError(
                    _("This notice must show: %(names)s."),
                    params={"names": ", ".join(f"{{{{ {name} }}}}" for name in missing)},
                    code="required",
                )
            ]
    if errors:
        raise ValidationError(errors)


# --- saving a template -----------------------------------------------------------------------------

TEMPLATE_FIELDS = ("stage", "channel", "language", "subject", "body", "is_active")


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@transaction.atomic
def notice_template_save(*, template: NoticeTemplate | None = None, actor, **fields) -> NoticeTemplate:
    """Create a template (``template=None``) or change one. Every change is a new version; a save
    that changes nothing writes nothing. Stage, channel and language are fixed once created."""
    unknown = set(fields) - set(TEMPLATE_FIELDS)
    if unknown:
        raise TypeError(f"notice_template_save() got unexpected fields: {', '.join(sorted(unknown))}")
    _require_perm(
        actor,
        "debt_collections.add_noticetemplate"
        if template is None
        else "debt_collections.change_noticetemplate",
    )
    if template is None:
        old_version = None
        template = NoticeTemplate(version=1)
        before = None
    else:
        template = NoticeTemplate.objects.select_for_update().get(pk=template.pk)
        old_version = template.version
        before = {name: getattr(template, name) for name in TEMPLATE_FIELDS}
        for name in ("stage", "channel", "language"):
            if name in fields and fields[name] != before[name]:
                raise field_error(name, _("This cannot change: add a new template instead."))
    for name, value in fields.items():
        if name in ("subject", "body"):
            value = (value or "").replace("\r\n", "\n").strip()
        setattr(template, name, value)
    if template.channel == NoticeChannel.SMS:
        template.subject = ""
    template_check(
        stage=template.stage, channel=template.channel, language=template.language,
        subject=template.subject, body=template.body,
    )  # fmt: skip
    clash = NoticeTemplate.objects.filter(
        stage=template.stage, channel=template.channel, language=template.language
    )
    if template.pk is not None:
        clash = clash.exclude(pk=template.pk)
    if clash.exists():
        raise field_error("stage", _("There is already a template for this stage, channel and language."))
    after = {name: getattr(template, name) for name in TEMPLATE_FIELDS}
    if before == after:
        return template
    if before is not None:
        template.version = old_version + 1
    template.updated_by = actor
    template._history_user = actor
    template._change_reason = f"version {template.version}"
    template.full_clean()
    template.save()
    audit_record(
        event_type=AuditEventType.TEMPLATE_EDIT,
        actor=actor,
        subject=template,
        details={
            "template": template.pk,
            "stage": template.stage,
            "channel": template.channel,
            "language": template.language,
            "old_version": old_version,
            "new_version": template.version,
            "is_active": template.is_active,
            "body_sha256": _sha256(template.body),
            "subject_sha256": _sha256(template.subject),
        },
    )
    return template


# --- rendering -------------------------------------------------------------------------------------


def _language(borrower) -> str:
    return borrower.preferred_language if borrower.preferred_language in NoticeLanguage.values else "zh-hans"


def _creditor_contact(partner, language: str) -> str:
    phone, email, post, sep = CONTACT_LABELS[language]
    parts = [
        label + value
        for label, value in (
            (phone, partner.collections_phone),
            (email, partner.collections_email),
            (post, partner.postal_address),
        )
        if value
    ]
    return sep.join(parts) or partner.name


def pay_by_date(as_of: date) -> date:
    return as_of + timedelta(days=settings.COLLECTIONS_NOTICE_PAY_BY_DAYS)


def notice_context(
    *, case: Case, language: str, channel: str, as_of: date, profile_code: str | None = None
) -> tuple[dict, dict]:
    """The placeholders' values for a case as of a date, and the figures to freeze (strings).
    ``profile_code``: the borrower's rule profile when the caller has it (the contact decision names
    it); looked up otherwise."""
    loan = case.loan
    borrower, partner = loan.borrower, loan.partner
    if profile_code is None:
        profile = profile_for(borrower.region)
        profile_code = profile.code if profile else "cn"
    dispute = DISPUTE_TEXTS.get(profile_code, DISPUTE_TEXTS["cn"])
    figures = {
        "as_of": as_of.isoformat(),
        "currency": loan.currency,
        "principal_overdue": str(quantize(loan.overdue_principal)),
        "interest_overdue": str(quantize(loan.overdue_interest)),
        "fees_overdue": str(quantize(loan.overdue_fee)),
        "penalty_overdue": str(quantize(loan.overdue_penalty)),
        "total_due": str(quantize(loan.overdue_total)),
        "days_past_due": str(loan.days_past_due(as_of)),
        "pay_by": pay_by_date(as_of).isoformat(),
    }
    context = {
        "borrower_name": borrower.full_name,
        "creditor_name": partner.name,
        "creditor_contact": _creditor_contact(partner, language),
        "loan_ref": loan.external_ref,
        "currency": loan.currency,
        "principal_overdue": _money(loan.overdue_principal),
        "interest_overdue": _money(loan.overdue_interest),
        "fees_overdue": _money(loan.overdue_fee),
        "penalty_overdue": _money(loan.overdue_penalty),
        "total_due": _money(loan.overdue_total),
        "days_past_due": figures["days_past_due"],
        "pay_by": figures["pay_by"],
        "notice_date": figures["as_of"],
        "how_to_pay": partner.payment_instructions.strip()
        or HOW_TO_PAY_FALLBACK[language].format(creditor=partner.name),
        "how_to_dispute": dispute[language],
        "opt_out": OPT_OUT_TEXTS[channel][language],
        "plans_on_offer": PLANS_TEXTS[language],
    }
    return context, figures


def sample_context(*, language: str, channel: str, as_of: date | None = None) -> dict:
    """Made-up values for previewing a template (no borrower's data on a configuration screen)."""
    as_of = as_of or timezone.localdate()
    zh = language == "zh-hans"
    return {
        "borrower_name": "张三" if zh else "Alex Sample",
        "creditor_name": "示例金融" if zh else "Sample Credit Ltd",
        "creditor_contact": "电话 400-000-0000；电子邮箱 collections@example.com"
        if zh
        else "phone 0800 000 0000; e-mail collections@example.com",
        "loan_ref": "L0000001",
        "currency": "CNY" if zh else "GBP",
        "principal_overdue": "1,000.00",
        "interest_overdue": "120.00",
        "fees_overdue": "30.00",
        "penalty_overdue": "15.50",
        "total_due": "1,165.50",
        "days_past_due": "35",
        "pay_by": pay_by_date(as_of).isoformat(),
        "notice_date": as_of.isoformat(),
        "how_to_pay": HOW_TO_PAY_FALLBACK[language].format(
            creditor="示例金融" if zh else "Sample Credit Ltd"
        ),
        "how_to_dispute": DISPUTE_TEXTS["cn" if zh else "uk"][language],
        "opt_out": OPT_OUT_TEXTS[channel][language],
        "plans_on_offer": PLANS_TEXTS[language],
    }


def _tidy(text: str) -> str:
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    out: list[str] = []
    for line in lines:
        if not line and out and not out[-1]:
            continue  # an {% if %} left out: no run of blank lines
        out.append(line)
    return "\n".join(out).strip()


def render_notice(*, subject: str, body: str, context: dict) -> tuple[str, str]:
    engine = _engine()
    rendered_subject = (
        engine.from_string(subject).render(Context(context, autoescape=False)) if subject else ""
    )
    rendered_body = engine.from_string(body).render(Context(context, autoescape=False))
    return " ".join(rendered_subject.split()), _tidy(rendered_body)


def notice_pdf(notice: Notice) -> bytes:
    """The letter as sent: its frozen subject and body (the evidence pack re-renders it the same way)."""
    return letter_pdf(subject=notice.subject, body=notice.body)


# --- sending ---------------------------------------------------------------------------------------

# Case holds that stop notices (the contact rules see borrower flags; these are the case's own).
NOTICE_HOLDS = (
    CaseHold.Reason.DISPUTE,
    CaseHold.Reason.BANKRUPTCY,
    CaseHold.Reason.DECEASED,
    CaseHold.Reason.LEGAL_REPRESENTATION,
)


def _contact_point(borrower, channel: str) -> ContactPoint | None:
    """The borrower's own point for the channel: valid, never a third party's; one not opted out
    first, then the primary one. An opted-out point is still returned when it is the only one, so
    the contact rules refuse it with their reason (``channel_opt_out``)."""
    points = borrower.contact_points.filter(
        kind=CHANNEL_KIND[channel], is_third_party=False, is_valid=True
    ).order_by("opted_out", "-is_primary", "id")
    if channel == NoticeChannel.SMS:
        points = points.filter(label=ContactPoint.Label.MOBILE)
    return points.first()


def _template_for(*, stage: str, channel: str, language: str) -> NoticeTemplate | None:
    found = NoticeTemplate.objects.filter(stage=stage, channel=channel, is_active=True)
    return found.filter(language=language).first() or found.filter(language="zh-hans").first()


def _active_hold(case: Case, as_of: date) -> bool:
    return (
        case.holds.filter(released_at__isnull=True, reason__in=NOTICE_HOLDS).exclude(until__lt=as_of).exists()
    )


def _deliver(notice: Notice, point: ContactPoint) -> str:
    partner = notice.case.loan.partner
    if notice.channel == NoticeChannel.SMS:
        return sms_backend().send(to=point.value, text=notice.body)
    if notice.channel == NoticeChannel.EMAIL:
        attachments = ()
        if is_formal(stage=notice.stage, channel=notice.channel):
            attachments = ((f"notice-{notice.pk}.pdf", notice_pdf(notice), "application/pdf"),)
        return email_send(
            to=point.value, subject=notice.subject, body=notice.body,
            reply_to=partner.collections_email, attachments=attachments,
        )  # fmt: skip
    return letter_backend().send(address=point.value, pdf=notice_pdf(notice), reference=f"notice-{notice.pk}")


def _close(notice: Notice, status: str, *, codes=(), failure: str = "", not_before=None) -> Notice:
    notice.status = status
    notice.reason_codes = list(codes)
    notice.failure = failure[:500]
    notice.not_before = not_before
    notice.save(update_fields=["status", "reason_codes", "failure", "not_before"])
    return notice


@transaction.atomic
def notice_send(
    *,
    notice: Notice | None = None,
    case: Case | None = None,
    channel: str | None = None,
    actor=None,
    at: datetime | None = None,
    as_of: date | None = None,
) -> Notice:
    """Send a queued notice (``notice``), or queue and send one now for a case and channel (a person:
    ``case``, ``channel``, ``actor`` with ``debt_collections.add_notice``).

    A person's send is refused whole (``ValidationError`` naming the field, ``ContactDenied`` from the
    contact rules; nothing written). A queued notice that the rules deny stays queued when the bar
    lifts by itself (quiet hours: ``decision.next_allowed_at``) and is marked refused, with the
    reason codes, when it does not. A backend error marks it failed (see the module's docstring)."""
    at = at or timezone.now()
    if timezone.is_naive(at):
        raise field_error("at", _("The time must be a datetime with a time zone."))
    as_of = as_of or timezone.localdate(at)
    by_person = notice is None
    if by_person:
        _require_perm(actor, "debt_collections.add_notice")
        if case is None:
            raise field_error("case", _("Choose a case."))
        if channel not in NoticeChannel.values:
            raise field_error("channel", _("Unknown channel."))
        case = (
            Case.objects.select_for_update().select_related("loan__borrower", "loan__partner").get(pk=case.pk)
        )
        if not case.is_open:
            raise field_error("case", _("The case is closed."))
        notice = Notice(case=case, stage=case.stage, channel=channel, queued_on=as_of, created_by=actor)
    else:
        if case is not None or channel is not None:
            raise TypeError("notice_send(): give a queued notice, or a case and a channel, not both")
        if actor is not None:
            _require_perm(actor, "debt_collections.add_notice")
        notice = (
            Notice.objects.select_for_update(of=("self",))
            .select_related("case__loan__borrower", "case__loan__partner")
            .get(pk=notice.pk)
        )
        if notice.status != Notice.Status.QUEUED:
            raise field_error("notice", _("Only a queued notice can be sent."))
        case = notice.case
        if not case.is_open:
            return _close(notice, Notice.Status.REFUSED, codes=["case_closed"])
    loan = case.loan
    borrower = loan.borrower

    if _active_hold(case, as_of):
        if by_person:
            raise field_error("case", _("The case is on hold: no notices go out."))
        return _close(notice, Notice.Status.REFUSED, codes=["case_hold"])
    language = _language(borrower)
    template = _template_for(stage=notice.stage, channel=notice.channel, language=language)
    if template is None:
        if by_person:
            raise field_error("channel", _("There is no active template for this stage and channel."))
        return _close(notice, Notice.Status.FAILED, failure="no active template for this stage and channel")
    point = _contact_point(borrower, notice.channel)
    if point is None:
        if by_person:
            raise field_error("channel", _("The borrower has no usable contact point for this channel."))
        return _close(notice, Notice.Status.REFUSED, codes=["no_contact_point"])

    try:
        attempt = contact_attempt_record(
            borrower=borrower,
            channel=notice.channel,
            at=at,
            direction=Direction.OUTBOUND,
            contact_point=point,
            purpose=Purpose.LEGAL if notice.stage == StageChoices.LEGAL_REFERRAL else Purpose.COLLECTION,
            loan=loan,
            outcome="notice",
            actor=actor,
        )
    except ContactDenied as exc:
        if by_person:
            raise
        decision = exc.decision
        if decision.next_allowed_at is not None:  # lifts by itself: not tried again before then
            return _close(
                notice, Notice.Status.QUEUED, codes=decision.reasons, not_before=decision.next_allowed_at
            )
        return _close(notice, Notice.Status.REFUSED, codes=decision.reasons)

    context, figures = notice_context(
        case=case,
        language=template.language,
        channel=notice.channel,
        as_of=as_of,
        profile_code=attempt.decision.get("profile"),  # the rules just chose it
    )
    notice.subject, notice.body = render_notice(subject=template.subject, body=template.body, context=context)
    notice.subject = notice.subject[:300]
    notice.figures = figures
    notice.template, notice.template_version, notice.language = template, template.version, template.language
    notice.contact_point, notice.attempt = point, attempt
    notice.reason_codes, notice.failure, notice.not_before = [], "", None
    notice.save()
    try:
        ref = _deliver(notice, point)
    except Exception as exc:  # noqa: BLE001 - whatever the backend raised, the delivery failed
        logger.warning("notice %s: delivery failed: %s", notice.pk, exc)
        return _close(notice, Notice.Status.FAILED, failure=str(exc) or type(exc).__name__)
    notice.status, notice.sent_at, notice.provider_ref = Notice.Status.SENT, at, str(ref or "")[:200]
    notice.save(update_fields=["status", "sent_at", "provider_ref"])
    return notice


def queued_notice_ids(*, as_of: date, at: datetime, limit: int | None = None) -> list[int]:
    """The queued notices due by ``as_of`` that may be tried at ``at``, oldest first."""
    ids = (
        Notice.objects.filter(status=Notice.Status.QUEUED, queued_on__lte=as_of)
        .filter(Q(not_before__isnull=True) | Q(not_before__lte=at))
        .order_by("queued_on", "id")
        .values_list("id", flat=True)
    )
    return list(ids[:limit] if limit else ids)


def notices_send_ids(ids, *, as_of: date, at: datetime) -> dict:
    """Send these queued notices, each in its own transaction. Counts: sent, waiting (still queued:
    quiet hours), refused, failed. A notice another worker took meanwhile is skipped."""
    counts = {"sent": 0, "waiting": 0, "refused": 0, "failed": 0}
    for notice_id in ids:
        try:
            notice = notice_send(notice=Notice(pk=notice_id), at=at, as_of=as_of)
        except ValidationError:
            continue  # sent or refused by another worker meanwhile
        status = notice.status
        counts["waiting" if status == Notice.Status.QUEUED else status] += 1
    return counts


def send_arguments(*, as_of, limit, at) -> tuple[date, datetime]:
    if as_of is not None and not isinstance(as_of, date):
        raise field_error("as_of", _("Give a date."))
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise field_error("limit", _("The limit must be a whole number of at least 1."))
    at = at or timezone.now()
    return as_of or timezone.localdate(at), at


def notices_send_queued(
    *, as_of: date | None = None, limit: int | None = None, at: datetime | None = None
) -> dict:
    """Send every queued notice due by ``as_of`` (oldest first, at most ``limit``) in this process.
    Returns counts: sent, waiting (still queued: quiet hours), refused, failed."""
    as_of, at = send_arguments(as_of=as_of, limit=limit, at=at)
    return notices_send_ids(queued_notice_ids(as_of=as_of, at=at, limit=limit), as_of=as_of, at=at)


# --- the scan's part -------------------------------------------------------------------------------


def stage_channels() -> dict[str, list[str]]:
    return {stage: list(channels) for stage, channels in settings.COLLECTIONS_STAGE_NOTICE_CHANNELS.items()}


def queue_stage_notices(cursor, *, d: dict, as_of: date, now: datetime) -> int:
    """Queue the notices of the stage each case of ``scan_plan`` enters (opened or escalated), one
    per channel the stage sends: one INSERT ... SELECT. A rerun queues nothing new (the partial
    unique index on case, stage, channel and date for notices without a person)."""
    from debt_collections.scan import PLAN_TABLE

    pairs = [(stage, channel) for stage, channels in stage_channels().items() for channel in channels]
    if not pairs:
        return 0
    params: dict = {"as_of": as_of.isoformat(), "now": now}
    rows = []
    for i, (stage, channel) in enumerate(pairs):
        params[f"stage{i}"], params[f"channel{i}"] = stage, channel
        rows.append(f"SELECT %(stage{i})s AS stage, %(channel{i})s AS channel")
    table = connection.ops.quote_name(Notice._meta.db_table)
    cursor.execute(
        f"""INSERT INTO {table} (case_id, stage, channel, status, queued_on, template_id, template_version,
            language, contact_point_id, subject, body, figures, attempt_id, sent_at, reason_codes, failure,
            provider_ref, created_by_id, created_at)
        SELECT p.case_id, p.new_stage, ch.channel, 'queued', {d["as_of"]}, NULL, NULL,
            '', NULL, '', '', '{{}}', NULL, NULL, '[]', '', '', NULL, %(now)s
        FROM {PLAN_TABLE} AS p
        JOIN ({" UNION ALL ".join(rows)}) AS ch ON ch.stage = p.new_stage
        WHERE p.action IN ('open', 'up') AND p.case_id IS NOT NULL
        ON CONFLICT DO NOTHING""",  # noqa: S608 - names from the code, values as parameters
        params,
    )
    return max(cursor.rowcount, 0)
