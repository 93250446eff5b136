"""Reads for the back office's worklist and case page: querysets built for each page, and the figures
a row needs (promise due, holds, "may I call now?") computed for a whole page in a fixed number of
queries, whatever the number of rows.

The worklist is two steps: the ids of one page of cases, read from the case table through its partial
indexes (``case_worklist_idx`` for "mine", ``case_team_queue_idx`` for "my teams") and joined to the
loan or borrower only when a filter needs it; then those 50 cases with their loan and borrower. So the
database never joins a whole queue to sort it.

Visibility is ``debt_collections.visibility``'s: every queryset here starts from ``visible_cases``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.db.models import Exists, F, OuterRef, Prefetch, Q, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from compliance import contact as contact_rules
from compliance.models import (
    BorrowerFlag,
    Channel,
    ChannelOptOut,
    ContactAttempt,
    Direction,
    JurisdictionProfile,
    Purpose,
)
from compliance.pii import NATIONAL_ID, can_reveal
from debt_collections.models import (
    Case,
    CaseContact,
    CaseHold,
    ContactOutcome,
    LegalReferral,
    Notice,
    PromiseInstalment,
    PromiseToPay,
    Restructuring,
    Team,
)
from debt_collections.visibility import case_for, reads_all_cases, visible_cases
from loans.crypto import contact_lookup_hash
from loans.masking import mask_contact_value, mask_national_id
from loans.models import Borrower, ContactPoint, Installment, Loan, Payment

WORKLIST_PAGE_SIZE = 50
# The case page shows this many of the borrower's most recent contacts (a long history stays readable).
HISTORY_LIMIT = 100
MONEY_ZERO = Decimal("0.00")


def business_date(at: datetime | None = None) -> date:
    """The business day of ``at`` (default: now): the site's calendar, not the viewer's. Days past due
    and what falls due "today" are counted as the scan counts them."""
    return timezone.localdate(at or timezone.now(), timezone.get_default_timezone())


# --- the contact rules' reasons, in words ----------------------------------------------------------

CONTACT_REASON_LABELS = {
    "missing_timezone": _("time zone unknown"),
    "missing_region": _("region unknown"),
    "unknown_region": _("no rules for the region"),
    "do_not_contact": _("do not contact"),
    "dispute_hold": _("dispute"),
    "bankruptcy": _("bankruptcy"),
    "deceased": _("deceased"),
    "legal_representation": _("represented by a lawyer"),
    "cease_communication": _("asked to cease communication"),
    "vulnerable_no_visit": _("vulnerable: no field visits"),
    "channel_opt_out": _("opted out of this channel"),
    "no_consent": _("no consent to this number"),
    "invalid_contact_point": _("number known to be wrong"),
    "time_barred": _("time-barred debt"),
    "third_party_not_allowed": _("third party not allowed"),
    "field_visit_requirements": _("field visit needs two staff and a recording"),
    "quiet_hours": _("quiet hours"),
    "daily_connected_cap": _("answered calls today at the limit"),
    "daily_attempt_cap": _("unanswered calls today at the limit"),
    "seven_in_seven": _("7 calls in 7 days"),
    "post_conversation_cooldown": _("recent conversation"),
}


def contact_reason_label(code: str) -> str:
    return str(CONTACT_REASON_LABELS.get(code, code))


# --- "may the borrower be called now?", for a whole page --------------------------------------------


class _LoadedEvaluation(contact_rules._Evaluation):
    """``compliance.contact``'s evaluation of one outbound collection call, built from rows read for a
    whole page instead of by its own four queries per borrower. The rules themselves (``reasons_at``,
    the call limits, the next allowed moment) are compliance's, unchanged; only the reading differs.
    ``tests/web/test_worklist.py`` holds the two to the same decisions."""

    def __init__(self, *, borrower, profile, tz, contact_point, calls, flag_rows, opted_out):
        self.borrower, self.profile, self.tz = borrower, profile, tz
        self.channel, self.contact_point, self.purpose = Channel.CALL, contact_point, Purpose.COLLECTION
        self.direction, self.loan = Direction.OUTBOUND, None
        self.staff_count, self.recording = 1, False
        self.rules = {r.rule: r for r in profile.rules.all() if r.enabled}
        self.calls = calls
        self.flag_rows = flag_rows
        self.opted_out = opted_out
        # Only a third party's point has earlier attempts that count (a US location call is made once);
        # the worklist asks about the borrower's own phone.
        self.attempts_to_point = []


def _profile_for(region: str, profiles: list[JurisdictionProfile]) -> JurisdictionProfile | None:
    """``compliance.contact.profile_for`` over profiles read once for the page."""
    region = (region or "").strip().upper()
    if not region:
        return None
    country = region.split("-")[0]
    for profile in profiles:
        codes = profile.region_codes
        if region in codes or country in codes:
            return profile
    return None


def call_decisions(
    points: dict[int, tuple[Borrower, ContactPoint | None]], *, at: datetime
) -> dict[int, contact_rules.ContactDecision | None]:
    """``check_contact(borrower=..., channel="call", at=at, contact_point=point)`` for many borrowers
    (``{borrower id: (borrower, their own phone)}``) in five queries: the rule profiles and their rules,
    then the page's borrowers' recent calls, active flags and call opt-outs. ``None`` for a borrower
    without a phone (there is nothing to call).
    """
    if timezone.is_naive(at):
        raise ValueError("call_decisions needs an aware datetime")
    wanted = {pk: pair for pk, pair in points.items() if pair[1] is not None}
    decisions: dict[int, contact_rules.ContactDecision | None] = dict.fromkeys(points)
    if not wanted:
        return decisions
    for _borrower, point in wanted.values():
        if point.kind != ContactPoint.Kind.PHONE or point.is_third_party:
            raise ValueError("call_decisions asks about the borrower's own phone")
    profiles = list(JurisdictionProfile.objects.prefetch_related("rules"))
    ids = list(wanted)
    calls: dict[int, list[dict]] = defaultdict(list)
    for row in ContactAttempt.objects.filter(
        borrower_id__in=ids,
        channel=Channel.CALL,
        at__gte=at - timedelta(days=contact_rules.LOOKBACK_DAYS),
    ).values(
        "borrower_id", "at", "direction", "connected", "answered", "right_party", "consented",
        "contact_point_id", "purpose",
    ):  # fmt: skip
        calls[row.pop("borrower_id")].append(row)
    flags: dict[int, list[tuple]] = defaultdict(list)
    for borrower_id, kind, until in BorrowerFlag.objects.filter(
        borrower_id__in=ids, released_at__isnull=True
    ).values_list("borrower_id", "kind", "until"):
        flags[borrower_id].append((kind, until))
    opt_outs: dict[int, set[int | None]] = defaultdict(set)
    for borrower_id, point_id in ChannelOptOut.objects.filter(
        borrower_id__in=ids, channel=Channel.CALL
    ).values_list("borrower_id", "contact_point_id"):
        opt_outs[borrower_id].add(point_id)

    for pk, (borrower, point) in wanted.items():
        tz = contact_rules._zone(borrower.time_zone)
        profile = _profile_for(borrower.region, profiles)
        missing = []
        if tz is None:
            missing.append(
                contact_rules.Reason(
                    "missing_timezone", gettext("The borrower's time zone is unknown: contact fails closed.")
                )
            )
        if not borrower.region:
            missing.append(
                contact_rules.Reason(
                    "missing_region", gettext("The borrower's region is unknown: contact fails closed.")
                )
            )
        elif profile is None:
            missing.append(
                contact_rules.Reason(
                    "unknown_region", gettext("No rule profile covers region %(r)s.") % {"r": borrower.region}
                )
            )
        if missing:
            decisions[pk] = contact_rules.ContactDecision(
                False, tuple(r.code for r in missing), tuple(missing), None, profile and profile.code
            )
            continue
        evaluation = _LoadedEvaluation(
            borrower=borrower,
            profile=profile,
            tz=tz,
            contact_point=point,
            calls=calls.get(pk, []),
            flag_rows=flags.get(pk, []),
            opted_out=point.opted_out or bool(opt_outs.get(pk, set()) & {None, point.pk}),
        )
        reasons = evaluation.reasons_at(at)
        local = at.astimezone(tz)
        if not reasons:
            decisions[pk] = contact_rules.ContactDecision(True, (), (), at, profile.code, local)
        else:
            decisions[pk] = contact_rules.ContactDecision(
                False,
                tuple(dict.fromkeys(r.code for r in reasons)),
                tuple(reasons),
                contact_rules._next_allowed(evaluation, reasons),
                profile.code,
                local,
            )
    return decisions


@dataclass(frozen=True)
class CallBadge:
    """The worklist's "call now?" cell."""

    allowed: bool
    no_phone: bool = False
    reason: str = ""  # the first reason's code
    reason_label: str = ""
    more: int = 0  # further reasons
    next_allowed_at: datetime | None = None
    local_time: datetime | None = None

    @classmethod
    def of(cls, decision: contact_rules.ContactDecision | None) -> CallBadge:
        if decision is None:
            return cls(allowed=False, no_phone=True)
        if decision.allowed:
            return cls(allowed=True, local_time=decision.local_time)
        first = decision.reasons[0]
        return cls(
            allowed=False,
            reason=first,
            reason_label=contact_reason_label(first),
            more=len(decision.reasons) - 1,
            next_allowed_at=decision.next_allowed_at,
            local_time=decision.local_time,
        )


