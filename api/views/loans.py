"""``/api/v1/loans/``: a partner's loans with their delinquency, and ``/loans/{id}/schedule/``.

A loan is booked from its terms (the product's method generates the schedule) or with the partner's
own ``schedule``; its borrower is named by id (``borrower``) or by the partner's reference
(``borrower_ref``), its product by code. The detail carries the delinquency figures (days past due
as of today in ``TIME_ZONE``, bucket, overdue amounts, outstanding principal) and the open case, if
any (``case``, ``stage``): one query a page, the case through two correlated subqueries.
"""

from __future__ import annotations

import re
from decimal import Decimal

from django import forms
from django.db.models import OuterRef, Subquery
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django_filters import rest_framework as filters
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from api.access import Access, partner_visible, request_partner
from api.idempotency import idempotent
from api.lookup import ID_OR_REF_PARAMETER, MAX_ID, IdOrRefLookupMixin
from api.problems import ApiProblem
from api.serializers import Money, PositiveMoney, Rate, StrictSerializer
from api.views.base import ApiViewSet
from debt_collections.models import Case
from loans import services
from loans.exceptions import ValidationError, field_error
from loans.models import Borrower, Bucket, Installment, Loan, LoanProduct
from loans.money import SUPPORTED_CURRENCIES
from loans.schedules import MAX_TERM, ExplicitInstallment

MAX_VERSION = 32767


# --- shared with the payments endpoints ------------------------------------------------------------


