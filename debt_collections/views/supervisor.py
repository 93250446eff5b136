"""The supervisor's pages: the approvals queue (restructurings and legal referrals, never one's own),
the team workload with bulk reassignment, and contact-rule override requests; and the collector's
request for an override, posted from the contact form after a refusal.

Every view checks the permission first (403), then looks the record up among the cases the user may
see (``debt_collections.visibility``: another team's is 404), and acts through the services, which
check again. A service's refusal comes back as form errors with nothing written: an htmx request gets
its row or section again with the errors (422), any other the page again (200). A decision taken
from a queue row swaps that row for its outcome; the detail pages post as plain forms and return to
the queue with a message. Compliance officers read every case but act on none: these pages are 403
for them (they have their own).

The selectors (the querysets each page reads) come first; each page's query count stays the same
however many rows it shows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Count, F, OuterRef, Q, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce
from django.http import QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from compliance.models import Channel, OverrideRequest, Purpose
from compliance.overrides import (
    DEFAULT_VALID_FOR,
    MAX_VALID_FOR,
    REASON_LABELS,
    override_request_create,
    override_request_decline,
    override_request_grant,
    override_requests_decided,
    override_requests_pending,
    reason_label,
)
from debt_collections import referrals, restructuring, services
from debt_collections.models import (
    Case,
    CaseContact,
    CollectionPolicy,
    LegalReferral,
    PromiseInstalment,
    PromiseToPay,
    Restructuring,
    StageChoices,
    Team,
    TeamMember,
)
from debt_collections.visibility import case_for, require, require_any, supervised_teams, visible_cases
from loans.masking import mask_contact_value

PERM_RESTRUCTURING = "debt_collections.approve_restructuring"
PERM_REFERRAL = "debt_collections.approve_referral"
PERM_LARGE_WAIVER = "debt_collections.approve_large_waiver"
PERM_REASSIGN = "debt_collections.reassign_case"
PERM_OVERRIDES = "compliance.change_overriderequest"
PERM_ASK_OVERRIDE = "compliance.add_overriderequest"

TEMPLATES = "debt_collections/supervisor/"
QUEUE_LIMIT = 200  # oldest first: what a supervisor can work through; the count says how many more
DECIDED_LIMIT = 50
PAGE_SIZE = 100
REASON_MAX = 300  # what every decision service accepts (referral approval: services._require_reason)
OVERDUE = (
    F("loan__overdue_principal")
    + F("loan__overdue_interest")
    + F("loan__overdue_fee")
    + F("loan__overdue_penalty")
)

MAX_HOURS = MAX_VALID_FOR // timedelta(hours=1)
DEFAULT_HOURS = DEFAULT_VALID_FOR // timedelta(hours=1)

User = get_user_model()


# --- selectors ------------------------------------------------------------------------------------


def pending_restructurings(user) -> QuerySet[Restructuring]:
    """Proposals waiting for a decision on the cases ``user`` sees, oldest first."""
    queryset = Restructuring.objects.filter(status=Restructuring.Status.PROPOSED)
    return _restructurings(user, queryset).order_by("proposed_at", "pk")


def _restructuring_rows(queryset=None) -> QuerySet[Restructuring]:
    queryset = Restructuring.objects.all() if queryset is None else queryset
    return queryset.select_related("case__team", "loan__borrower", "proposed_by", "decided_by")


def _restructurings(user, queryset=None) -> QuerySet[Restructuring]:
    queryset = Restructuring.objects.all() if queryset is None else queryset
    return _restructuring_rows(visible_cases(user, queryset, prefix="case__"))


def pending_referrals(user) -> QuerySet[LegalReferral]:
    """Legal referral requests waiting for a decision on the cases ``user`` sees, oldest first."""
    queryset = LegalReferral.objects.filter(status=LegalReferral.Status.REQUESTED)
    return _referrals(user, queryset).order_by("requested_at", "pk")


def _referral_rows(queryset=None) -> QuerySet[LegalReferral]:
    queryset = LegalReferral.objects.all() if queryset is None else queryset
    return queryset.select_related("case__team", "case__loan__borrower", "requested_by", "decided_by")


def _referrals(user, queryset=None) -> QuerySet[LegalReferral]:
    queryset = LegalReferral.objects.all() if queryset is None else queryset
    return _referral_rows(visible_cases(user, queryset, prefix="case__"))


def waiver_limits():
    """The largest waiver a supervisor may approve, by product: its policy, else the default policy
    (as ``restructuring.waiver_limit`` decides it for one case), read once for a whole queue."""
    by_product = dict(CollectionPolicy.objects.values_list("product_id", "supervisor_waiver_limit"))
    default = by_product.get(None, CollectionPolicy._meta.get_field("supervisor_waiver_limit").default)
    return lambda product_id: by_product.get(product_id, default)


def reassignable_cases(user, team_ids) -> QuerySet[Case]:
    """Open cases of the teams ``user`` supervises that ``user`` sees: all a reassignment may touch."""
    return visible_cases(user, Case.objects.filter(status=Case.Status.OPEN, team_id__in=team_ids))


def local_day_bounds(day: date) -> tuple[datetime, datetime]:
    zone = timezone.get_default_timezone()  # the business calendar's day
    start = datetime.combine(day, time.min, tzinfo=zone)
    return start, datetime.combine(day + timedelta(days=1), time.min, tzinfo=zone)


@dataclass
class Load:
    """One person's (or nobody's) share of a team's open cases."""

    user: object | None
    member: bool = True
    takes_new_cases: bool = True
    cases: int = 0
    overdue: dict = field(default_factory=dict)  # currency -> amount
    promises_due: int = 0
    contacts: int = 0
    right_party: int = 0

    @property
    def overdue_amounts(self) -> list[tuple[Decimal, str]]:
        return sorted(((amount, currency) for currency, amount in self.overdue.items()), key=lambda p: p[1])