def own_phone(points) -> ContactPoint | None:
    """The phone a collector calls: the borrower's own primary phone, else their first own phone."""
    phones = [p for p in points if p.kind == ContactPoint.Kind.PHONE and not p.is_third_party]
    phones.sort(key=lambda p: (not p.is_primary, p.pk))
    return phones[0] if phones else None


# --- the worklist ----------------------------------------------------------------------------------


class Scope:
    MINE = "mine"
    TEAMS = "teams"
    ALL = "all"
    LABELS = {MINE: _("Mine"), TEAMS: _("My teams"), ALL: _("All open cases")}


def worklist_scopes(user) -> list[str]:
    """The tabs a user has: their own cases, their teams' cases, and everything for those who read
    every case (compliance officers)."""
    scopes = [Scope.MINE, Scope.TEAMS]
    if reads_all_cases(user):
        scopes.append(Scope.ALL)
    return scopes


def worklist_default_scope(user) -> str:
    """Collectors start on their own cases, supervisors on their teams', compliance on everything."""
    if reads_all_cases(user):
        return Scope.ALL
    if user.has_perm("debt_collections.reassign_case"):
        return Scope.TEAMS
    return Scope.MINE


def own_team_ids(user) -> list[int]:
    """Teams the user belongs to or supervises (not every team, even for those who read all)."""
    return list(
        Team.objects.filter(Q(memberships__user=user) | Q(supervisors=user))
        .values_list("id", flat=True)
        .distinct()
    )


