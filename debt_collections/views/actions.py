"""The actions on a case page: log a contact (the contact rules' decision is shown before it is
submitted), record a promise to pay, send a notice (previewed first), propose a restructuring (the
schedule as it stands beside the one proposed) and request a legal referral.

Each action is a GET that renders its form and a POST that acts through its service; an htmx request
gets the form as a partial for the case page's action area, any other the same form on a page of its
own. Every view checks the user's permission first (403), then looks the case up among those the user
may see (404: whether it exists is not told), and refuses a closed case (409). A refusal by a service
(its ``ValidationError``) comes back as form errors with nothing written (422 for htmx, the page again
otherwise); success sends the browser back to the case page with a message (``HX-Redirect`` for htmx).
Previews and the contact check write nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from functools import wraps
from itertools import zip_longest
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods
from django_htmx.http import HttpResponseClientRedirect

from compliance.contact import NOT_OVERRIDABLE, ContactDecision, ContactDenied, check_contact
from compliance.models import Channel, ContactOverride, Direction, LexiconTerm, Purpose, ScreeningFlag
from compliance.overrides import reason_label
from compliance.screening import screen_text
from debt_collections import contacts, notices, referrals, restructuring, services
from debt_collections.forms import (
    INSTALMENT_PREFIX,
    ContactForm,
    InstalmentForm,
    NoticeForm,
    PromiseForm,
    ReferralForm,
    RestructuringForm,
    add_service_errors,
    contact_point_label,
)
from debt_collections.models import (
    Case,
    LegalReferral,
    Notice,
    NoticeChannel,
    NoticeTemplate,
    PromiseToPay,
    Restructuring,
    StageChoices,
)
from debt_collections.services import PROMISE_MAX_INSTALMENTS
from debt_collections.visibility import case_for, require_any

PERM_CONTACT = "debt_collections.add_casecontact"
PERM_PROMISE = "debt_collections.add_promisetopay"
PERM_NOTICE = "debt_collections.add_notice"
PERM_RESTRUCTURING = "debt_collections.add_restructuring"
PERM_REFERRAL = "debt_collections.add_legalreferral"
PERM_OVERRIDE_REQUEST = "compliance.add_overriderequest"

TEMPLATES = "debt_collections/actions/"
PAGE = TEMPLATES + "page.html"
SCREENING_SOURCE = "case_contact"  # what contacts.contact_log screens a note under

TITLES = {
    "contact": gettext_lazy("Log a contact"),
    "promise": gettext_lazy("Record a promise to pay"),
    "notice": gettext_lazy("Send a notice"),
    "restructuring": gettext_lazy("Propose a restructuring"),
    "referral": gettext_lazy("Request a legal referral"),
}


# --- plumbing ------------------------------------------------------------------------------------------


def _cases():
    return Case.objects.select_related("loan__borrower", "loan__partner", "loan__product", "team")


def case_action(*perms: str, methods=("GET", "POST")):
    """The checks every action makes, in this order: signed in (else the login page), one of
    ``perms`` (403), the case visible to the user (404), the case open (409)."""

    def decorate(view):
        @login_required
        @require_http_methods(list(methods))
        @wraps(view)
        def wrapper(request, pk):
            require_any(request.user, *perms)
            case = case_for(request.user, pk, _cases())
            if not case.is_open:
                return _page(request, case, "closed.html", "", {}, status=409)
            return view(request, case)

        return wrapper

    return decorate


def _is_partial(request) -> bool:
    return bool(request.htmx) and not request.htmx.boosted


def _page(request, case, partial: str, action: str, context: dict, *, status: int = 200):
    """The action's partial for htmx; the same partial on a page of its own otherwise."""
    context = {"case": case, "action": action, "title": TITLES.get(action, ""), **context}
    if _is_partial(request):
        return render(request, TEMPLATES + partial, context, status=status)
    return render(request, PAGE, {**context, "partial": TEMPLATES + partial}, status=status)


def _refused(request) -> int:
    """The status of a form shown again with its errors: htmx swaps a 422 in (the action area's
    ``hx-on``); a plain browser gets the page."""
    return 422 if _is_partial(request) else 200


def _done(request, case, message: str, level: int = messages.SUCCESS):
    messages.add_message(request, level, message)
    url = reverse("work:case", args=[case.pk])
    return HttpResponseClientRedirect(url) if _is_partial(request) else redirect(url)


def _zone(name: str):
    try:
        return ZoneInfo(name) if name else None
    except (ZoneInfoNotFoundError, ValueError):
        return None


# --- the contact rules' decision, for the form -----------------------------------------------------------