@dataclass
class TeamLoad:
    team: Team
    people: list[Load]
    unassigned: Load
    total: Load


def team_workload(teams: list[Team], today: date) -> list[TeamLoad]:
    """For each team: every member's open cases, amount overdue (by currency), promise payments due
    ``today`` and contacts logged today (and right-party ones); the unassigned cases; the team's
    totals. Five aggregate queries whatever the number of teams, people and cases."""
    team_ids = [team.pk for team in teams]
    loads: dict[int, dict[int | None, Load]] = {team.pk: {} for team in teams}
    members = (
        TeamMember.objects.filter(team_id__in=team_ids).select_related("user").order_by("user__username")
    )
    for membership in members:
        loads[membership.team_id][membership.user_id] = Load(
            user=membership.user, takes_new_cases=membership.is_active
        )

    def load(team_id, user_id) -> Load:
        if user_id not in loads[team_id]:
            loads[team_id][user_id] = Load(user=user_id, member=False)  # the user is read below
        return loads[team_id][user_id]

    cases = (
        Case.objects.filter(status=Case.Status.OPEN, team_id__in=team_ids)
        .values("team_id", "assignee_id", "loan__currency")
        .annotate(n=Count("pk"), overdue=Sum(OVERDUE))
        .order_by()
    )
    for row in cases:
        share = load(row["team_id"], row["assignee_id"])
        share.cases += row["n"]
        currency = row["loan__currency"]
        share.overdue[currency] = share.overdue.get(currency, Decimal(0)) + (row["overdue"] or Decimal(0))
    promises = (
        PromiseInstalment.objects.filter(
            due_date=today,
            promise__status=PromiseToPay.Status.OPEN,
            promise__case__status=Case.Status.OPEN,
            promise__case__team_id__in=team_ids,
        )
        .values("promise__case__team_id", "promise__case__assignee_id")
        .annotate(n=Count("pk"))
        .order_by()
    )
    for row in promises:
        load(row["promise__case__team_id"], row["promise__case__assignee_id"]).promises_due += row["n"]
    start, end = local_day_bounds(today)
    contacts = (
        CaseContact.objects.filter(case__team_id__in=team_ids, attempt__at__gte=start, attempt__at__lt=end)
        .values("case__team_id", "created_by_id")
        .annotate(n=Count("pk"), rpc=Count("pk", filter=Q(attempt__right_party=True)))
        .order_by()
    )
    for row in contacts:
        share = load(row["case__team_id"], row["created_by_id"])
        share.contacts += row["n"]
        share.right_party += row["rpc"]

    strangers = {s.user for team in loads.values() for key, s in team.items() if key and not s.member}
    users = User.objects.in_bulk(strangers) if strangers else {}
    result = []
    for team in teams:
        shares = loads[team.pk]
        unassigned = shares.pop(None, Load(user=None, member=False))
        for share in shares.values():
            if not share.member:
                share.user = users.get(share.user)
        people = sorted(shares.values(), key=lambda s: (not s.member, s.user.get_username()))
        total = Load(user=None, member=False)
        for share in [*people, unassigned]:
            total.cases += share.cases
            total.promises_due += share.promises_due
            total.contacts += share.contacts
            total.right_party += share.right_party
            for currency, amount in share.overdue.items():
                total.overdue[currency] = total.overdue.get(currency, Decimal(0)) + amount
        result.append(TeamLoad(team=team, people=people, unassigned=unassigned, total=total))
    return result


