"""``/api/v1/cases/``: the cases a caller may see, with their loan's delinquency, and the work done on
them: contacts (``contacts/``), promises to pay (``promises/``) and notices (``notices/``).

A partner sees its own loans' cases; a collector the cases assigned to them or to their team;
supervisors and compliance officers every case (``api.access.cases_visible``). Reads need
``cases:read`` (staff: the model's view permission), actions ``cases:write`` (staff: its add
permission); the services check the person's rights again and answer 403 when they lack them.

The list is one query a page (the case with its loan, partner, assignee and team joined) whatever the
filters: days past due is ``as_of - loan.oldest_unpaid_due_date`` (``loans.delinquency``), so the
``dpd_min``/``dpd_max`` filters become bounds on that indexed date rather than a per-row computation.
"""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.db.models import Prefetch, Q
from django.http import Http404
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from api.access import Access, cases_visible
from api.idempotency import idempotent
from api.lookup import MAX_ID, id_lookup
from api.serializers import PositiveMoney, StrictSerializer
from api.views.base import ApiViewSet
from compliance.models import Channel, Direction, Purpose
from debt_collections import contacts, notices, services
from debt_collections.models import (
    Case,
    CaseContact,
    CaseHold,
    ContactOutcome,
    Notice,
    NoticeChannel,
    PromiseToPay,
    StageChoices,
    StageTransition,
)
from loans.delinquency import days_past_due
from loans.exceptions import field_error
from loans.models import Bucket, ContactPoint

# How far from now a time the API is given may lie: the contact rules look back and forward in days
# from it, and a year either way is more than any real question or late log needs.
MAX_SKEW = timedelta(days=366)
MAX_DPD = 36_500
TRANSITIONS_SHOWN = 10
# A field visit needs a second member of staff and its recording: it is logged in the back office.
API_CONTACT_CHANNELS = [(value, label) for value, label in Channel.choices if value != Channel.VISIT]


# --- shared fields and helpers ---------------------------------------------------------------------


class AwareDateTimeField(serializers.DateTimeField):
    """A moment with its UTC offset ("2026-03-01T10:00:00+08:00"), within a year of now: the contact
    rules read the borrower's local time from it, so a time without an offset is refused rather than
    guessed."""

    def to_internal_value(self, value):
        if isinstance(value, str):
            try:
                parsed = parse_datetime(value.strip())
            except ValueError:
                parsed = None
            if parsed is not None and timezone.is_naive(parsed):
                raise serializers.ValidationError(
                    _('Give the time with its UTC offset, e.g. "2026-03-01T10:00:00+08:00".')
                )
        moment = super().to_internal_value(value)
        now = timezone.now()
        if not (now - MAX_SKEW <= moment <= now + MAX_SKEW):
            raise serializers.ValidationError(_("The time must be within a year of now."))
        return moment