def reason_rows(decision: ContactDecision) -> list[dict]:
    """Each reason the rules gave: its code, what it means, the rule's citation, when it lifts."""
    return [
        {"code": r.code, "message": reason_label(r.code), "citation": r.citation, "lifts_at": r.lifts_at}
        for r in decision.details
    ]


@dataclass
class ContactCheck:
    """What the contact rules say about the contact as the form stands, for the decision box."""

    at: datetime
    decision: ContactDecision | None = None
    problems: list[str] = field(default_factory=list)  # the form's own errors on what is checked
    reasons: list[dict] = field(default_factory=list)
    override: ContactOverride | None = None
    outbound: bool = True
    borrower_zone: ZoneInfo | None = None
    screening: list = field(default_factory=list)

    @property
    def allowed(self) -> bool:
        return not self.problems and self.decision is not None and self.decision.allowed

    @property
    def blocked(self) -> bool:
        """Would the service refuse it? Only an outbound contact is refused, and not when a
        supervisor's unused override covers every reason."""
        if self.problems or self.decision is None:
            return True
        return self.outbound and not self.decision.allowed and self.override is None

    @property
    def overridable(self) -> bool:
        """May a supervisor lift every bar? (The law's bars no one may.)"""
        return (
            bool(self.decision and self.decision.reasons) and not set(self.decision.reasons) & NOT_OVERRIDABLE
        )

    @property
    def fixed_reasons(self) -> list[str]:
        if self.decision is None:
            return []
        return [reason_label(code) for code in self.decision.reasons if code in NOT_OVERRIDABLE]


def _usable_override(*, borrower, channel, contact_point, codes, at) -> ContactOverride | None:
    """The supervisor's override the service would use for this contact (read only: the service
    takes it under lock when the contact is logged)."""
    candidates = ContactOverride.objects.filter(
        borrower=borrower, channel=channel, used_at__isnull=True, granted_at__lte=at, valid_until__gt=at
    ).filter(Q(contact_point=contact_point) | Q(contact_point__isnull=True))
    for override in candidates.order_by("granted_at"):
        if set(codes) <= set(override.reasons):
            return override
    return None


CHECKED_FIELDS = ("channel", "direction", "purpose", "contact_point", "occurred_at")


def contact_check(form: ContactForm, case: Case) -> ContactCheck:
    """The rules' decision on the contact the form describes (as ``contacts.contact_log`` will ask
    it: two staff and a recording for a visit), and what the note screening finds. Writes nothing."""
    if form.is_bound:
        form.is_valid()  # the outcome may not be chosen yet: only the checked fields matter here
        values = form.cleaned_data
    else:
        values = {"contact_point": form.initial_contact_point}
    at = values.get("occurred_at") or timezone.now()
    loan = case.loan
    borrower = loan.borrower
    check = ContactCheck(at=at, borrower_zone=_zone(borrower.time_zone))
    if form.is_bound:
        check.problems = [message for name in CHECKED_FIELDS for message in form.errors.get(name, [])]
        notes = values.get("notes") or ""
        check.screening = screen_text(notes) if notes.strip() else []
    if check.problems:
        return check
    channel = values.get("channel") or form.fields["channel"].initial
    direction = values.get("direction") or Direction.OUTBOUND
    point = values.get("contact_point")
    is_visit = channel == Channel.VISIT
    try:
        decision = check_contact(
            borrower=borrower,
            channel=channel,
            at=at,
            contact_point=point,
            purpose=values.get("purpose") or Purpose.COLLECTION,
            direction=direction,
            loan=loan,
            staff_count=2 if is_visit else 1,
            recording=is_visit,
        )
    except ValidationError as exc:
        check.problems = exc.messages
        return check
    check.decision = decision
    check.outbound = direction == Direction.OUTBOUND
    check.reasons = reason_rows(decision)
    if not decision.allowed and check.outbound:
        check.override = _usable_override(
            borrower=borrower, channel=channel, contact_point=point, codes=decision.reasons, at=at
        )
    return check


def _contact_page(request, case, form: ContactForm, *, check: ContactCheck | None = None, status=200):
    check = check or contact_check(form, case)
    context = {
        "form": form,
        "promise": form.promise,
        "check": check,
        "can_request_override": request.user.has_perm(PERM_OVERRIDE_REQUEST),
        "max_instalments": PROMISE_MAX_INSTALMENTS,
    }
    return _page(request, case, "contact.html", "contact", context, status=status)