def search_filter(term: str) -> Q | None:
    """Cases whose borrower's name starts with ``term``, whose borrower's own phone or e-mail is
    ``term`` (compared through the keyed hash ``ContactPoint.value_hash``: no number is read or
    decrypted), or whose loan reference is exactly ``term``. None for an empty term.

    Each way of matching is its own index lookup (the borrower name prefix index, the contact hash
    index, the loan reference index), united into one set of loan ids: the database never joins a
    queue of cases to every loan and borrower to test the term against each.
    """
    term = " ".join((term or "").split())
    if not term:
        return None
    matches = [Loan.objects.filter(external_ref=term).values("id")]
    hashes = [h for h in (contact_lookup_hash("phone", term),) if h]
    if "@" in term:
        hashes.append(contact_lookup_hash("email", term))
    if hashes:
        owners = ContactPoint.objects.filter(value_hash__in=hashes, is_third_party=False).values(
            "borrower_id"
        )
        matches.append(Loan.objects.filter(borrower_id__in=owners).values("id"))
    looks_like_a_number = not any(c.isalpha() for c in term)
    if "@" not in term and not looks_like_a_number:
        matches.append(Loan.objects.filter(borrower__full_name__startswith=term).values("id"))
    loans = matches[0].union(*matches[1:]) if len(matches) > 1 else matches[0]
    return Q(loan_id__in=loans)


def _open_promise_paid(as_of: date, *, case_ref: str = "pk", loan_ref: str = "loan_id") -> Coalesce:
    """Posted payments on the case's loan valued from the day its open promise was made to ``as_of``
    (what the scan counts towards a promise); needs the ``promise_made_on`` annotation."""
    paid = (
        Payment.objects.filter(
            loan_id=OuterRef(loan_ref),
            status=Payment.Status.POSTED,
            value_date__gte=OuterRef("promise_made_on"),
            value_date__lte=as_of,
        )
        .order_by()
        .values("loan_id")
        .annotate(total=Sum("amount"))
        .values("total")
    )
    return Coalesce(Subquery(paid[:1]), Value(MONEY_ZERO))


