"""The compliance officer's pages (namespace ``compliance``): what needs attention, the contact rule
profiles, refused contacts, overrides, flagged notes, PII reveals, the audit log with its chain
check, and the data-subject export.

Every page needs ``compliance.view_auditevent`` (compliance officers and superusers; others 403).
Acting needs more: reviewing a flag ``compliance.review_screening_flags``, exporting
``compliance.export_personal_data``; the services check again. Personal data is shown masked
(``loans.masking``); nothing here reveals it.
"""

from __future__ import annotations

import functools
import json
from datetime import timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from compliance import selectors
from compliance.admin.audit import CHAIN_WINDOW
from compliance.export import EXPORT_PERMISSION, borrower_export_run
from compliance.forms import (
    PII_FIELDS,
    SUBJECT_TYPES,
    AuditFilter,
    BorrowerSearchForm,
    DeniedContactFilter,
    ExportForm,
    FlagFilter,
    OverrideFilter,
    OverrideRequestFilter,
    PiiRevealFilter,
    ReviewForm,
    day_start,
)
from compliance.models import (
    AuditEventType,
    Channel,
    ContactRule,
    LexiconTerm,
    Rule,
    ScreeningFlag,
    ThirdPartyMode,
)
from compliance.overrides import reason_label
from compliance.screening import REVIEW_PERMISSION, screening_flag_review
from loans.masking import mask_contact_value, mask_national_id
from loans.models import Borrower, ContactPoint

VIEW_PERMISSION = "compliance.view_auditevent"
PAGE_SIZE = 50


def compliance_page(view):
    """Signed in (else the login page) and holding ``compliance.view_auditevent`` (else 403). The
    pages name borrowers and staff: no browser or proxy keeps a copy (``never_cache``)."""

    @functools.wraps(view)
    @never_cache
    @login_required
    def wrapper(request, *args, **kwargs):
        if not request.user.has_perm(VIEW_PERMISSION):
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return wrapper


# --- presentation helpers --------------------------------------------------------------------------


def _reasons(codes) -> list[dict]:
    return [{"code": code, "label": reason_label(code)} for code in codes or []]


def _channel_label(code: str) -> str:
    return str(Channel(code).label) if code in Channel.values else code


def _masked(point: ContactPoint | None) -> str:
    return mask_contact_value(point.kind, point.value) if point is not None else ""


def _page(request, queryset, size: int = PAGE_SIZE):
    return Paginator(queryset, size).get_page(request.GET.get("page"))


def _query_without_page(request) -> str:
    query = request.GET.copy()
    for key in ("page", "before", "after"):
        query.pop(key, None)
    return query.urlencode()


def highlight(text: str, matches) -> list[tuple[str, str]]:
    """The note as (plain, marked) pieces, marking what screening matched; overlapping matches: the
    first one is marked. Offsets index the stored text."""
    pieces, at = [], 0
    spans = sorted((m["start"], m["end"]) for m in matches or [] if "start" in m and "end" in m)
    for start, end in spans:
        if start < at or end > len(text):
            continue
        pieces.append((text[at:start], text[start:end]))
        at = end
    pieces.append((text[at:], ""))
    return pieces


def _category_label(category: str) -> str:
    if category in LexiconTerm.Category.values:
        return str(LexiconTerm.Category(category).label)
    return category


# Where flagged notes come from (``note_screen(source=...)``), in words; another source as it is.
FLAG_SOURCES = {"case_contact": gettext_lazy("contact note")}


def _flag_view(flag: ScreeningFlag) -> dict:
    matched = [
        {
            "category": _category_label(match.get("category", "")),
            "text": match.get("text", ""),
            "phrase": match.get("phrase", ""),
        }
        for match in flag.matches or []
    ]
    return {
        "flag": flag,
        "pieces": highlight(flag.excerpt, flag.matches),
        "matched": matched,
        "source": FLAG_SOURCES.get(flag.source, flag.source),
    }


# The chain walk's findings (``compliance.audit.chain_problems``), in the user's language.
CHAIN_PROBLEMS = {
    "its link to the event before is broken (a row deleted or moved)": "link",
    "its contents do not match its hash (the row was edited)": "hash",
    selectors.CHANGED_SINCE: "changed",
}


def _chain_problem_text(problem: str) -> str:
    kind = CHAIN_PROBLEMS.get(problem)
    if kind == "link":
        return _("its link to the event before is broken (an event was deleted or moved)")
    if kind == "hash":
        return _("its contents do not match its hash (the event was edited)")
    if kind == "changed":
        return _("it changed after an earlier part of the walk checked it (edited or deleted)")
    return problem