def _screening_summary(flag: ScreeningFlag) -> str:
    """What the screening found in a note, as it stored it: each category and the words, once."""
    labels = dict(LexiconTerm.Category.choices)
    found = (f"{labels.get(m['category'], m['category'])} “{m['text']}”" for m in flag.matches)
    return "; ".join(dict.fromkeys(found))


@case_action(PERM_CONTACT)
def contact(request, case):
    """Log a contact (``contacts.contact_log``). A refusal by the contact rules shows their reasons
    and the override request; nothing is written."""
    if request.method == "GET":
        return _contact_page(request, case, ContactForm(case=case, actor=request.user))
    form = ContactForm(request.POST, request.FILES, case=case, actor=request.user)
    if form.is_valid():
        try:
            logged = contacts.contact_log(case=case, actor=request.user, **form.service_kwargs())
        except ContactDenied:
            form.add_error(None, _("The contact rules refuse this contact: nothing was logged."))
            check = contact_check(form, case)
            return _contact_page(request, case, form, check=check, status=_refused(request))
        except ValidationError as exc:
            form.add_service_errors(exc)
        else:
            flag = ScreeningFlag.objects.filter(source=SCREENING_SOURCE, source_id=str(logged.pk)).first()
            if flag is not None:
                messages.warning(
                    request,
                    _("The note was flagged for compliance review: %(matches)s.")
                    % {"matches": _screening_summary(flag)},
                )
            return _done(
                request,
                case,
                _("Contact logged: %(outcome)s.") % {"outcome": logged.get_outcome_display()},
            )
    return _contact_page(request, case, form, status=_refused(request))


@case_action(PERM_CONTACT, methods=("POST",))
def contact_check_view(request, case):
    """The decision box for the contact form as it stands (htmx, on every change). Writes nothing."""
    form = ContactForm(request.POST, case=case, actor=request.user)
    context = {
        "case": case,
        "form": form,
        "check": contact_check(form, case),
        "can_request_override": request.user.has_perm(PERM_OVERRIDE_REQUEST),
    }
    if not _is_partial(request):
        return _contact_page(request, case, form, check=context["check"])
    return render(request, TEMPLATES + "contact_decision.html", context)


# --- promises --------------------------------------------------------------------------------------------


def _open_promise(case) -> PromiseToPay | None:
    return (
        PromiseToPay.objects.filter(case=case, status=PromiseToPay.Status.OPEN)
        .prefetch_related("instalments")
        .first()
    )


def _promise_page(request, case, form: PromiseForm, *, status=200):
    context = {
        "promise": form,
        "open_promise": _open_promise(case),
        "max_instalments": PROMISE_MAX_INSTALMENTS,
    }
    return _page(request, case, "promise.html", "promise", context, status=status)


@case_action(PERM_PROMISE)
def promise(request, case):
    """Record a promise to pay (``services.promise_record``): one amount by a date, or instalments."""
    if request.method == "GET":
        return _promise_page(request, case, PromiseForm())
    form = PromiseForm(request.POST)
    if form.is_valid():
        try:
            recorded = services.promise_record(case=case, actor=request.user, **form.service_kwargs())
        except ValidationError as exc:
            form.add_service_errors(exc)
        else:
            return _done(
                request,
                case,
                _("Promise to pay recorded: %(count)s instalment(s), the last due %(date)s.")
                % {
                    "count": len(form.rows()),
                    "date": date_format(recorded.promised_date, "SHORT_DATE_FORMAT"),
                },
            )
    return _promise_page(request, case, form, status=_refused(request))


@case_action(PERM_PROMISE, PERM_CONTACT, methods=("GET",))
def promise_row(request, case):
    """One more instalment row for the promise form ("Add instalment"), with the formset's new count."""
    try:
        index = int(request.GET.get(f"{INSTALMENT_PREFIX}-TOTAL_FORMS", "1"))
    except ValueError:
        index = 1
    index = max(index, 0)
    context = {
        "case": case,
        "row": InstalmentForm(prefix=f"{INSTALMENT_PREFIX}-{index}")
        if index < PROMISE_MAX_INSTALMENTS
        else None,
        "total": min(index + 1, PROMISE_MAX_INSTALMENTS),
        "prefix": INSTALMENT_PREFIX,
        "can_add": index + 1 < PROMISE_MAX_INSTALMENTS,
    }
    return render(request, TEMPLATES + "promise_row.html", context)


# --- notices ---------------------------------------------------------------------------------------------


def notice_channels(case) -> list[tuple[str, str]]:
    """The channels the case's stage has an active template for, in the usual order."""
    available = set(
        NoticeTemplate.objects.filter(stage=case.stage, is_active=True).values_list("channel", flat=True)
    )
    return [(value, label) for value, label in NoticeChannel.choices if value in available]