def visible_borrowers(user) -> QuerySet:
    """The borrowers of the cases ``user`` sees (a subquery)."""
    return visible_cases(user).values("loan__borrower_id")


def with_case(user, queryset: QuerySet[OverrideRequest]) -> QuerySet[OverrideRequest]:
    """Each request with the case to link to: the latest the user sees of its loan, else of its
    borrower."""
    cases = visible_cases(user).order_by("-opened_on", "-pk").values("pk")
    return queryset.annotate(
        case_id=Coalesce(
            Subquery(cases.filter(loan_id=OuterRef("loan_id"))[:1]),
            Subquery(cases.filter(loan__borrower_id=OuterRef("borrower_id"))[:1]),
        )
    )


# --- helpers --------------------------------------------------------------------------------------


def _htmx(request) -> bool:
    return bool(getattr(request, "htmx", False))


def _add_service_errors(form: forms.Form, exc: ValidationError | PermissionDenied) -> None:
    """A service's refusal on the form: each message on the field it names when the form has that
    field, else above the form."""
    if isinstance(exc, PermissionDenied):
        form.add_error(None, str(exc) or _("You are not allowed to do this."))
        return
    if not hasattr(exc, "error_dict"):
        form.add_error(None, exc.messages)
        return
    for name, errors in exc.error_dict.items():
        texts = [text for error in errors for text in error.messages]
        form.add_error(name if name in form.fields else None, texts)


def _today() -> date:
    """The business day: the site's calendar (as the scan counts days past due), not the viewer's."""
    return timezone.localdate(timezone.now(), timezone.get_default_timezone())


# --- the approvals queue --------------------------------------------------------------------------


class DecisionForm(forms.Form):
    decision = forms.ChoiceField(
        label=gettext_lazy("Decision"),
        choices=[("approve", gettext_lazy("Approve")), ("reject", gettext_lazy("Reject"))],
    )
    reason = forms.CharField(
        label=gettext_lazy("Reason"),
        max_length=REASON_MAX,
        widget=forms.Textarea(attrs={"rows": 2}),
        error_messages={"required": gettext_lazy("Give a reason.")},
    )


@dataclass
class Proposal:
    """One row of the approvals queue: a restructuring or a legal referral waiting for a decision."""

    kind: str  # "restructuring" or "referral"
    obj: Restructuring | LegalReferral
    case: Case
    proposer: object
    at: datetime
    is_own: bool
    dpd: int
    label: str
    waived: Decimal | None = None
    waiver_limit: Decimal | None = None
    needs_senior: bool = False
    may_approve_large: bool = False

    @property
    def loan(self):
        return self.case.loan

    @property
    def borrower(self):
        return self.case.loan.borrower

    @property
    def key(self) -> str:
        return f"{self.kind}-{self.obj.pk}"

    @property
    def detail_url(self) -> str:
        return reverse(f"work:approval_{self.kind}", args=[self.obj.pk])

    @property
    def decide_url(self) -> str:
        return reverse(f"work:approval_{self.kind}_decide", args=[self.obj.pk])

    @property
    def pending(self) -> bool:
        if self.kind == "restructuring":
            return self.obj.status == Restructuring.Status.PROPOSED
        return self.obj.status == LegalReferral.Status.REQUESTED


def _restructuring_item(proposal: Restructuring, user, limit_of, today: date) -> Proposal:
    case = proposal.case
    case.loan = proposal.loan  # one loan object, read with its borrower
    limit = limit_of(proposal.loan.product_id)
    return Proposal(
        kind="restructuring",
        obj=proposal,
        case=case,
        proposer=proposal.proposed_by,
        at=proposal.proposed_at,
        is_own=proposal.proposed_by_id == user.pk,
        dpd=proposal.loan.days_past_due(today),
        label=proposal.get_kind_display(),
        waived=proposal.waived_amount,
        waiver_limit=limit,
        needs_senior=proposal.waived_amount > limit,
        may_approve_large=user.has_perm(PERM_LARGE_WAIVER),
    )


def _referral_item(referral: LegalReferral, user, today: date) -> Proposal:
    return Proposal(
        kind="referral",
        obj=referral,
        case=referral.case,
        proposer=referral.requested_by,
        at=referral.requested_at,
        is_own=referral.requested_by_id == user.pk,
        dpd=referral.case.loan.days_past_due(today),
        label=_("Legal referral"),
    )


APPROVAL_KINDS = (("", gettext_lazy("All")), ("restructuring", gettext_lazy("Restructurings")),
                  ("referral", gettext_lazy("Legal referrals")))  # fmt: skip