class IdField(serializers.IntegerField):
    """A record's id in a request body."""

    def __init__(self, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(**kwargs)


class IdFilter(filters.NumberFilter):
    """A record's id in a query string: a positive whole number (``?loan=1.5`` is a 400, not loan 1)."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(*args, **kwargs)


def not_found(field: str, message: str):
    """A record the body names that does not exist or is another partner's: 404, as for a path id."""
    return ApiProblem(
        status_code=404,
        slug="not-found",
        title=_("Not found."),
        detail=message,
        errors={field: [message]},
    )


def exactly_one(attrs: dict, by_id: str, by_ref: str) -> None:
    if (attrs.get(by_id) is None) == (not attrs.get(by_ref)):
        message = _("Give either %(id)s or %(ref)s.") % {"id": by_id, "ref": by_ref}
        raise serializers.ValidationError({by_id: [message]})


# --- input -----------------------------------------------------------------------------------------


class ScheduleRowIn(StrictSerializer):
    due_date = serializers.DateField()
    principal = Money(min_value=Decimal("0"))
    interest = Money(min_value=Decimal("0"))
    fee = Money(min_value=Decimal("0"), default=Decimal("0.00"))


class LoanIn(StrictSerializer):
    external_ref = serializers.CharField(
        max_length=100, help_text=gettext_lazy("Your reference for the loan.")
    )
    borrower = IdField(required=False, allow_null=True, help_text=gettext_lazy("The borrower's id; or:"))
    borrower_ref = serializers.CharField(
        max_length=100, required=False, help_text=gettext_lazy("The borrower's external reference.")
    )
    product = serializers.CharField(max_length=50, help_text=gettext_lazy("The loan product's code."))
    currency = serializers.ChoiceField(
        choices=SUPPORTED_CURRENCIES, required=False, help_text=gettext_lazy("Default: the product's.")
    )
    principal = PositiveMoney()
    annual_rate = Rate(help_text=gettext_lazy('Yearly rate as a fraction: "0.18" means 18 percent.'))
    term = serializers.IntegerField(
        min_value=1,
        max_value=MAX_TERM,
        required=False,
        help_text=gettext_lazy("Number of installments (default with a schedule: its length)."),
    )
    start_date = serializers.DateField(help_text=gettext_lazy("Disbursement date."))
    first_due_date = serializers.DateField(
        required=False, help_text=gettext_lazy("Default with a schedule: its first due date.")
    )
    schedule = ScheduleRowIn(
        many=True,
        required=False,
        min_length=1,
        max_length=MAX_TERM,
        help_text=gettext_lazy("Your own schedule; without it the product's method generates one."),
    )

    def validate(self, attrs):
        exactly_one(attrs, "borrower", "borrower_ref")
        schedule = attrs.get("schedule")
        if schedule:
            attrs.setdefault("term", len(schedule))
            attrs.setdefault("first_due_date", schedule[0]["due_date"])
        required = _("This field is required.")
        missing = {name: [required] for name in ("term", "first_due_date") if attrs.get(name) is None}
        if missing:
            raise serializers.ValidationError(missing)
        return attrs


# --- output ----------------------------------------------------------------------------------------


class LoanOverdueOut(serializers.Serializer):
    principal = Money(source="overdue_principal")
    interest = Money(source="overdue_interest")
    fee = Money(source="overdue_fee")
    penalty = Money(source="overdue_penalty")
    total = Money(source="overdue_total")


class LoanOut(serializers.ModelSerializer):
    partner = serializers.CharField(source="partner.code")
    borrower = serializers.IntegerField(source="borrower_id")
    borrower_ref = serializers.CharField(source="borrower.external_ref")
    product = serializers.CharField(source="product.code")
    principal = Money()
    annual_rate = Rate()
    dpd = serializers.SerializerMethodField(help_text=gettext_lazy("Days past due today (server time zone)."))
    overdue = LoanOverdueOut(source="*")
    outstanding_principal = Money()
    case = serializers.IntegerField(
        source="open_case", allow_null=True, help_text=gettext_lazy("The open collection case's id.")
    )
    stage = serializers.CharField(
        source="open_case_stage", allow_null=True, help_text=gettext_lazy("The open case's stage.")
    )

    class Meta:
        model = Loan
        fields = [
            "id", "external_ref", "partner", "borrower", "borrower_ref", "product", "currency", "principal",
            "annual_rate", "term", "start_date", "first_due_date", "status", "closed_on", "schedule_version",
            "dpd", "bucket", "oldest_unpaid_due_date", "overdue", "outstanding_principal", "case", "stage",
            "created_at",
        ]  # fmt: skip

    def get_dpd(self, loan) -> int:
        return loan.days_past_due(timezone.localdate())


class InstallmentOut(serializers.ModelSerializer):
    principal_due = Money()
    interest_due = Money()
    fee_due = Money()
    penalty_due = Money()
    principal_paid = Money()
    interest_paid = Money()
    fee_paid = Money()
    penalty_paid = Money()
    total_due = Money()
    total_paid = Money()
    outstanding = Money()
    status = serializers.SerializerMethodField(
        help_text=gettext_lazy("paid; partly (something paid, something outstanding); unpaid.")
    )

    class Meta:
        model = Installment
        fields = [
            "number", "due_date", "principal_due", "interest_due", "fee_due", "penalty_due", "principal_paid",
            "interest_paid", "fee_paid", "penalty_paid", "total_due", "total_paid", "outstanding", "status",
        ]  # fmt: skip

    @extend_schema_field(serializers.ChoiceField(choices=["paid", "partly", "unpaid"]))
    def get_status(self, inst) -> str:
        if inst.outstanding == 0:
            return "paid"
        return "partly" if inst.total_paid > 0 else "unpaid"


class ScheduleOut(serializers.Serializer):
    loan = serializers.IntegerField()
    loan_ref = serializers.CharField()
    currency = serializers.CharField()
    version = serializers.IntegerField()
    current = serializers.BooleanField(
        help_text=gettext_lazy("False for a version a restructuring replaced.")
    )
    installments = InstallmentOut(many=True)


class ScheduleQuery(serializers.Serializer):
    version = serializers.IntegerField(min_value=1, max_value=MAX_VERSION, required=False)


class LoanFilter(filters.FilterSet):
    external_ref = filters.CharFilter()
    borrower = IdFilter(field_name="borrower_id")
    borrower_ref = filters.CharFilter(field_name="borrower__external_ref")
    bucket = filters.ChoiceFilter(choices=Bucket.choices)
    status = filters.ChoiceFilter(choices=Loan.Status.choices)

    class Meta:
        model = Loan
        fields = ["external_ref", "borrower", "borrower_ref", "bucket", "status"]


LOAN_FROM_TERMS = {
    "external_ref": "L-2026-000456",
    "borrower_ref": "B-2026-000123",
    "product": "consumer-12m",
    "principal": "12000.00",
    "annual_rate": "0.18",
    "term": 12,
    "start_date": "2026-01-15",
    "first_due_date": "2026-02-15",
}
LOAN_WITH_SCHEDULE = {
    "external_ref": "L-2026-000457",
    "borrower": 123,
    "product": "consumer-12m",
    "principal": "900.00",
    "annual_rate": "0.12",
    "start_date": "2026-01-01",
    "schedule": [
        {"due_date": "2026-02-01", "principal": "300.00", "interest": "9.00", "fee": "0.00"},
        {"due_date": "2026-03-01", "principal": "300.00", "interest": "6.00", "fee": "0.00"},
        {"due_date": "2026-04-01", "principal": "300.00", "interest": "3.00", "fee": "0.00"},
    ],
}
LOAN_OUT = {
    "id": 456,
    "external_ref": "L-2026-000456",
    "partner": "acme",
    "borrower": 123,
    "borrower_ref": "B-2026-000123",
    "product": "consumer-12m",
    "currency": "CNY",
    "principal": "12000.00",
    "annual_rate": "0.180000",
    "term": 12,
    "start_date": "2026-01-15",
    "first_due_date": "2026-02-15",
    "status": "active",
    "closed_on": None,
    "schedule_version": 1,
    "dpd": 12,
    "bucket": "1-30",
    "oldest_unpaid_due_date": "2026-02-15",
    "overdue": {
        "principal": "920.12",
        "interest": "180.00",
        "fee": "0.00",
        "penalty": "0.00",
        "total": "1100.12",
    },
    "outstanding_principal": "12000.00",
    "case": 789,
    "stage": "early",
    "created_at": "2026-01-15T10:00:00+08:00",
}
SCHEDULE_OUT = {
    "loan": 456,
    "loan_ref": "L-2026-000456",
    "currency": "CNY",
    "version": 1,
    "current": True,
    "installments": [
        {
            "number": 1, "due_date": "2026-02-15", "principal_due": "920.12", "interest_due": "180.00",
            "fee_due": "0.00", "penalty_due": "0.00", "principal_paid": "500.00", "interest_paid": "180.00",
            "fee_paid": "0.00", "penalty_paid": "0.00", "total_due": "1100.12", "total_paid": "680.00",
            "outstanding": "420.12", "status": "partly",
        }
    ],
}  # fmt: skip


def _dotted(exc: ValidationError) -> ValidationError:
    """The loan book names schedule rows ``schedule[3].due_date``; the API ``schedule.3.due_date``."""
    if not hasattr(exc, "error_dict"):
        return exc
    return ValidationError(
        {re.sub(r"\[(\d+)\]", r".\1", name): errors for name, errors in exc.error_dict.items()}
    )


@extend_schema_view(
    list=extend_schema(
        summary="List loans",
        description="Your loans with their delinquency; filter by reference, borrower, bucket, status.",
        examples=[OpenApiExample("A page of loans", value=LOAN_OUT, response_only=True)],
    ),
    retrieve=extend_schema(
        summary="A loan with its delinquency",
        parameters=[ID_OR_REF_PARAMETER],
        examples=[OpenApiExample("A loan in its first month late", value=LOAN_OUT, response_only=True)],
    ),
    create=extend_schema(
        summary="Book a loan",
        description=(
            "From its terms (the product's repayment method generates the schedule) or with your own "
            "`schedule` (its principal must sum to the loan's). Needs an `Idempotency-Key`."
        ),
        request=LoanIn,
        responses={201: LoanOut},
        examples=[
            OpenApiExample("From terms", value=LOAN_FROM_TERMS, request_only=True),
            OpenApiExample("With its own schedule", value=LOAN_WITH_SCHEDULE, request_only=True),
            OpenApiExample("Booked", value=LOAN_OUT, response_only=True, status_codes=["201"]),
        ],
    ),
)
class LoanViewSet(IdOrRefLookupMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    access = Access(read="loans:read", write="loans:write", staff_read="loans.view_loan")
    serializer_class = LoanOut
    filterset_class = LoanFilter

    def get_queryset(self):
        open_case = Case.objects.filter(loan=OuterRef("pk"), status=Case.Status.OPEN)
        queryset = Loan.objects.select_related("partner", "borrower", "product").annotate(
            open_case=Subquery(open_case.values("pk")[:1]),
            open_case_stage=Subquery(open_case.values("stage")[:1]),
        )
        return partner_visible(queryset, self.request)

    @idempotent
    def create(self, request):
        data = LoanIn(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        partner = request_partner(request)
        borrowers = Borrower.objects.filter(partner=partner)
        if fields.get("borrower") is not None:
            borrower = borrowers.filter(pk=fields.pop("borrower")).first()
            fields.pop("borrower_ref", None)
            if borrower is None:
                raise not_found("borrower", _("No such borrower."))
        else:
            fields.pop("borrower", None)
            borrower = borrowers.filter(external_ref=fields.pop("borrower_ref")).first()
            if borrower is None:
                raise not_found("borrower_ref", _("No such borrower."))
        product = LoanProduct.objects.filter(code=fields.pop("product")).first()
        if product is None:
            raise field_error("product", _("No such loan product."))
        schedule = fields.pop("schedule", None)
        if schedule is not None:
            schedule = [ExplicitInstallment(**row) for row in schedule]
        try:
            loan = services.loan_create(
                partner=partner, borrower=borrower, product=product, schedule=schedule, **fields
            )
        except ValidationError as exc:
            raise _dotted(exc) from None
        return Response(LoanOut(self.get_queryset().get(pk=loan.pk)).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="A loan's schedule",
        description=(
            "The current schedule's installments with what is due, paid and outstanding on each; "
            "`?version=N` for one that a restructuring replaced."
        ),
        parameters=[
            ID_OR_REF_PARAMETER,
            OpenApiParameter("version", int, description="A schedule version (default: the current one)."),
        ],
        responses={200: ScheduleOut},
        examples=[OpenApiExample("Installment 1 partly paid", value=SCHEDULE_OUT, response_only=True)],
    )
    @action(detail=True, methods=["get"], filter_backends=[], pagination_class=None)
    def schedule(self, request, **kwargs):
        loan = self.get_object()
        query = ScheduleQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        version = query.validated_data.get("version")
        installments = Installment.objects.filter(loan=loan).order_by("number")
        if version is None or version == loan.schedule_version:
            rows = list(installments.filter(superseded=False))
            version = loan.schedule_version
        else:
            rows = list(installments.filter(schedule_version=version))
            if not rows:
                raise not_found("version", _("The loan has no schedule version %(n)d.") % {"n": version})
        body = {
            "loan": loan.pk,
            "loan_ref": loan.external_ref,
            "currency": loan.currency,
            "version": version,
            "current": version == loan.schedule_version,
            "installments": rows,
        }
        return Response(ScheduleOut(body).data)


def register(router) -> None:
    router.register("loans", LoanViewSet, basename="loan")