@dataclass
class NoticePreview:
    channel: str
    at: datetime
    subject: str = ""
    body: str = ""
    language: str = ""
    template: NoticeTemplate | None = None
    recipient: str = ""
    refusals: list[str] = field(default_factory=list)
    decision: ContactDecision | None = None
    reasons: list[dict] = field(default_factory=list)

    @property
    def sendable(self) -> bool:
        return not self.refusals and (self.decision is None or self.decision.allowed)


def notice_preview(case: Case, channel: str, at: datetime) -> NoticePreview:
    """The notice ``notices.notice_send`` would send now, rendered for the case as it stands, and
    each reason it would refuse. Writes nothing. (The same steps as the service, read only.)"""
    as_of = timezone.localdate(at)
    loan = case.loan
    borrower = loan.borrower
    preview = NoticePreview(channel=channel, at=at)
    if notices._active_hold(case, as_of):
        preview.refusals.append(_("The case is on hold: no notices go out."))
    template = notices._template_for(stage=case.stage, channel=channel, language=notices._language(borrower))
    if template is None:
        preview.refusals.append(_("There is no active template for this stage and channel."))
    point = notices._contact_point(borrower, channel)
    if point is None:
        preview.refusals.append(_("The borrower has no usable contact point for this channel."))
    else:
        preview.recipient = contact_point_label(point)
        preview.decision = check_contact(
            borrower=borrower,
            channel=channel,
            at=at,
            contact_point=point,
            purpose=Purpose.LEGAL if case.stage == StageChoices.LEGAL_REFERRAL else Purpose.COLLECTION,
            loan=loan,
        )
        preview.reasons = reason_rows(preview.decision)
    if template is not None:
        context, _figures = notices.notice_context(
            case=case,
            language=template.language,
            channel=channel,
            as_of=as_of,
            profile_code=preview.decision.profile if preview.decision else None,
        )
        preview.subject, preview.body = notices.render_notice(
            subject=template.subject, body=template.body, context=context
        )
        preview.template, preview.language = template, template.get_language_display()
    return preview


def _notice_page(request, case, form: NoticeForm, *, preview=None, status=200):
    context = {"form": form, "preview": preview}
    return _page(request, case, "notice.html", "notice", context, status=status)


@case_action(PERM_NOTICE)
def notice(request, case):
    """Send a notice now (``notices.notice_send``), after its preview."""
    channels = notice_channels(case)
    if request.method == "GET":  # the first channel's preview straight away: preview first, then send
        form = NoticeForm(channels=channels)
        preview = notice_preview(case, channels[0][0], timezone.now()) if channels else None
        return _notice_page(request, case, form, preview=preview)
    form = NoticeForm(request.POST, channels=channels)
    if form.is_valid():
        channel = form.cleaned_data["channel"]
        try:
            sent = notices.notice_send(case=case, channel=channel, actor=request.user)
        except ContactDenied:
            form.add_error(None, _("The contact rules refuse this notice now: nothing was sent."))
            preview = notice_preview(case, channel, timezone.now())
            return _notice_page(request, case, form, preview=preview, status=_refused(request))
        except ValidationError as exc:  # a hold, no template, no contact point: the preview says which
            add_service_errors(form, exc)
            preview = notice_preview(case, channel, timezone.now())
            return _notice_page(request, case, form, preview=preview, status=_refused(request))
        else:
            if sent.status == Notice.Status.FAILED:
                return _done(
                    request,
                    case,
                    _("The notice could not be delivered (%(failure)s); it is recorded as failed.")
                    % {"failure": sent.failure},
                    messages.ERROR,
                )
            return _done(
                request, case, _("Notice sent by %(channel)s.") % {"channel": sent.get_channel_display()}
            )
    return _notice_page(request, case, form, status=_refused(request))


@case_action(PERM_NOTICE, methods=("GET",))
def notice_preview_view(request, case):
    """The notice as it would go out now, and whether it may. Writes nothing."""
    form = NoticeForm(request.GET, channels=notice_channels(case))
    if not form.is_valid():
        return _notice_page(request, case, form, status=_refused(request))
    preview = notice_preview(case, form.cleaned_data["channel"], timezone.now())
    return _notice_page(request, case, form, preview=preview)


# --- restructurings --------------------------------------------------------------------------------------


def _schedule(summary: dict) -> dict:
    """A schedule summary (strings, as ``loans.restructure.schedule_summary`` gives them) for display."""
    end = summary.get("end_date")
    return {
        **summary,
        "annual_rate": Decimal(summary["annual_rate"]),
        "end_date": date.fromisoformat(end) if end else None,
        "rows": [{**row, "due_date": date.fromisoformat(row["due_date"])} for row in summary["rows"]],
    }