@login_required
def approvals(request):
    """Restructurings and legal referrals waiting for a decision on the cases the supervisor sees,
    oldest first; one's own are marked and have no decision buttons."""
    user = request.user
    require_any(user, PERM_RESTRUCTURING, PERM_REFERRAL)
    kind = request.GET.get("kind", "")
    kind = kind if kind in dict(APPROVAL_KINDS) else ""
    today = _today()
    items: list[Proposal] = []
    counts = {"restructuring": None, "referral": None}
    if user.has_perm(PERM_RESTRUCTURING) and kind in ("", "restructuring"):
        queryset = pending_restructurings(user)
        counts["restructuring"] = queryset.count()
        limit_of = waiver_limits()
        items += [_restructuring_item(p, user, limit_of, today) for p in queryset[:QUEUE_LIMIT]]
    if user.has_perm(PERM_REFERRAL) and kind in ("", "referral"):
        queryset = pending_referrals(user)
        counts["referral"] = queryset.count()
        items += [_referral_item(r, user, today) for r in queryset[:QUEUE_LIMIT]]
    items.sort(key=lambda item: (item.at, item.key))
    total = sum(n for n in counts.values() if n)
    context = {
        "items": items[:QUEUE_LIMIT],
        "counts": counts,
        "total": total,
        "shown": min(len(items), QUEUE_LIMIT),
        "kind": kind,
        "kinds": APPROVAL_KINDS,
        "form": DecisionForm(),
        "reason_max": REASON_MAX,
    }
    return render(request, TEMPLATES + "approvals.html", context)


def _decision_done(request, item: Proposal, message: str):
    if _htmx(request):
        return render(request, TEMPLATES + "approval_row.html", {"item": item, "done": message})
    messages.success(request, message)
    return redirect("work:approvals")


def _decision_refused(request, item: Proposal, form: DecisionForm, detail_template: str, extra: dict):
    if _htmx(request):
        return render(request, TEMPLATES + "approval_row.html", {"item": item, "form": form}, status=422)
    return render(request, TEMPLATES + detail_template, {"item": item, "form": form, **extra})


def _restructuring_for(request, pk) -> Restructuring:
    require(request.user, PERM_RESTRUCTURING)
    return get_object_or_404(_restructurings(request.user), pk=pk)


def _restructuring_context(item: Proposal) -> dict:
    proposal = item.obj
    return {
        "before": _schedule(proposal.current_summary),
        "after": _schedule(proposal.proposed_summary),
        "currency": proposal.loan.currency,
    }


@login_required
def approval_restructuring(request, pk):
    """A restructuring proposal: the terms, the schedule as it stood and as proposed, and the
    decision form (none for one's own, or one decided already)."""
    proposal = _restructuring_for(request, pk)
    item = _restructuring_item(proposal, request.user, waiver_limits(), _today())
    context = {"item": item, "form": DecisionForm(), **_restructuring_context(item)}
    return render(request, TEMPLATES + "restructuring.html", context)


@login_required
@require_POST
def approval_restructuring_decide(request, pk):
    proposal = _restructuring_for(request, pk)
    user = request.user
    form = DecisionForm(request.POST)
    decided = None
    if form.is_valid():
        decide = (
            restructuring.restructuring_approve
            if form.cleaned_data["decision"] == "approve"
            else restructuring.restructuring_reject
        )
        try:
            decided = decide(restructuring=proposal, actor=user, reason=form.cleaned_data["reason"])
        except (ValidationError, PermissionDenied) as exc:
            _add_service_errors(form, exc)
    # Read again as it now stands (a decision may move the case out of the user's teams).
    item = _restructuring_item(_restructuring_rows().get(pk=pk), user, waiver_limits(), _today())
    if decided is None:
        return _decision_refused(request, item, form, "restructuring.html", _restructuring_context(item))
    if decided.status == Restructuring.Status.APPROVED:
        message = _("Restructuring of case %(case)s approved.") % {"case": item.case.pk}
    else:
        message = _("Restructuring of case %(case)s rejected.") % {"case": item.case.pk}
    return _decision_done(request, item, message)


def _referral_for(request, pk) -> LegalReferral:
    require(request.user, PERM_REFERRAL)
    return get_object_or_404(_referrals(request.user), pk=pk)


def _referral_context(item: Proposal) -> dict:
    block = None
    if item.pending and item.case.is_open:
        block = referrals.referral_block(case=item.case, as_of=_today())
    return {"block": block, "currency": item.loan.currency}