def _chain_context() -> dict:
    checks = {}
    for scope in (selectors.FULL, selectors.RECENT):
        check = selectors.chain_check_last(scope)
        checks[scope] = (
            {"check": check, "problem_text": _chain_problem_text(check.problem)}
            if check is not None
            else None
        )
    return {
        "chain_full": checks[selectors.FULL],
        "chain_recent": checks[selectors.RECENT],
        "chain_window": CHAIN_WINDOW,
        "walk_seconds": selectors.CHAIN_WALK_SECONDS,
    }


def _today_start():
    return day_start(timezone.localdate())


# --- home ------------------------------------------------------------------------------------------


@require_GET
@compliance_page
def home(request):
    now = timezone.now()
    counts = selectors.attention_counts(now=now, today_start=_today_start())
    today = timezone.localdate().isoformat()
    tiles = [
        {
            "count": counts["unreviewed_flags"],
            "label": _("flagged notes waiting for review"),
            "url": reverse("compliance:flags"),
            "alert": counts["unreviewed_flags"] > 0,
        },
        {
            "count": counts["overrides_week"],
            "label": _("contact overrides granted in the last 7 days"),
            "url": reverse("compliance:overrides")
            + f"?date_from={timezone.localdate(now - timedelta(days=7)).isoformat()}",
            "alert": False,
        },
        {
            "count": counts["pending_requests"],
            "label": _("override requests waiting for a supervisor"),
            "url": reverse("compliance:override_requests") + "?status=pending",
            "alert": False,
        },
        {
            "count": counts["pii_reveals_today"],
            "label": _("personal data reveals today"),
            "url": reverse("compliance:pii_reveals") + f"?date_from={today}",
            "alert": False,
        },
        {
            "count": counts["denied_today"],
            "label": _("refused contacts on record today"),
            "url": reverse("compliance:denied_contacts") + f"?date_from={today}",
            "alert": False,
        },
    ]
    return render(request, "compliance/home.html", {"tiles": tiles, **_chain_context(), "section": "home"})


# --- rule profiles ---------------------------------------------------------------------------------


def _rule_view(rule: ContactRule) -> dict:
    window = ""
    if rule.start and rule.end:
        window = f"{rule.start:%H:%M}–{rule.end:%H:%M}"
    mode = str(ThirdPartyMode(rule.mode).label) if rule.mode in ThirdPartyMode.values else rule.mode
    return {"rule": rule, "label": rule.get_rule_display(), "window": window, "mode": mode}


@require_GET
@compliance_page
def rules(request):
    profiles = []
    for profile in selectors.rule_profiles():
        rows = [_rule_view(rule) for rule in profile.rules.all()]
        configured = {row["rule"].rule for row in rows}
        missing = [label for value, label in Rule.choices if value not in configured]
        profiles.append({"profile": profile, "rules": rows, "missing": missing})
    edits = [{"event": event, **_rule_edit(event.details)} for event in selectors.recent_rule_edits()]
    return render(
        request, "compliance/rules.html", {"profiles": profiles, "edits": edits, "section": "rules"}
    )


def _rule_edit(details: dict) -> dict:
    """A rule edit's audit details in words: what was done to which rule or profile."""
    actions = {"added": _("added"), "changed": _("changed"), "deleted": _("deleted")}
    values = details.get("values") or {}
    rule = values.get("rule", "")
    what = str(Rule(rule).label) if rule in Rule.values else values.get("name") or values.get("code", "")
    return {"action": actions.get(details.get("action", ""), details.get("action", "")), "what": what}


# --- refused contacts ------------------------------------------------------------------------------


@require_GET
@compliance_page
def denied_contacts(request):
    form = DeniedContactFilter(request.GET)
    page = _page(request, selectors.denied_contacts(**form.filters()))
    users, borrowers = selectors.people(
        user_ids=[row["agent"] for row in page], borrower_ids=[row["whose"] for row in page]
    )
    rows = [
        {
            **row,
            "reasons": _reasons(row["codes"]),
            "channel": _channel_label(row["channel_code"]),
            "agent_user": users.get(row["agent"]),
            "borrower": borrowers.get(row["whose"]),
        }
        for row in page
    ]
    return render(
        request,
        "compliance/denied.html",
        {
            "form": form,
            "page": page,
            "rows": rows,
            "query": _query_without_page(request),
            "section": "denied",
        },
    )


# --- overrides -------------------------------------------------------------------------------------


