"""``/api/v1/payments/``: post payments one at a time or up to 1,000 a request (``batch/``), read them
with where their money went (allocations), reverse one (``{id}/reverse/``).

A payment names its loan by id (``loan``) or by the partner's reference (``loan_ref``). Posting needs
an ``Idempotency-Key``. A batch answers each item on its own (accepted with the payment, or refused
with its errors, in the order sent); the accepted ones are posted in one transaction
(``api.services.payments_ingest``). Each posted or reversed payment writes a webhook event.
"""

from __future__ import annotations

from django.db.models import Prefetch
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django_filters import rest_framework as filters
from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from api import services
from api.access import Access, partner_visible, request_partner
from api.idempotency import idempotent
from api.lookup import ID_OR_REF_PARAMETER, IdOrRefLookupMixin
from api.problems import _flatten
from api.serializers import Money, PositiveMoney, StrictSerializer
from api.views.base import ApiViewSet
from api.views.loans import IdField, IdFilter, exactly_one, not_found
from loans.models import Allocation, Loan, Payment
from loans.money import SUPPORTED_CURRENCIES

MAX_BATCH = 1000


# --- input -----------------------------------------------------------------------------------------


class PaymentIn(StrictSerializer):
    loan = IdField(required=False, allow_null=True, help_text=gettext_lazy("The loan's id; or:"))
    loan_ref = serializers.CharField(
        max_length=100, required=False, help_text=gettext_lazy("The loan's external reference.")
    )
    external_ref = serializers.CharField(
        max_length=100, help_text=gettext_lazy("Your reference for the payment (unique).")
    )
    amount = PositiveMoney()
    currency = serializers.ChoiceField(
        choices=SUPPORTED_CURRENCIES, help_text=gettext_lazy("The loan's currency.")
    )
    value_date = serializers.DateField(help_text=gettext_lazy("The date the money counts from."))
    received_at = serializers.DateTimeField(required=False, help_text=gettext_lazy("Default: now."))
    channel = serializers.ChoiceField(choices=Payment.Channel.choices, default=Payment.Channel.BANK_TRANSFER)

    def validate(self, attrs):
        exactly_one(attrs, "loan", "loan_ref")
        return attrs


class BatchIn(StrictSerializer):
    # Items are checked one by one (a bad item is refused on its own), so the list takes any JSON.
    payments = serializers.ListField(child=serializers.JSONField(), min_length=1, max_length=MAX_BATCH)


class BatchInSchema(StrictSerializer):
    """What the schema shows for a batch: the items are payments."""

    payments = PaymentIn(many=True, min_length=1, max_length=MAX_BATCH)


class ReverseIn(StrictSerializer):
    reason = serializers.CharField(
        max_length=300, help_text=gettext_lazy("Why: a bounced transfer, a chargeback.")
    )


# --- output ----------------------------------------------------------------------------------------


class AllocationOut(serializers.ModelSerializer):
    installment = serializers.IntegerField(source="installment.number", help_text=gettext_lazy("Its number."))
    due_date = serializers.DateField(source="installment.due_date")
    schedule_version = serializers.IntegerField(source="installment.schedule_version")
    principal = Money()
    interest = Money()
    fee = Money()
    penalty = Money()
    total = Money()

    class Meta:
        model = Allocation
        fields = [
            "installment", "due_date", "schedule_version", "principal", "interest", "fee", "penalty", "total",
        ]  # fmt: skip


class PaymentBriefOut(serializers.ModelSerializer):
    loan = serializers.IntegerField(source="loan_id")
    loan_ref = serializers.CharField(source="loan.external_ref")
    amount = Money()
    unapplied_amount = Money(help_text=gettext_lazy("Left over once the whole schedule is paid."))

    class Meta:
        model = Payment
        fields = [
            "id", "external_ref", "loan", "loan_ref", "amount", "currency", "value_date", "received_at",
            "channel", "status", "unapplied_amount", "reversed_at", "reversal_reason", "created_at",
        ]  # fmt: skip


class PaymentOut(PaymentBriefOut):
    allocations = AllocationOut(
        many=True, help_text=gettext_lazy("Where the money went (none once reversed).")
    )

    class Meta(PaymentBriefOut.Meta):
        fields = [*PaymentBriefOut.Meta.fields, "allocations"]