class IdField(serializers.IntegerField):
    """A record's id in a request body."""

    def __init__(self, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(**kwargs)


class IdLookupMixin:
    """``/x/123/``: records with no reference of the partner's own. Anything but a positive id, or a
    record the caller may not see, is 404."""

    lookup_field = "pk"
    lookup_url_kwarg = "id"
    lookup_value_regex = r"[^/]+"

    def get_object(self):
        found = self.get_queryset().filter(pk=id_lookup(self.kwargs["id"])).first()
        if found is None:
            raise Http404
        self.check_object_permissions(self.request, found)
        return found


def visible_case(request, case_id: int) -> Case:
    """The case a request body names, if the caller may see it (else 404, as for a path id)."""
    found = cases_visible(Case.objects.select_related("loan"), request).filter(pk=case_id).first()
    if found is None:
        raise Http404
    return found


class UserRef(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()


class TeamRef(serializers.Serializer):
    id = serializers.IntegerField()
    code = serializers.CharField()
    name = serializers.CharField()


# --- cases -----------------------------------------------------------------------------------------


class OverdueOut(serializers.Serializer):
    principal = serializers.DecimalField(max_digits=18, decimal_places=2, source="overdue_principal")
    interest = serializers.DecimalField(max_digits=18, decimal_places=2, source="overdue_interest")
    fee = serializers.DecimalField(max_digits=18, decimal_places=2, source="overdue_fee")
    penalty = serializers.DecimalField(max_digits=18, decimal_places=2, source="overdue_penalty")
    total = serializers.DecimalField(max_digits=18, decimal_places=2, source="overdue_total")


class DelinquencyOut(serializers.Serializer):
    """The loan's figures (kept current by the nightly scan and by every payment), with days past due
    as of the day of the request."""

    as_of = serializers.SerializerMethodField()
    dpd = serializers.SerializerMethodField(help_text="Days past due as of `as_of`.")
    bucket = serializers.CharField()
    oldest_unpaid_due_date = serializers.DateField(allow_null=True)
    overdue = OverdueOut(source="*")
    outstanding_principal = serializers.DecimalField(max_digits=18, decimal_places=2)
    currency = serializers.CharField()

    def get_as_of(self, loan) -> str:
        return self.context["as_of"].isoformat()

    def get_dpd(self, loan) -> int:
        return days_past_due(loan.oldest_unpaid_due_date, self.context["as_of"])


class CaseListOut(serializers.ModelSerializer):
    loan = serializers.IntegerField(source="loan_id")
    loan_ref = serializers.CharField(source="loan.external_ref")
    partner = serializers.CharField(source="loan.partner.code")
    borrower = serializers.IntegerField(source="loan.borrower_id")
    assignee = UserRef(allow_null=True)
    team = TeamRef(allow_null=True)
    dpd = serializers.SerializerMethodField(help_text="Days past due today.")
    bucket = serializers.CharField(source="loan.bucket")
    overdue_total = serializers.DecimalField(max_digits=18, decimal_places=2, source="loan.overdue_total")
    currency = serializers.CharField(source="loan.currency")

    class Meta:
        model = Case
        fields = [
            "id", "loan", "loan_ref", "partner", "borrower", "status", "stage", "stage_entered_on",
            "priority", "next_action_date", "assignee", "team", "dpd", "bucket", "overdue_total", "currency",
            "opened_on", "closed_on", "close_reason",
        ]  # fmt: skip

    def get_dpd(self, case) -> int:
        return days_past_due(case.loan.oldest_unpaid_due_date, self.context["as_of"])


class HoldOut(serializers.ModelSerializer):
    class Meta:
        model = CaseHold
        fields = ["id", "reason", "until", "set_at"]


class PromiseInstalmentOut(serializers.Serializer):
    number = serializers.IntegerField()
    due_date = serializers.DateField()
    amount = serializers.DecimalField(max_digits=18, decimal_places=2)


class PromiseOut(serializers.ModelSerializer):
    instalments = PromiseInstalmentOut(many=True, read_only=True)
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = PromiseToPay
        fields = [
            "id", "case", "status", "amount", "promised_date", "made_on", "paid_amount", "resolved_on",
            "instalments", "created_by", "created_at",
        ]  # fmt: skip


class TransitionOut(serializers.ModelSerializer):
    by = serializers.SerializerMethodField(help_text="Who moved it; null: the nightly scan.")

    class Meta:
        model = StageTransition
        fields = ["from_stage", "to_stage", "close_reason", "at", "as_of", "by", "reason"]

    def get_by(self, transition) -> str | None:
        return transition.actor.get_username() if transition.actor_id else None


class CaseOut(CaseListOut):
    borrower_ref = serializers.CharField(source="loan.borrower.external_ref")
    referral_recommended_on = serializers.DateField(allow_null=True)
    holds = serializers.SerializerMethodField(help_text="Holds in force (they freeze escalation).")
    open_promise = serializers.SerializerMethodField()
    transitions = serializers.SerializerMethodField(help_text="The latest stage changes, newest first.")
    delinquency = DelinquencyOut(source="loan")

    class Meta(CaseListOut.Meta):
        fields = [
            *CaseListOut.Meta.fields, "borrower_ref", "referral_recommended_on", "broken_promises", "holds",
            "open_promise", "transitions", "delinquency",
        ]  # fmt: skip

    @extend_schema_field(HoldOut(many=True))
    def get_holds(self, case):
        as_of = self.context["as_of"]
        holds = [h for h in case.active_holds if h.until is None or h.until >= as_of]
        return HoldOut(holds, many=True).data

    @extend_schema_field(PromiseOut(allow_null=True))
    def get_open_promise(self, case):
        promise = case.open_promises[0] if case.open_promises else None
        return PromiseOut(promise).data if promise else None

    @extend_schema_field(TransitionOut(many=True))
    def get_transitions(self, case):
        latest = case.transitions.select_related("actor").order_by("-at", "-id")[:TRANSITIONS_SHOWN]
        return TransitionOut(latest, many=True).data


@extend_schema_field(OpenApiTypes.INT)
class DaysFilter(filters.NumberFilter):
    field_class = forms.IntegerField


@extend_schema_field(OpenApiTypes.INT)
class IdFilter(filters.NumberFilter):
    field_class = forms.IntegerField


class CaseFilter(filters.FilterSet):
    stage = filters.ChoiceFilter(choices=StageChoices.choices)
    status = filters.ChoiceFilter(choices=Case.Status.choices)
    bucket = filters.ChoiceFilter(field_name="loan__bucket", choices=Bucket.choices, help_text="The loan's.")
    assignee = filters.CharFilter(method="filter_assignee", help_text="A user id or a username.")
    team = filters.CharFilter(method="filter_team", help_text="A team id or code.")
    loan = IdFilter(field_name="loan_id", min_value=1, max_value=MAX_ID)
    loan_ref = filters.CharFilter(field_name="loan__external_ref", help_text="The partner's loan reference.")
    dpd_min = DaysFilter(
        method="filter_dpd_min", min_value=0, max_value=MAX_DPD, help_text="Days past due today, at least."
    )
    dpd_max = DaysFilter(
        method="filter_dpd_max", min_value=0, max_value=MAX_DPD, help_text="Days past due today, at most."
    )

    class Meta:
        model = Case
        fields = ["stage", "status", "bucket", "assignee", "team", "loan", "loan_ref", "dpd_min", "dpd_max"]

    def filter_assignee(self, queryset, name, value):
        if value.isascii() and value.isdigit():
            return queryset.filter(assignee_id=int(value)) if int(value) <= MAX_ID else queryset.none()
        return queryset.filter(assignee__username=value)

    def filter_team(self, queryset, name, value):
        if value.isascii() and value.isdigit():
            return queryset.filter(team_id=int(value)) if int(value) <= MAX_ID else queryset.none()
        return queryset.filter(team__code=value)

    # DPD d means oldest_unpaid_due_date = today - d (and 0 when nothing is unpaid or it is not yet due),
    # so "at least n" is a date at or before today - n and "at most n" one at or after it, or none.
    def filter_dpd_min(self, queryset, name, value):
        if value <= 0:
            return queryset
        return queryset.filter(loan__oldest_unpaid_due_date__lte=timezone.localdate() - timedelta(days=value))

    def filter_dpd_max(self, queryset, name, value):
        bound = timezone.localdate() - timedelta(days=value)
        return queryset.filter(
            Q(loan__oldest_unpaid_due_date__gte=bound) | Q(loan__oldest_unpaid_due_date__isnull=True)
        )


# --- contacts, promises, notices -------------------------------------------------------------------


class PromiseInstalmentIn(StrictSerializer):
    due_date = serializers.DateField()
    amount = PositiveMoney()


class ContactIn(StrictSerializer):
    channel = serializers.ChoiceField(choices=API_CONTACT_CHANNELS)
    outcome = serializers.ChoiceField(choices=ContactOutcome.choices)
    direction = serializers.ChoiceField(choices=Direction.choices, default=Direction.OUTBOUND)
    contact_point = IdField(
        required=False, allow_null=True, default=None, help_text="One of the borrower's contact points."
    )
    notes = serializers.CharField(max_length=contacts.NOTES_MAX, default="", allow_blank=True)
    occurred_at = AwareDateTimeField(
        required=False, allow_null=True, default=None, help_text="With its UTC offset; default: now."
    )
    callback_on = serializers.DateField(
        required=False, allow_null=True, default=None, help_text="With outcome callback_requested."
    )
    promise_instalments = PromiseInstalmentIn(
        many=True, required=False, max_length=services.PROMISE_MAX_INSTALMENTS,
        help_text="With outcome promise_to_pay: what the borrower promised, and when.",
    )  # fmt: skip
    purpose = serializers.ChoiceField(choices=Purpose.choices, default=Purpose.COLLECTION)


class DecisionOut(serializers.Serializer):
    """What the contact rules decided (``compliance.contact.check_contact``)."""

    allowed = serializers.BooleanField()
    reasons = serializers.ListField(
        child=serializers.CharField(), help_text="Reason codes; empty if allowed."
    )
    citations = serializers.DictField(child=serializers.CharField(), help_text="{reason code: its source}.")
    next_allowed_at = serializers.DateTimeField(allow_null=True)
    profile = serializers.CharField(allow_null=True, help_text="The jurisdiction profile that decided.")
    local_time = serializers.DateTimeField(allow_null=True, help_text="The moment in the borrower's zone.")


class ContactDecisionOut(DecisionOut):
    override_id = serializers.IntegerField(
        allow_null=True,
        required=False,
        help_text="The supervisor's override that let a refused contact through.",
    )


class CaseContactOut(serializers.ModelSerializer):
    channel = serializers.CharField(source="attempt.channel")
    direction = serializers.CharField(source="attempt.direction")
    purpose = serializers.CharField(source="attempt.purpose")
    occurred_at = serializers.DateTimeField(source="attempt.at")
    contact_point = serializers.IntegerField(source="attempt.contact_point_id", allow_null=True)
    decision = ContactDecisionOut(source="attempt.decision", help_text="The check made before the contact.")
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = CaseContact
        fields = [
            "id", "case", "channel", "direction", "purpose", "outcome", "contact_point", "occurred_at",
            "notes", "callback_on", "decision", "created_by", "created_at",
        ]  # fmt: skip


class PromiseIn(StrictSerializer):
    instalments = PromiseInstalmentIn(many=True, required=False, max_length=services.PROMISE_MAX_INSTALMENTS)
    amount = PositiveMoney(required=False)
    promised_date = serializers.DateField(required=False)

    def validate(self, attrs):
        plan = "instalments" in attrs
        single = "amount" in attrs or "promised_date" in attrs
        if plan == single:
            raise serializers.ValidationError(_("Give either instalments, or one amount and promised_date."))
        if single and not ("amount" in attrs and "promised_date" in attrs):
            missing = "amount" if "amount" not in attrs else "promised_date"
            raise serializers.ValidationError({missing: [_("This field is required.")]})
        return attrs


class NoticeIn(StrictSerializer):
    channel = serializers.ChoiceField(choices=NoticeChannel.choices)


class NoticeOut(serializers.ModelSerializer):
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    reason_codes = serializers.ListField(
        child=serializers.CharField(), help_text="Why the contact rules refused it (or hold it back)."
    )

    class Meta:
        model = Notice
        fields = [
            "id", "case", "stage", "channel", "status", "queued_on", "not_before", "sent_at", "language",
            "template_version", "contact_point", "subject", "body", "reason_codes", "failure", "created_by",
            "created_at",
        ]  # fmt: skip


CASE_ROW_EXAMPLE = {
    "id": 4711,
    "loan": 9051,
    "loan_ref": "L-2026-000456",
    "partner": "acme",
    "borrower": 3120,
    "status": "open",
    "stage": "restructuring",
    "stage_entered_on": "2026-03-02",
    "priority": 485,
    "next_action_date": "2026-03-02",
    "assignee": {"id": 17, "username": "li.na"},
    "team": {"id": 4, "code": "restructuring-desk", "name": "Restructuring desk"},
    "dpd": 70,
    "bucket": "61-90",
    "overdue_total": "3198.57",
    "currency": "CNY",
    "opened_on": "2026-01-01",
    "closed_on": None,
    "close_reason": "",
}
PROMISE_OUT_EXAMPLE = {
    "id": 88,
    "case": 4711,
    "status": "open",
    "amount": "1066.19",
    "promised_date": "2026-03-25",
    "made_on": "2026-03-02",
    "paid_amount": "0.00",
    "resolved_on": None,
    "instalments": [
        {"number": 1, "due_date": "2026-03-10", "amount": "500.00"},
        {"number": 2, "due_date": "2026-03-25", "amount": "566.19"},
    ],
    "created_by": "partner:acme",
    "created_at": "2026-03-02T10:16:04+08:00",
}
CASE_DETAIL_EXAMPLE = {
    **CASE_ROW_EXAMPLE,
    "borrower_ref": "B-2026-000123",
    "referral_recommended_on": None,
    "broken_promises": 0,
    "holds": [{"id": 5, "reason": "dispute", "until": None, "set_at": "2026-02-20T15:02:11+08:00"}],
    "open_promise": PROMISE_OUT_EXAMPLE,
    "transitions": [
        {
            "from_stage": "notice",
            "to_stage": "restructuring",
            "close_reason": "",
            "at": "2026-03-02T01:00:04+08:00",
            "as_of": "2026-03-02",
            "by": None,
            "reason": "scan: 61 days past due",
        },
    ],
    "delinquency": {
        "as_of": "2026-03-11",
        "dpd": 70,
        "bucket": "61-90",
        "oldest_unpaid_due_date": "2025-12-31",
        "overdue": {
            "principal": "2867.04",
            "interest": "331.53",
            "fee": "0.00",
            "penalty": "0.00",
            "total": "3198.57",
        },
        "outstanding_principal": "12000.00",
        "currency": "CNY",
    },
}
CONTACT_OUT_EXAMPLE = {
    "id": 301,
    "case": 4711,
    "channel": "call",
    "direction": "outbound",
    "purpose": "collection",
    "outcome": "promise_to_pay",
    "contact_point": 812,
    "occurred_at": "2026-03-02T10:15:00+08:00",
    "notes": "Borrower confirmed the amount; will pay in two parts.",
    "callback_on": None,
    "decision": {
        "allowed": True,
        "reasons": [],
        "citations": {},
        "next_allowed_at": "2026-03-02T10:15:00+08:00",
        "profile": "cn",
        "local_time": "2026-03-02T10:15:00+08:00",
        "override_id": None,
    },
    "created_by": "partner:acme",
    "created_at": "2026-03-02T10:16:04+08:00",
}
NOTICE_OUT_EXAMPLE = {
    "id": 95,
    "case": 4711,
    "stage": "follow_up_call",
    "channel": "sms",
    "status": "sent",
    "queued_on": "2026-03-02",
    "not_before": None,
    "sent_at": "2026-03-02T10:20:00+08:00",
    "language": "zh-hans",
    "template_version": 1,
    "contact_point": 812,
    "subject": "",
    "body": "【Acme Lending】王小明您好，您的借款已逾期10天，应还CNY 1,066.19。回复TD退订",
    "reason_codes": [],
    "failure": "",
    "created_by": "partner:acme",
    "created_at": "2026-03-02T10:20:00+08:00",
}


def response_example(name: str, value, status_code: str = "200") -> OpenApiExample:
    return OpenApiExample(name, value=value, response_only=True, status_codes=[status_code])


CONTACT_EXAMPLE = {
    "channel": "call",
    "outcome": "promise_to_pay",
    "contact_point": 812,
    "occurred_at": "2026-03-02T10:15:00+08:00",
    "notes": "Borrower confirmed the amount; will pay in two parts.",
    "promise_instalments": [
        {"due_date": "2026-03-10", "amount": "500.00"},
        {"due_date": "2026-03-25", "amount": "566.19"},
    ],
}
PROMISE_EXAMPLE = {"amount": "1066.19", "promised_date": "2026-03-15"}


@extend_schema_view(
    list=extend_schema(
        summary="List cases",
        description="Cursor pages in id order.",
        examples=[response_example("A case", CASE_ROW_EXAMPLE)],
    ),
    retrieve=extend_schema(
        summary="A case, with its loan's delinquency",
        examples=[response_example("A case in restructuring", CASE_DETAIL_EXAMPLE)],
    ),
)
class CaseViewSet(IdLookupMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    access = Access(
        read="cases:read",
        write="cases:write",
        staff_read="debt_collections.view_case",
        actions={
            "contacts": ("cases:read", "debt_collections.view_casecontact"),
            "contacts_create": ("cases:write", "debt_collections.add_casecontact"),
            "promises": ("cases:read", "debt_collections.view_promisetopay"),
            "promises_create": ("cases:write", "debt_collections.add_promisetopay"),
            "notices": ("cases:read", "debt_collections.view_notice"),
            "notices_create": ("cases:write", "debt_collections.add_notice"),
        },
    )
    serializer_class = CaseListOut
    filterset_class = CaseFilter

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # the schema generator has no caller
            return Case.objects.none()
        queryset = Case.objects.select_related("loan__partner", "assignee", "team")
        if self.action == "retrieve":
            queryset = queryset.select_related("loan__borrower").prefetch_related(
                Prefetch("holds", CaseHold.objects.filter(released_at__isnull=True), to_attr="active_holds"),
                Prefetch(
                    "promises",
                    PromiseToPay.objects.filter(status=PromiseToPay.Status.OPEN)
                    .select_related("created_by")
                    .prefetch_related("instalments"),
                    to_attr="open_promises",
                ),
            )
        return cases_visible(queryset, self.request)

    def get_serializer_class(self):
        return CaseOut if self.action == "retrieve" else CaseListOut

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "as_of": timezone.localdate()}

    def _page(self, queryset, serializer_class):
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(
            serializer_class(page, many=True, context=self.get_serializer_context()).data
        )

    # contacts

    @extend_schema(
        summary="The contacts logged on a case",
        responses=CaseContactOut(many=True),
        examples=[response_example("A call", CONTACT_OUT_EXAMPLE)],
    )
    @action(detail=True, methods=["get"], url_path="contacts")
    def contacts(self, request, id=None):
        case = self.get_object()
        return self._page(
            CaseContact.objects.filter(case=case).select_related("attempt", "created_by"), CaseContactOut
        )

    @extend_schema(
        summary="Log a contact",
        description=(
            "Checked by the contact rules first: a refused contact answers 422 with the rules' `reasons` "
            "(and `citations`, `next_allowed_at`), and nothing is written. The outcome sets the next "
            "step: a dispute holds the case, a promise to pay records the promise, a callback request "
            "sets the next action date, a wrong number marks the contact point invalid."
        ),
        request=ContactIn,
        responses={201: CaseContactOut},
        examples=[
            OpenApiExample("A call with a promise to pay", value=CONTACT_EXAMPLE, request_only=True),
            response_example("Logged", CONTACT_OUT_EXAMPLE, "201"),
        ],
    )
    @contacts.mapping.post
    @idempotent
    def contacts_create(self, request, id=None):
        case = self.get_object()
        data = ContactIn(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        point = None
        if fields["contact_point"] is not None:
            point = ContactPoint.objects.filter(
                pk=fields["contact_point"], borrower_id=case.loan.borrower_id
            ).first()
            if point is None:
                raise field_error("contact_point", _("The borrower has no such contact point."))
        occurred_at = fields["occurred_at"]
        if occurred_at is not None and timezone.localdate(occurred_at) < case.opened_on:
            # The case's next step (a stage move, a hold) cannot be dated before the case itself.
            raise field_error(
                "occurred_at",
                _("A contact on this case cannot be dated before the case was opened (%(date)s).")
                % {"date": case.opened_on.isoformat()},
            )
        instalments = fields.pop("promise_instalments", None)
        contact = contacts.contact_log(
            case=case,
            actor=request.user,
            channel=fields["channel"],
            outcome=fields["outcome"],
            direction=fields["direction"],
            contact_point=point,
            notes=fields["notes"],
            occurred_at=occurred_at,
            callback_on=fields["callback_on"],
            promise_instalments=[(i["due_date"], i["amount"]) for i in instalments] if instalments else None,
            purpose=fields["purpose"],
        )
        contact = CaseContact.objects.select_related("attempt", "created_by").get(pk=contact.pk)
        return Response(CaseContactOut(contact).data, status=status.HTTP_201_CREATED)

    # promises

    @extend_schema(
        summary="The promises to pay on a case",
        responses=PromiseOut(many=True),
        examples=[response_example("A plan of two payments", PROMISE_OUT_EXAMPLE)],
    )
    @action(detail=True, methods=["get"], url_path="promises")
    def promises(self, request, id=None):
        case = self.get_object()
        queryset = (
            PromiseToPay.objects.filter(case=case)
            .select_related("created_by")
            .prefetch_related("instalments")
        )
        return self._page(queryset, PromiseOut)

    @extend_schema(
        summary="Record a promise to pay",
        description=(
            "One `amount` by a `promised_date`, or a plan of up to 12 `instalments`. One open promise per "
            "case; while open it freezes escalation."
        ),
        request=PromiseIn,
        responses={201: PromiseOut},
        examples=[
            OpenApiExample("One payment", value=PROMISE_EXAMPLE, request_only=True),
            OpenApiExample(
                "A plan",
                value={"instalments": CONTACT_EXAMPLE["promise_instalments"]},
                request_only=True,
            ),
            response_example("Recorded", PROMISE_OUT_EXAMPLE, "201"),
        ],
    )
    @promises.mapping.post
    @idempotent
    def promises_create(self, request, id=None):
        case = self.get_object()
        data = PromiseIn(data=request.data)
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        if "instalments" in fields:
            promise = services.promise_record(
                case=case,
                actor=request.user,
                instalments=[(i["due_date"], i["amount"]) for i in fields["instalments"]],
            )
        else:
            promise = services.promise_record(
                case=case, actor=request.user, amount=fields["amount"], promised_date=fields["promised_date"]
            )
        promise = (
            PromiseToPay.objects.select_related("created_by")
            .prefetch_related("instalments")
            .get(pk=promise.pk)
        )
        return Response(PromiseOut(promise).data, status=status.HTTP_201_CREATED)

    # notices

    @extend_schema(
        summary="The notices of a case",
        responses=NoticeOut(many=True),
        examples=[response_example("An SMS sent", NOTICE_OUT_EXAMPLE)],
    )
    @action(detail=True, methods=["get"], url_path="notices")
    def notices(self, request, id=None):
        case = self.get_object()
        return self._page(Notice.objects.filter(case=case).select_related("created_by"), NoticeOut)

    @extend_schema(
        summary="Send a notice now",
        description=(
            "Renders the case's stage template for the channel in the borrower's language and sends it to "
            "the borrower's own contact point. Refused whole (422, nothing written) by the contact rules "
            "(`reasons`), a hold, or a missing template or contact point. A delivery failure answers 201 "
            "with `status` failed."
        ),
        request=NoticeIn,
        responses={201: NoticeOut},
        examples=[
            OpenApiExample("An SMS reminder", value={"channel": "sms"}, request_only=True),
            response_example("Sent", NOTICE_OUT_EXAMPLE, "201"),
        ],
    )
    @notices.mapping.post
    @idempotent
    def notices_create(self, request, id=None):
        case = self.get_object()
        data = NoticeIn(data=request.data)
        data.is_valid(raise_exception=True)
        notice = notices.notice_send(case=case, channel=data.validated_data["channel"], actor=request.user)
        notice = Notice.objects.select_related("created_by").get(pk=notice.pk)
        return Response(NoticeOut(notice).data, status=status.HTTP_201_CREATED)


def register(router) -> None:
    router.register("cases", CaseViewSet, basename="case")