def promise_due_today(queryset: QuerySet[Case], as_of: date) -> QuerySet[Case]:
    """Cases whose open promise has an instalment due on ``as_of`` that the payments since the promise
    was made do not yet cover (with the instalments before it)."""
    open_promise = PromiseToPay.objects.filter(case_id=OuterRef("pk"), status=PromiseToPay.Status.OPEN)
    open_instalments = PromiseInstalment.objects.filter(
        promise__case_id=OuterRef("pk"), promise__status=PromiseToPay.Status.OPEN
    )
    owed_by_today = (
        open_instalments.filter(due_date__lte=as_of)
        .order_by()
        .values("promise_id")
        .annotate(total=Sum("amount"))
        .values("total")
    )
    return (
        queryset.filter(Exists(open_instalments.filter(due_date=as_of)))
        .annotate(promise_made_on=Subquery(open_promise.values("made_on")[:1]))
        .annotate(promise_owed=Subquery(owed_by_today[:1]), promise_paid=_open_promise_paid(as_of))
        .filter(promise_owed__gt=F("promise_paid"))
    )


def callback_due(queryset: QuerySet[Case], as_of: date) -> QuerySet[Case]:
    """Cases whose latest contact is the borrower's request to be called back, with the call-back day
    (which ``contact_log`` makes the case's next action date) today or past. Any contact logged after
    the request (the call back itself) takes the case off the list."""
    last_outcome = (
        CaseContact.objects.filter(case_id=OuterRef("pk")).order_by("-attempt__at", "-id").values("outcome")
    )
    return queryset.annotate(last_outcome=Subquery(last_outcome[:1])).filter(
        last_outcome=ContactOutcome.CALLBACK_REQUESTED, next_action_date__lte=as_of
    )


def worklist_case_ids(
    *,
    user,
    scope: str,
    as_of: date,
    stage: str = "",
    bucket: str = "",
    promise_due: bool = False,
    callback: bool = False,
    search: str = "",
) -> QuerySet:
    """The ids of the open cases on the user's worklist, highest priority first: a values queryset
    to paginate (``worklist_rows`` then reads one page of them)."""
    cases = visible_cases(user, Case.objects.filter(status=Case.Status.OPEN))
    if scope == Scope.MINE:
        cases = cases.filter(assignee=user)
    elif scope == Scope.TEAMS:
        cases = cases.filter(team_id__in=own_team_ids(user))
    elif scope != Scope.ALL or not reads_all_cases(user):
        return cases.none().values_list("id", flat=True)
    if stage:
        cases = cases.filter(stage=stage)
    if bucket:
        cases = cases.filter(loan__bucket=bucket)
    condition = search_filter(search)
    if condition is not None:
        cases = cases.filter(condition)
    if promise_due:
        cases = promise_due_today(cases, as_of)
    if callback:
        cases = callback_due(cases, as_of)
    return cases.order_by("-priority", "id").values_list("id", flat=True)


@dataclass(frozen=True)
class PromiseDue:
    """The next instalment of an open promise that payments have not covered yet."""

    due_date: date
    amount: Decimal  # still to pay on it
    currency: str
    number: int
    count: int
    state: str  # "late" (its date has passed), "today" or "later"


def next_promise_instalment(
    promise: PromiseToPay, paid: Decimal, currency: str, as_of: date
) -> PromiseDue | None:
    """Walk the instalments in order, paying each from what was paid since the promise was made; the
    first one left short is the next due. None when the payments cover them all."""
    instalments = list(promise.instalments.all())
    covered = paid
    for instalment in instalments:
        if covered >= instalment.amount:
            covered -= instalment.amount
            continue
        if instalment.due_date < as_of:
            state = "late"
        else:
            state = "today" if instalment.due_date == as_of else "later"
        return PromiseDue(
            due_date=instalment.due_date,
            amount=instalment.amount - covered,
            currency=currency,
            number=instalment.number,
            count=len(instalments),
            state=state,
        )
    return None