class BatchItemOut(serializers.Serializer):
    index = serializers.IntegerField(help_text=gettext_lazy("The item's position in the request (from 0)."))
    status = serializers.ChoiceField(choices=["accepted", "rejected"])
    payment = PaymentBriefOut(required=False, help_text=gettext_lazy("When accepted."))
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text=gettext_lazy("When rejected: {field: [message, ...]}."),
    )


class BatchOut(serializers.Serializer):
    accepted = serializers.IntegerField()
    rejected = serializers.IntegerField()
    results = BatchItemOut(many=True)


class PaymentFilter(filters.FilterSet):
    loan = IdFilter(field_name="loan_id")
    loan_ref = filters.CharFilter(field_name="loan__external_ref")
    external_ref = filters.CharFilter()
    status = filters.ChoiceFilter(choices=Payment.Status.choices)
    value_date_from = filters.DateFilter(field_name="value_date", lookup_expr="gte")
    value_date_to = filters.DateFilter(field_name="value_date", lookup_expr="lte")

    class Meta:
        model = Payment
        fields = ["loan", "loan_ref", "external_ref", "status", "value_date_from", "value_date_to"]


PAYMENT_IN = {
    "loan_ref": "L-2026-000456",
    "external_ref": "PAY-20260301-0001",
    "amount": "1100.12",
    "currency": "CNY",
    "value_date": "2026-03-01",
    "channel": "bank_transfer",
}
PAYMENT_OUT = {
    "id": 9001,
    "external_ref": "PAY-20260301-0001",
    "loan": 456,
    "loan_ref": "L-2026-000456",
    "amount": "1100.12",
    "currency": "CNY",
    "value_date": "2026-03-01",
    "received_at": "2026-03-01T10:02:03+08:00",
    "channel": "bank_transfer",
    "status": "posted",
    "unapplied_amount": "0.00",
    "reversed_at": None,
    "reversal_reason": "",
    "created_at": "2026-03-01T10:02:04+08:00",
    "allocations": [
        {
            "installment": 1, "due_date": "2026-02-15", "schedule_version": 1, "principal": "920.12",
            "interest": "180.00", "fee": "0.00", "penalty": "0.00", "total": "1100.12",
        }
    ],
}  # fmt: skip
BATCH_IN = {
    "payments": [
        PAYMENT_IN,
        {"loan": 457, "external_ref": "PAY-20260301-0002", "amount": "-5.00", "currency": "CNY",
         "value_date": "2026-03-01"},
    ]
}  # fmt: skip
BATCH_OUT = {
    "accepted": 1,
    "rejected": 1,
    "results": [
        {"index": 0, "status": "accepted",
         "payment": {k: v for k, v in PAYMENT_OUT.items() if k != "allocations"}},
        {"index": 1, "status": "rejected",
         "errors": {"amount": ["Ensure this value is greater than or equal to 0.01."]}},
    ],
}  # fmt: skip