@login_required
def approval_referral(request, pk):
    """A legal referral request: why, the forbearance considered, what would block it today, and the
    decision form."""
    item = _referral_item(_referral_for(request, pk), request.user, _today())
    return render(
        request,
        TEMPLATES + "referral.html",
        {"item": item, "form": DecisionForm(), **_referral_context(item)},
    )


@login_required
@require_POST
def approval_referral_decide(request, pk):
    referral = _referral_for(request, pk)
    user = request.user
    form = DecisionForm(request.POST)
    decided = None
    if form.is_valid():
        decide = (
            referrals.referral_approve
            if form.cleaned_data["decision"] == "approve"
            else referrals.referral_reject
        )
        try:
            decided = decide(referral=referral, actor=user, reason=form.cleaned_data["reason"])
        except (ValidationError, PermissionDenied) as exc:
            _add_service_errors(form, exc)
    # Read again as it now stands (an approved referral's case moves to the legal team).
    item = _referral_item(_referral_rows().get(pk=pk), user, _today())
    if decided is None:
        return _decision_refused(request, item, form, "referral.html", _referral_context(item))
    if decided.status == LegalReferral.Status.REFERRED:
        message = _("Legal referral of case %(case)s approved: the case is with the lawyers.") % {
            "case": item.case.pk
        }
    else:
        message = _("Legal referral of case %(case)s rejected.") % {"case": item.case.pk}
    return _decision_done(request, item, message)


def _schedule(summary: dict) -> dict:
    """A frozen schedule summary (strings, as ``loans.restructure.schedule_summary`` writes them)
    with its dates and rate as values, for display."""
    end = summary.get("end_date")
    return {
        **summary,
        "as_of": date.fromisoformat(summary["as_of"]) if summary.get("as_of") else None,
        "annual_rate": Decimal(summary["annual_rate"]),
        "end_date": date.fromisoformat(end) if end else None,
        "rows": [{**row, "due_date": date.fromisoformat(row["due_date"])} for row in summary.get("rows", [])],
    }


# --- the team workload and bulk reassignment ------------------------------------------------------

FILTER_KEYS = ("team", "stage", "assignee", "page")


class WorkloadFilter(forms.Form):
    team = forms.TypedChoiceField(label=gettext_lazy("Team"), coerce=int, required=False, empty_value=None)
    stage = forms.ChoiceField(label=gettext_lazy("Stage"), required=False)
    assignee = forms.ChoiceField(label=gettext_lazy("Assignee"), required=False)

    def __init__(self, data, *, teams, people):
        super().__init__(data)
        self.fields["team"].choices = [("", _("All my teams"))] + [(t.pk, t.name) for t in teams]
        self.fields["stage"].choices = [("", _("All stages")), *StageChoices.choices]
        self.fields["assignee"].choices = [("", _("Anyone")), ("none", _("Unassigned"))] + [
            (str(person.pk), person.get_username()) for person in people
        ]

    def narrow(self, queryset: QuerySet[Case]) -> QuerySet[Case]:
        """The cases the filters choose (a filter with a bad value is left out, its error shown)."""
        self.is_valid()
        values = getattr(self, "cleaned_data", {})
        if values.get("team"):
            queryset = queryset.filter(team_id=values["team"])
        if values.get("stage"):
            queryset = queryset.filter(stage=values["stage"])
        assignee = values.get("assignee")
        if assignee == "none":
            queryset = queryset.filter(assignee__isnull=True)
        elif assignee:
            queryset = queryset.filter(assignee_id=int(assignee))
        return queryset


class ReassignForm(forms.Form):
    cases = forms.ModelMultipleChoiceField(
        queryset=Case.objects.none(),
        error_messages={
            "required": gettext_lazy("Choose at least one case."),
            "invalid_choice": gettext_lazy(
                "Case %(value)s is not an open case of your teams: nothing was reassigned."
            ),
            "invalid_pk_value": gettext_lazy("“%(pk)s” is not a case number."),
        },
    )
    assignee = forms.ModelChoiceField(
        label=gettext_lazy("Give to"),
        queryset=User.objects.none(),
        error_messages={
            "required": gettext_lazy("Choose who takes the cases."),
            "invalid_choice": gettext_lazy("Choose an active member of your teams."),
        },
    )
    reason = forms.CharField(
        label=gettext_lazy("Reason"),
        max_length=REASON_MAX,
        error_messages={"required": gettext_lazy("Give a reason.")},
    )

    def __init__(self, data=None, *, cases: QuerySet[Case], team_ids):
        super().__init__(data)
        self.fields["cases"].queryset = cases
        self.fields["assignee"].queryset = User.objects.filter(
            is_active=True, team_memberships__team_id__in=team_ids, team_memberships__is_active=True
        ).distinct()

    def clean(self):
        cleaned = super().clean()
        chosen, assignee = cleaned.get("cases"), cleaned.get("assignee")
        if chosen and assignee:
            needed = {case.team_id for case in chosen}
            member_of = set(
                TeamMember.objects.filter(user=assignee, is_active=True, team_id__in=needed).values_list(
                    "team_id", flat=True
                )
            )
            missing = Team.objects.filter(pk__in=needed - member_of).order_by("name")
            if missing:
                self.add_error(
                    "assignee",
                    _("%(user)s does not take cases of %(teams)s: choose someone in the team of every case.")
                    % {"user": assignee.get_username(), "teams": ", ".join(t.name for t in missing)},
                )
        return cleaned