WORKLIST_FIELDS = (
    "id", "stage", "priority", "next_action_date", "assignee_id", "assignee__username", "team_id",
    "loan_id", "loan__external_ref", "loan__currency", "loan__bucket", "loan__oldest_unpaid_due_date",
    "loan__overdue_principal", "loan__overdue_interest", "loan__overdue_fee", "loan__overdue_penalty",
    "loan__borrower_id", "loan__borrower__full_name", "loan__borrower__time_zone",
    "loan__borrower__region",
)  # fmt: skip


def worklist_rows(ids: list[int], *, as_of: date, at: datetime) -> list[Case]:
    """One page of cases, in the order of ``ids``, each with what its row shows: ``dpd``,
    ``active_holds``, ``promise_due`` (a ``PromiseDue`` or None), ``last_outcome`` and ``call``
    (a ``CallBadge``). Ten queries whatever the number of rows; the borrower's national ID (an
    encrypted column) is never read."""
    if not ids:
        return []
    open_promises = (
        PromiseToPay.objects.filter(status=PromiseToPay.Status.OPEN)
        .annotate(promise_made_on=F("made_on"))
        .annotate(paid_since=_open_promise_paid(as_of, loan_ref="case__loan_id"))
    )
    last_outcome = (
        CaseContact.objects.filter(case_id=OuterRef("pk")).order_by("-attempt__at", "-id").values("outcome")
    )
    cases = (
        Case.objects.filter(pk__in=ids)
        .select_related("loan__borrower", "assignee")
        .only(*WORKLIST_FIELDS)
        .annotate(last_outcome=Subquery(last_outcome[:1]))
        .prefetch_related(
            Prefetch(
                "holds",
                queryset=CaseHold.objects.filter(released_at__isnull=True)
                .filter(Q(until__isnull=True) | Q(until__gte=as_of))
                .order_by("set_at"),
                to_attr="active_holds",
            ),
            Prefetch(
                "promises",
                queryset=open_promises.prefetch_related(
                    Prefetch("instalments", queryset=PromiseInstalment.objects.order_by("number"))
                ),
                to_attr="open_promises",
            ),
            Prefetch(
                "loan__borrower__contact_points",
                queryset=ContactPoint.objects.filter(kind=ContactPoint.Kind.PHONE, is_third_party=False),
                to_attr="own_phones",
            ),
        )
    )
    by_id = {case.pk: case for case in cases}
    rows = [by_id[pk] for pk in ids if pk in by_id]
    phones = {}
    for case in rows:
        borrower = case.loan.borrower
        phones[borrower.pk] = (borrower, own_phone(borrower.own_phones))
    decisions = call_decisions(phones, at=at)
    for case in rows:
        loan = case.loan
        case.dpd = loan.days_past_due(as_of)
        case.overdue_total = loan.overdue_total
        promise = case.open_promises[0] if case.open_promises else None
        case.promise_due = (
            next_promise_instalment(promise, promise.paid_since, loan.currency, as_of) if promise else None
        )
        case.call = CallBadge.of(decisions[loan.borrower_id])
        case.callback = case.last_outcome == ContactOutcome.CALLBACK_REQUESTED
    return rows


# --- the case page ---------------------------------------------------------------------------------


def case_detail(*, user, pk) -> Case:
    """The case ``pk`` if ``user`` may see it (404 otherwise), with its loan, borrower, product,
    assignee and team."""
    queryset = Case.objects.select_related(
        "loan__borrower", "loan__product", "loan__partner", "assignee", "team"
    )
    return case_for(user, pk, queryset)


@dataclass(frozen=True)
class MaskedValue:
    """A piece of personal data as the case page shows it: masked, with the ``pii_reveal`` field name
    that unmasks it."""

    field: str
    label: str
    masked: str

    @property
    def dom_id(self) -> str:
        return "pii-" + self.field.replace(":", "-").replace("_", "-")


def installment_state(installment: Installment, as_of: date) -> str:
    if installment.outstanding <= 0:
        return "paid"
    if installment.due_date < as_of:
        return "overdue"
    if installment.total_paid > 0:
        return "part_paid"
    return "due"