def _pending_restructuring(case) -> Restructuring | None:
    return (
        Restructuring.objects.filter(case=case, status=Restructuring.Status.PROPOSED)
        .select_related("proposed_by")
        .first()
    )


def _restructuring_page(request, case, form: RestructuringForm, *, preview=None, status=200):
    context = {"form": form, "preview": preview, "pending": _pending_restructuring(case)}
    return _page(request, case, "restructuring.html", "restructuring", context, status=status)


def _restructuring_form(request, case) -> RestructuringForm:
    data = request.POST if request.method == "POST" else None
    return RestructuringForm(data, current_rate=case.loan.annual_rate)


@case_action(PERM_RESTRUCTURING)
def restructuring_view(request, case):
    """Propose a restructuring (``restructuring.restructuring_propose``); a supervisor decides it."""
    form = _restructuring_form(request, case)
    if request.method == "GET":
        return _restructuring_page(request, case, form)
    if form.is_valid():
        terms = form.terms()
        try:
            restructuring.restructuring_propose(
                case=case,
                kind=form.cleaned_data["kind"],
                actor=request.user,
                reason=form.cleaned_data["reason"],
                **terms,
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            return _done(request, case, _("Restructuring proposed: it waits for a supervisor's decision."))
    return _restructuring_page(request, case, form, status=_refused(request))


@case_action(PERM_RESTRUCTURING, methods=("POST",))
def restructuring_preview_view(request, case):
    """The schedule as it stands beside the one proposed, with the totals and the waiver. Writes nothing."""
    form = _restructuring_form(request, case)
    if form.is_valid():
        try:
            result = restructuring.restructuring_preview(
                case=case, kind=form.cleaned_data["kind"], **form.terms()
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            waived = Decimal(result["waived_amount"])
            current, proposed = _schedule(result["current"]), _schedule(result["proposed"])
            preview = {
                "current": current,
                "proposed": proposed,
                "rows": list(zip_longest(current["rows"], proposed["rows"])),
                "waived_amount": waived,
                "total_change": Decimal(proposed["total_cost"]) - Decimal(current["total_cost"]),
                "waiver_limit": restructuring.waiver_limit(case),
            }
            return _restructuring_page(request, case, form, preview=preview)
    return _restructuring_page(request, case, form, status=_refused(request))


# --- legal referrals -------------------------------------------------------------------------------------


def _referral_page(request, case, form: ReferralForm, *, status=200):
    context = {
        "form": form,
        "block": referrals.referral_block(case=case, as_of=timezone.localdate()),
        "under_way": LegalReferral.objects.filter(case=case, status__in=LegalReferral.ACTIVE)
        .select_related("requested_by")
        .first(),
        "may_request_unrecommended": request.user.has_perm(referrals.PERM_APPROVE),
    }
    return _page(request, case, "referral.html", "referral", context, status=status)


@case_action(PERM_REFERRAL)
def referral(request, case):
    """Request a legal referral (``referrals.referral_request``); another supervisor approves it."""
    if request.method == "GET":
        return _referral_page(request, case, ReferralForm())
    form = ReferralForm(request.POST)
    if form.is_valid():
        try:
            referrals.referral_request(
                case=case,
                actor=request.user,
                reason=form.cleaned_data["reason"],
                forbearance_considered=form.cleaned_data["forbearance_considered"],
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            return _done(request, case, _("Legal referral requested: it waits for a supervisor's approval."))
    return _referral_page(request, case, form, status=_refused(request))


urlpatterns = [
    path("cases/<int:pk>/actions/contact/", contact, name="case_contact"),
    path("cases/<int:pk>/actions/contact/check/", contact_check_view, name="case_contact_check"),
    path("cases/<int:pk>/actions/promise/", promise, name="case_promise"),
    path("cases/<int:pk>/actions/promise/row/", promise_row, name="case_promise_row"),
    path("cases/<int:pk>/actions/notice/", notice, name="case_notice"),
    path("cases/<int:pk>/actions/notice/preview/", notice_preview_view, name="case_notice_preview"),
    path("cases/<int:pk>/actions/restructuring/", restructuring_view, name="case_restructuring"),
    path(
        "cases/<int:pk>/actions/restructuring/preview/",
        restructuring_preview_view,
        name="case_restructuring_preview",
    ),
    path("cases/<int:pk>/actions/referral/", referral, name="case_referral"),
]