def _filters_from(query: str) -> QueryDict:
    """The page's filters from a posted query string, only the keys the page knows."""
    parsed = QueryDict(query or "")
    kept = QueryDict(mutable=True)
    for key in FILTER_KEYS:
        if parsed.get(key):
            kept[key] = parsed[key]
    return kept


def _workload_context(
    request, filters: QueryDict, *, form: ReassignForm | None = None, done: str = ""
) -> dict:
    user = request.user
    teams = list(supervised_teams(user).order_by("name"))
    team_ids = [team.pk for team in teams]
    today = _today()
    loads = team_workload(teams, today)
    people = sorted(
        {share.user.pk: share.user for load in loads for share in load.people}.values(),
        key=lambda person: person.get_username(),
    )
    filter_form = WorkloadFilter(filters, teams=teams, people=people)
    cases = filter_form.narrow(reassignable_cases(user, team_ids))
    chosen_team = (filter_form.cleaned_data or {}).get("team")
    # Who may take cases: active members taking new cases, of the chosen team or of any of them.
    assignable: dict[int, dict] = {}
    for load in loads:
        if chosen_team and load.team.pk != chosen_team:
            continue
        for share in load.people:
            if share.member and share.takes_new_cases and share.user.is_active:
                entry = assignable.setdefault(share.user.pk, {"user": share.user, "teams": []})
                entry["teams"].append(load.team.name)
    cases = cases.select_related("loan__borrower", "assignee", "team").order_by("-priority", "pk")
    page = Paginator(cases, PAGE_SIZE).get_page(filters.get("page"))
    for case in page:
        case.dpd = case.loan.days_past_due(today)
    selected = set()
    if form is not None and form.is_bound and form.errors:
        selected = {value for value in form.data.getlist("cases") if value.isdigit()}
    query = filters.copy()
    query.pop("page", None)
    return {
        "teams": teams,
        "loads": loads,
        "today": today,
        "filter_form": filter_form,
        "page": page,
        "query": query.urlencode(),
        "filters": filters.urlencode(),
        "form": form,
        "selected": selected,
        "assignable": sorted(assignable.values(), key=lambda entry: entry["user"].get_username()),
        "done": done,
        "reason_max": REASON_MAX,
    }


@login_required
def workload(request):
    """The teams the supervisor supervises: each member's open cases, amount overdue, promise
    payments due today, contacts today; the unassigned cases; and the open cases (filtered, 100 a
    page) with a bulk reassignment form."""
    require(request.user, PERM_REASSIGN)
    context = _workload_context(request, _filters_from(request.GET.urlencode()))
    return render(request, TEMPLATES + "workload.html", context)


@login_required
@require_POST
def workload_reassign(request):
    """Give the chosen cases to a member of their team. Posted case ids are trusted only among the
    open cases of the supervisor's teams: any other refuses the whole reassignment."""
    user = request.user
    require(user, PERM_REASSIGN)
    team_ids = list(supervised_teams(user).values_list("pk", flat=True))
    form = ReassignForm(request.POST, cases=reassignable_cases(user, team_ids), team_ids=team_ids)
    filters = _filters_from(request.POST.get("filters", ""))
    moved = None
    if form.is_valid():
        try:
            moved = services.cases_reassign(
                cases=form.cleaned_data["cases"],
                assignee=form.cleaned_data["assignee"],
                actor=user,
                reason=form.cleaned_data["reason"],
            )
        except (ValidationError, PermissionDenied) as exc:
            _add_service_errors(form, exc)
    if moved is None:
        context = _workload_context(request, filters, form=form)
        if _htmx(request):
            return render(request, TEMPLATES + "workload_body.html", context, status=422)
        return render(request, TEMPLATES + "workload.html", context)
    assignee = form.cleaned_data["assignee"].get_username()
    chosen = len(form.cleaned_data["cases"])
    message = _(
        "Reassigned to %(user)s: %(moved)s of %(chosen)s chosen cases (the others were theirs already)."
    ) % {
        "user": assignee,
        "moved": moved,
        "chosen": chosen,
    }
    if moved == chosen:
        message = _("Reassigned to %(user)s: %(moved)s cases.") % {"user": assignee, "moved": moved}
    if _htmx(request):
        context = _workload_context(request, filters, done=message)
        return render(request, TEMPLATES + "workload_body.html", context)
    messages.success(request, message)
    url = reverse("work:workload")
    return redirect(f"{url}?{filters.urlencode()}" if filters else url)