def case_page(case: Case, *, user, as_of: date) -> dict:
    """Everything the case page shows besides the case itself, each list in one query (prefetched),
    so the page costs the same for a borrower with one loan and three contacts as for one with five
    loans and a hundred contacts."""
    borrower = case.loan.borrower
    points = list(borrower.contact_points.order_by("kind", "-is_primary", "is_third_party", "id"))
    masked_points = []
    for point in points:
        point.pii = MaskedValue(
            field=f"contact_point:{point.pk}",
            label=f"{point.get_kind_display()} ({point.get_label_display()})",
            masked=mask_contact_value(point.kind, point.value),
        )
        masked_points.append(point)
    national_id = (
        MaskedValue(
            field=NATIONAL_ID,
            label=str(Borrower._meta.get_field("national_id").verbose_name),
            masked=mask_national_id(borrower.national_id),
        )
        if borrower.national_id
        else None
    )
    flags = list(
        BorrowerFlag.objects.filter(borrower=borrower, released_at__isnull=True)
        .filter(Q(until__isnull=True) | Q(until__gte=as_of))
        .select_related("set_by")
        .order_by("-set_at")
    )

    current_schedule = Installment.objects.filter(schedule_version=F("loan__schedule_version")).order_by(
        "number"
    )
    loans = list(
        Loan.objects.filter(borrower=borrower)
        .select_related("product")
        .prefetch_related(
            Prefetch("installments", queryset=current_schedule, to_attr="schedule"),
            Prefetch(
                "payments", queryset=Payment.objects.order_by("-value_date", "-id"), to_attr="payment_list"
            ),
            Prefetch(
                "cases",
                queryset=visible_cases(user, Case.objects.filter(status=Case.Status.OPEN)).only(
                    "id", "loan_id", "stage"
                ),
                to_attr="open_cases",
            ),
        )
        .order_by("-start_date", "-id")
    )
    loans.sort(key=lambda loan: loan.pk != case.loan_id)  # the case's own loan first
    for loan in loans:
        loan.dpd = loan.days_past_due(as_of)
        for row in loan.schedule:
            row.state = installment_state(row, as_of)

    transitions = list(case.transitions.select_related("actor").order_by("at", "id"))
    holds = list(
        case.holds.filter(released_at__isnull=True)
        .filter(Q(until__isnull=True) | Q(until__gte=as_of))
        .select_related("set_by")
        .order_by("set_at")
    )
    history = list(
        ContactAttempt.objects.filter(borrower=borrower)
        .select_related(
            "actor",
            "contact_point",
            "loan",
            "case_contact",
            "case_contact__created_by",
            "case_contact__second_staff",
        )  # fmt: skip
        .order_by("-at", "-id")[: HISTORY_LIMIT + 1]
    )
    history_truncated = len(history) > HISTORY_LIMIT
    history = history[:HISTORY_LIMIT]
    outcome_labels = dict(ContactOutcome.choices)
    for attempt in history:
        contact = getattr(attempt, "case_contact", None)
        attempt.contact = contact
        attempt.outcome_label = outcome_labels.get(attempt.outcome, attempt.outcome)
        attempt.agent = contact.created_by if contact else attempt.actor
        attempt.point_masked = (
            mask_contact_value(attempt.contact_point.kind, attempt.contact_point.value)
            if attempt.contact_point
            else ""
        )
    promises = list(
        case.promises.select_related("created_by")
        .prefetch_related(Prefetch("instalments", queryset=PromiseInstalment.objects.order_by("number")))
        .order_by("-made_on", "-id")
    )
    notices = list(
        Notice.objects.filter(case=case)
        .select_related("created_by", "contact_point")
        .order_by("-queued_on", "-id")
    )
    for notice in notices:
        notice.point_masked = (
            mask_contact_value(notice.contact_point.kind, notice.contact_point.value)
            if notice.contact_point
            else ""
        )
        notice.reason_labels = [contact_reason_label(code) for code in notice.reason_codes or []]
    restructurings = list(
        Restructuring.objects.filter(case=case)
        .select_related("proposed_by", "decided_by", "loan")
        .order_by("-proposed_at")
    )
    referrals = list(
        LegalReferral.objects.filter(case=case)
        .select_related("requested_by", "decided_by")
        .order_by("-requested_at")
    )
    return {
        "borrower": borrower,
        "national_id": national_id,
        "contact_points": masked_points,
        "flags": flags,
        "loans": loans,
        "transitions": transitions,
        "holds": holds,
        "history": history,
        "history_truncated": history_truncated,
        "history_limit": HISTORY_LIMIT,
        "promises": promises,
        "notices": notices,
        "restructurings": restructurings,
        "referrals": referrals,
        "can_reveal": can_reveal(user),
        "dpd": case.loan.days_past_due(as_of),
    }