@extend_schema_view(
    list=extend_schema(
        summary="List payments",
        description="Your payments with their allocations; filter by loan, reference, status, value dates.",
        examples=[OpenApiExample("A page of payments", value=PAYMENT_OUT, response_only=True)],
    ),
    retrieve=extend_schema(
        summary="A payment and where its money went",
        parameters=[ID_OR_REF_PARAMETER],
        examples=[OpenApiExample("Paid installment 1", value=PAYMENT_OUT, response_only=True)],
    ),
    create=extend_schema(
        summary="Post a payment",
        description=(
            "Allocated at once (a back-dated one replays the loan); the loan's delinquency is refreshed "
            "and a `payment.posted` webhook event written. Needs an `Idempotency-Key`."
        ),
        request=PaymentIn,
        responses={201: PaymentOut},
        examples=[
            OpenApiExample("A bank transfer", value=PAYMENT_IN, request_only=True),
            OpenApiExample("Posted", value=PAYMENT_OUT, response_only=True, status_codes=["201"]),
        ],
    ),
)
class PaymentViewSet(IdOrRefLookupMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    access = Access(read="payments:read", write="payments:write", staff_read="loans.view_payment")
    serializer_class = PaymentOut
    filterset_class = PaymentFilter

    def get_queryset(self):
        allocations = Allocation.objects.select_related("installment").order_by(
            "installment__due_date", "installment__number"
        )
        queryset = Payment.objects.select_related("loan").prefetch_related(
            Prefetch("allocations", queryset=allocations)
        )
        return partner_visible(queryset, self.request)

    def _payment(self, pk: int) -> Payment:
        return self.get_queryset().get(pk=pk)

    @idempotent
    def create(self, request):
        data = PaymentIn(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        loans = Loan.objects.filter(partner=request_partner(request))
        loan_id, loan_ref = fields.pop("loan", None), fields.pop("loan_ref", None)
        loan = (
            loans.filter(pk=loan_id).first()
            if loan_id is not None
            else loans.filter(external_ref=loan_ref).first()
        )
        if loan is None:
            raise not_found("loan" if loan_id is not None else "loan_ref", _("No such loan."))
        payment = services.payment_create(loan=loan, **fields)
        return Response(PaymentOut(self._payment(payment.pk)).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Reverse a payment",
        description=(
            "A bounced transfer or a chargeback: the loan is replayed without the payment and a "
            "`payment.reversed` webhook event written. A payment is reversed once."
        ),
        parameters=[ID_OR_REF_PARAMETER],
        request=ReverseIn,
        responses={200: PaymentOut},
        examples=[
            OpenApiExample("Bounced", value={"reason": "bounced transfer"}, request_only=True),
            OpenApiExample(
                "Reversed",
                value={
                    **PAYMENT_OUT, "status": "reversed", "reversed_at": "2026-03-03T09:00:00+08:00",
                    "reversal_reason": "bounced transfer", "allocations": [],
                },
                response_only=True,
            ),
        ],
    )  # fmt: skip
    @action(detail=True, methods=["post"], filter_backends=[], pagination_class=None)
    def reverse(self, request, **kwargs):
        payment = self.get_object()
        data = ReverseIn(data=request.data)
        data.is_valid(raise_exception=True)
        payment = services.payment_reversal(payment=payment, reason=data.validated_data["reason"])
        return Response(PaymentOut(self._payment(payment.pk)).data)

    @extend_schema(
        summary="Post up to 1,000 payments",
        description=(
            "Each item is accepted or rejected on its own (`results`, in the order sent, with `index`); "
            "the accepted ones are posted together, atomically. A reference used twice in the batch or "
            "already in the book is rejected. More than 1,000 items, or `payments` not a list: 400 for "
            "the whole request. Needs an `Idempotency-Key`."
        ),
        request=BatchInSchema,
        responses={200: BatchOut},
        examples=[
            OpenApiExample("One good item, one bad", value=BATCH_IN, request_only=True),
            OpenApiExample("One accepted, one rejected", value=BATCH_OUT, response_only=True),
        ],
    )
    @action(detail=False, methods=["post"], filter_backends=[], pagination_class=None)
    @idempotent
    def batch(self, request):
        data = BatchIn(data=request.data)
        data.is_valid(raise_exception=True)
        # One serializer checks every item (building its fields a thousand times would cost more than
        # posting the payments); an item's errors are its own.
        checker = PaymentIn()
        results: list[dict] = []
        parsed, positions = [], []
        for index, raw in enumerate(data.validated_data["payments"]):
            try:
                parsed.append(services.IngestItem(**checker.run_validation(raw)))
            except serializers.ValidationError as exc:
                results.append({"index": index, "status": "rejected", "errors": _flatten(exc.detail)})
            else:
                positions.append(index)
                results.append({"index": index, "status": "accepted"})
        outcomes = services.payments_ingest(partner=request_partner(request), items=parsed)
        accepted = [(index, o) for index, o in zip(positions, outcomes, strict=True) if o.accepted]
        rendered = PaymentBriefOut([o.payment for _index, o in accepted], many=True).data
        for (index, _outcome), payment in zip(accepted, rendered, strict=True):
            results[index]["payment"] = payment
        for index, outcome in zip(positions, outcomes, strict=True):
            if not outcome.accepted:
                results[index] = {"index": index, "status": "rejected", "errors": outcome.errors}
        count = len(accepted)
        body = {"accepted": count, "rejected": len(results) - count, "results": results}
        return Response(body, status=status.HTTP_200_OK)


def register(router) -> None:
    router.register("payments", PaymentViewSet, basename="payment")