@require_GET
@compliance_page
def overrides(request):
    form = OverrideFilter(request.GET)
    now = timezone.now()
    page = _page(request, selectors.contact_overrides(now=now, **form.filters()))
    rows = []
    for override in page:
        request_row = getattr(override, "request", None)
        rows.append(
            {
                "override": override,
                "reasons": _reasons(override.reasons),
                "point": _masked(override.contact_point),
                "asked_by": request_row.requested_by if request_row else None,
                "expired": override.used_at is None and override.valid_until <= now,
            }
        )
    return render(
        request,
        "compliance/overrides.html",
        {"form": form, "page": page, "rows": rows, "query": _query_without_page(request),
         "section": "overrides", "tab": "granted"},
    )  # fmt: skip


@require_GET
@compliance_page
def override_requests(request):
    form = OverrideRequestFilter(request.GET)
    page = _page(request, selectors.override_requests(**form.filters()))
    rows = [
        {"item": item, "reasons": _reasons(item.reasons), "point": _masked(item.contact_point)}
        for item in page
    ]
    return render(
        request,
        "compliance/override_requests.html",
        {"form": form, "page": page, "rows": rows, "query": _query_without_page(request),
         "section": "overrides", "tab": "requests"},
    )  # fmt: skip


# --- flagged notes ---------------------------------------------------------------------------------


@require_GET
@compliance_page
def flags(request):
    form = FlagFilter(request.GET)
    page = _page(request, selectors.screening_flags(**form.filters()))
    return render(
        request,
        "compliance/flags.html",
        {
            "form": form,
            "page": page,
            "rows": [_flag_view(flag) for flag in page],
            "query": _query_without_page(request),
            "can_review": request.user.has_perm(REVIEW_PERMISSION),
            "section": "flags",
        },
    )


@require_http_methods(["GET", "POST"])
@compliance_page
def flag_review(request, pk: int):
    """GET: the flag with its review form. POST: review it through ``screening_flag_review``.

    htmx posts from the list get the row back (422 with the errors); a plain post is redirected to
    the list, or gets this page again with the errors."""
    flag = get_object_or_404(ScreeningFlag.objects.select_related("reviewed_by"), pk=pk)
    form = ReviewForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if not request.user.has_perm(REVIEW_PERMISSION):
            raise PermissionDenied
        if form.is_valid():
            try:
                flag = screening_flag_review(flag=flag, actor=request.user, note=form.cleaned_data["note"])
            except ValidationError as exc:
                for field, errors in exc.message_dict.items():
                    form.add_error("note" if field == "note" else None, errors)
        if form.errors:
            status = 422 if request.htmx else 200
            flag.refresh_from_db()
        elif not request.htmx:
            messages.success(request, _("Flag #%(id)s reviewed.") % {"id": flag.pk})
            return redirect("compliance:flags")
        else:
            form = ReviewForm()
    context = {
        "row": _flag_view(flag),
        "form": form,
        "can_review": request.user.has_perm(REVIEW_PERMISSION),
        "section": "flags",
    }
    template = "compliance/_flag_row.html" if request.htmx else "compliance/flag.html"
    return render(request, template, context, status=status)


# --- PII reveals -----------------------------------------------------------------------------------


def _pii_field(details: dict) -> str:
    field = details.get("field", "")
    if field == "national_id":
        return _("national ID")
    kind = details.get("kind", "")
    if kind in ContactPoint.Kind.values:
        return str(ContactPoint.Kind(kind).label)
    return field


@require_GET
@compliance_page
def pii_reveals(request):
    form = PiiRevealFilter(request.GET)
    page = selectors.keyset_page(selectors.pii_reveals(**form.filters()), **form.cursor())
    borrower_type = Borrower._meta.label_lower
    _users, borrowers = selectors.people(
        borrower_ids=[_int(e.subject_id) for e in page.rows if e.subject_type == borrower_type]
    )
    rows = [
        {
            "event": event,
            "borrower": borrowers.get(_int(event.subject_id))
            if event.subject_type == borrower_type
            else None,
            "what": _pii_field(event.details),
            "reason": event.details.get("reason", ""),
        }
        for event in page.rows
    ]
    return render(
        request,
        "compliance/pii.html",
        {"form": form, "page": page, "rows": rows, "query": _query_without_page(request),
         "fields": PII_FIELDS, "section": "pii"},
    )  # fmt: skip


def _int(value) -> int | None:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


# --- the audit log ---------------------------------------------------------------------------------


def _event_label(event_type: str) -> str:
    return str(AuditEventType(event_type).label) if event_type in AuditEventType.values else event_type


@require_GET
@compliance_page
def audit(request):
    form = AuditFilter(request.GET)
    page = selectors.keyset_page(selectors.audit_events(**form.filters()), **form.cursor())
    rows = []
    for event in page.rows:
        compact = json.dumps(event.details, ensure_ascii=False, sort_keys=True)
        rows.append(
            {
                "event": event,
                "label": _event_label(event.event_type),
                "summary": compact if len(compact) <= 100 else f"{compact[:99]}…",
                "pretty": json.dumps(event.details, ensure_ascii=False, sort_keys=True, indent=2),
            }
        )
    return render(
        request,
        "compliance/audit.html",
        {"form": form, "page": page, "rows": rows, "query": _query_without_page(request),
         "subject_types": SUBJECT_TYPES,
            "page_size": selectors.AUDIT_PAGE_SIZE, "section": "audit", **_chain_context()},
    )  # fmt: skip