# --- override requests ----------------------------------------------------------------------------


class OverrideDecisionForm(forms.Form):
    decision = forms.ChoiceField(
        choices=[("grant", gettext_lazy("Grant")), ("decline", gettext_lazy("Decline"))]
    )
    reason = forms.CharField(
        label=gettext_lazy("Reason"),
        max_length=500,
        error_messages={"required": gettext_lazy("Give a reason.")},
    )
    hours = forms.IntegerField(
        label=gettext_lazy("Valid for (hours)"),
        min_value=1,
        max_value=MAX_HOURS,
        required=False,
        initial=DEFAULT_HOURS,
    )


@dataclass
class RequestRow:
    request: OverrideRequest
    is_own: bool

    @property
    def reasons(self) -> list[tuple[str, str]]:
        return [(code, reason_label(code)) for code in self.request.reasons]

    @property
    def contact_point(self) -> str:
        point = self.request.contact_point
        if point is None:
            return ""
        masked = mask_contact_value(point.kind, point.value)
        parts = []  # the channel is shown beside it: the label says which number
        if point.kind == point.Kind.PHONE:
            parts.append(str(point.get_label_display()))
        parts.append(masked)
        if point.is_third_party:
            parts.append(_("third party: %(relationship)s") % {"relationship": point.relationship})
        return " · ".join(parts)

    @property
    def decide_url(self) -> str:
        return reverse("work:override_decide", args=[self.request.pk])


def _requests(user) -> QuerySet[OverrideRequest]:
    return with_case(user, override_requests_pending(borrowers=visible_borrowers(user)))


def _overrides_page(request, *, failed: tuple[int, OverrideDecisionForm] | None = None):
    user = request.user
    pending = _requests(user)
    decided = with_case(user, override_requests_decided(borrowers=visible_borrowers(user)))[:DECIDED_LIMIT]
    context = {
        "rows": [RequestRow(r, r.requested_by_id == user.pk) for r in pending[:QUEUE_LIMIT]],
        "total": pending.count(),
        "decided": [RequestRow(r, r.requested_by_id == user.pk) for r in decided],
        "form": OverrideDecisionForm(),
        "failed_pk": failed[0] if failed else None,
        "failed_form": failed[1] if failed else None,
        "now": timezone.now(),
        "max_hours": MAX_HOURS,
        "default_hours": DEFAULT_HOURS,
    }
    return render(request, TEMPLATES + "overrides.html", context)


@login_required
def overrides(request):
    """Override requests waiting for a decision on the borrowers of the cases the supervisor sees,
    oldest first, with the reasons the rules gave and the collector's note; recent decisions below."""
    require(request.user, PERM_OVERRIDES)
    return _overrides_page(request)


@login_required
@require_POST
def override_decide(request, pk):
    """Grant (for a number of hours, 24 unless chosen, 72 at most) or decline a request, with a reason."""
    user = request.user
    require(user, PERM_OVERRIDES)
    queryset = with_case(user, OverrideRequest.objects.filter(borrower__in=visible_borrowers(user)))
    queryset = queryset.select_related(
        "borrower", "loan", "contact_point", "requested_by", "decided_by", "override"
    )
    override_request = get_object_or_404(queryset, pk=pk)
    form = OverrideDecisionForm(request.POST)
    decided = None
    if form.is_valid():
        values = form.cleaned_data
        try:
            if values["decision"] == "grant":
                hours = values["hours"] or DEFAULT_HOURS
                decided = override_request_grant(
                    request=override_request,
                    actor=user,
                    reason=values["reason"],
                    valid_for=timedelta(hours=hours),
                )
            else:
                decided = override_request_decline(
                    request=override_request, actor=user, reason=values["reason"]
                )
        except (ValidationError, PermissionDenied) as exc:
            _add_service_errors(form, exc)
    row = RequestRow(queryset.get(pk=pk), override_request.requested_by_id == user.pk)
    context = {
        "row": row,
        "form": form,
        "now": timezone.now(),
        "max_hours": MAX_HOURS,
        "default_hours": DEFAULT_HOURS,
    }
    if decided is None:
        if _htmx(request):
            return render(request, TEMPLATES + "override_row.html", context, status=422)
        return _overrides_page(request, failed=(override_request.pk, form))
    if decided.status == OverrideRequest.Status.GRANTED:
        message = _("Override granted for %(borrower)s, valid until %(until)s") % {
            "borrower": decided.borrower.full_name,
            "until": _local(decided.override.valid_until),
        }
    else:
        message = _("Override request for %(borrower)s declined.") % {"borrower": decided.borrower.full_name}
    if _htmx(request):
        return render(request, TEMPLATES + "override_row.html", {**context, "form": None, "done": message})
    messages.success(request, message)
    return redirect("work:overrides")


def _local(moment: datetime) -> str:
    return date_format(timezone.localtime(moment), "SHORT_DATETIME_FORMAT")


def _form_messages(form: forms.Form) -> list[str]:
    return [str(message) for errors in form.errors.values() for message in errors]


class OverrideRequestForm(forms.Form):
    channel = forms.ChoiceField(label=gettext_lazy("Channel"), choices=Channel.choices)
    contact_point = forms.ModelChoiceField(
        label=gettext_lazy("Number or address"),
        queryset=None,
        required=False,
        error_messages={"invalid_choice": gettext_lazy("Choose one of the borrower's numbers or addresses.")},
    )
    reasons = forms.MultipleChoiceField(
        label=gettext_lazy("Reasons to override"),
        choices=[(code, label) for code, label in REASON_LABELS.items()],
        error_messages={"required": gettext_lazy("Name the denial reasons to override.")},
    )
    note = forms.CharField(
        label=gettext_lazy("Why this contact is needed now"),
        max_length=500,
        error_messages={"required": gettext_lazy("Say why the contact is needed.")},
    )
    purpose = forms.ChoiceField(label=gettext_lazy("Purpose"), choices=Purpose.choices, required=False)

    def __init__(self, data, *, case: Case):
        super().__init__(data)
        self.fields["contact_point"].queryset = case.loan.borrower.contact_points.all()


@login_required
@require_POST
def override_request(request, pk):
    """A collector refused a contact asks a supervisor to override the rules that refused it. The
    contact form posts here: ``channel``, ``contact_point`` (id), ``reasons`` (repeated), ``note``,
    optionally ``purpose``."""
    user = request.user
    require(user, PERM_ASK_OVERRIDE)
    case = case_for(user, pk, Case.objects.select_related("loan__borrower"))
    form = OverrideRequestForm(request.POST, case=case)
    created = None
    if not case.is_open:
        form.add_error(None, _("The case is closed."))
    elif form.is_valid():
        values = form.cleaned_data
        try:
            created = override_request_create(
                borrower=case.loan.borrower,
                loan=case.loan,
                channel=values["channel"],
                contact_point=values["contact_point"],
                reasons=values["reasons"],
                note=values["note"],
                purpose=values["purpose"] or Purpose.COLLECTION,
                actor=user,
            )
        except (ValidationError, PermissionDenied) as exc:
            _add_service_errors(form, exc)
    if created is None:
        if _htmx(request):
            return render(
                request, TEMPLATES + "override_request_errors.html", {"form": form, "case": case}, status=422
            )
        for text in _form_messages(form):
            messages.error(request, text)
        return redirect("work:case", pk=case.pk)
    message = _("Override request sent: a supervisor will decide it.")
    if _htmx(request):
        context = {
            "request_row": created,
            "message": message,
            "reasons": [reason_label(code) for code in created.reasons],
        }
        return render(request, TEMPLATES + "override_request_sent.html", context)
    messages.success(request, message)
    return redirect("work:case", pk=case.pk)


urlpatterns = [
    path("approvals/", approvals, name="approvals"),
    path("approvals/restructurings/<int:pk>/", approval_restructuring, name="approval_restructuring"),
    path(
        "approvals/restructurings/<int:pk>/decide/",
        approval_restructuring_decide,
        name="approval_restructuring_decide",
    ),
    path("approvals/referrals/<int:pk>/", approval_referral, name="approval_referral"),
    path("approvals/referrals/<int:pk>/decide/", approval_referral_decide, name="approval_referral_decide"),
    path("workload/", workload, name="workload"),
    path("workload/reassign/", workload_reassign, name="workload_reassign"),
    path("overrides/", overrides, name="overrides"),
    path("overrides/<int:pk>/decide/", override_decide, name="override_decide"),
    path("cases/<int:pk>/override-request/", override_request, name="override_request"),
]