@require_POST
@compliance_page
def audit_verify(request):
    """Walk the chain now: ``scope=full`` (from the first event), ``continue`` (on from where a walk
    stopped at its time limit) or ``recent`` (the newest events). htmx gets the status card back; a
    plain post is redirected to the audit log with the result as a message."""
    scope = request.POST.get("scope", selectors.FULL)
    if scope not in (selectors.FULL, selectors.CONTINUE, selectors.RECENT):
        scope = selectors.FULL
    check = selectors.chain_check_run(scope=scope, actor=request.user)
    if request.htmx:  # the card shows the result (or that a check is running)
        return render(request, "compliance/_chain_status.html", {**_chain_context(), "busy": check is None})
    if check is None:
        messages.warning(request, _("A check of the audit chain is running already; try again in a minute."))
    elif not check.intact:
        messages.error(
            request,
            _("The audit chain is broken at event #%(id)s: %(problem)s.")
            % {"id": check.problem_event, "problem": _chain_problem_text(check.problem)},
        )
    elif not check.complete:
        messages.warning(
            request,
            _(
                "The first %(n)s events hold, up to event #%(id)s; the walk stopped at its time limit. "
                "Continue it to check the rest."
            )
            % {"n": check.events, "id": check.last_id},
        )
    else:
        messages.success(
            request, _("The audit chain is intact (%(n)s events checked).") % {"n": check.events}
        )
    return redirect("compliance:audit")


# --- data-subject export ---------------------------------------------------------------------------


def _card(borrower: Borrower) -> dict:
    return {
        "borrower": borrower,
        "national_id": mask_national_id(borrower.national_id),
        "points": [{"point": point, "masked": _masked(point)} for point in borrower.contact_points.all()],
        "loans": list(borrower.loans.all()),
    }


def _export_page(request, search: BorrowerSearchForm, *, failed: Borrower | None = None, export_form=None):
    """The search and its results; after a refused export, the borrower it was for, with the error."""
    results, more = [], False
    if failed is not None:
        results = [_card(b) for b in selectors.borrower_cards(Borrower.objects.filter(pk=failed.pk))]
    elif search.is_bound and search.is_valid():
        found = selectors.borrower_search(kind=search.cleaned_data["kind"], query=search.cleaned_data["q"])
        more = len(found) > selectors.SEARCH_LIMIT
        results = [_card(borrower) for borrower in found[: selectors.SEARCH_LIMIT]]
    return render(
        request,
        "compliance/export.html",
        {
            "search": search,
            # What was typed goes back into the box, except a national ID: the page never shows one.
            "echo": search.is_bound and search.data.get("kind") != "national_id",
            "results": results,
            "more": more,
            "limit": selectors.SEARCH_LIMIT,
            "can_export": request.user.has_perm(EXPORT_PERMISSION),
            "failed": failed.pk if failed is not None else None,
            "export_form": export_form or ExportForm(),
            "section": "export",
        },
    )


@require_http_methods(["GET", "POST"])
@compliance_page
def export(request):
    """Find the borrower: by national ID (its keyed hash), reference, or the start of the name.

    The search is posted, not put in the query string, so a national ID never lands in a URL (the
    browser's history, the server's access log, the language switch's return address)."""
    search = BorrowerSearchForm(request.POST if request.method == "POST" else None)
    return _export_page(request, search)


@require_POST
@compliance_page
def export_download(request, pk: int):
    """The borrower's data-subject export as a ZIP, with a reason; audited by the service. Without a
    reason: the search page again with the error, nothing written."""
    if not request.user.has_perm(EXPORT_PERMISSION):
        raise PermissionDenied
    borrower = get_object_or_404(Borrower, pk=pk)
    form = ExportForm(request.POST)
    if form.is_valid():
        try:
            result = borrower_export_run(
                borrower=borrower, actor=request.user, reason=form.cleaned_data["reason"]
            )
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                form.add_error("reason" if field == "reason" else None, errors)
        else:
            name = f"borrower-{borrower.pk}-{timezone.localdate():%Y%m%d}.zip"
            response = HttpResponse(result.content, content_type="application/zip")
            response["Content-Disposition"] = f'attachment; filename="{name}"'
            return response
    return _export_page(request, BorrowerSearchForm(), failed=borrower, export_form=form)
