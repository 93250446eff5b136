"""``/api/v1/restructurings/``: proposals to change a loan's terms, and their decisions (maker-checker).

A partner's platform or a collector proposes (``cases:write``; staff ``add_restructuring``); a
supervisor who did not propose it approves or rejects (``approve_restructuring``; partner keys never:
403). Deciding one's own proposal is refused by the service as a field error on ``decided_by``: 422,
like every other business rule, not 403 (the supervisor has the right, the proposal is the problem).
A waiver above the supervisor limit needs a senior supervisor: 403.
"""

from __future__ import annotations

from django_filters import rest_framework as filters
from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from api.access import Access, cases_visible
from api.idempotency import idempotent
from api.serializers import DecisionIn, PositiveMoney, Rate, StrictSerializer
from api.views.base import ApiViewSet
from api.views.cases import IdField, IdFilter, IdLookupMixin, visible_case
from debt_collections import restructuring
from debt_collections.models import Restructuring


class TermsIn(StrictSerializer):
    kind = serializers.ChoiceField(choices=Restructuring.Kind.choices)
    first_due_date = serializers.DateField(help_text="The new schedule's first due date (after today).")
    new_term = serializers.IntegerField(
        min_value=1, max_value=600, required=False, allow_null=True, default=None,
        help_text="Instalments of the new schedule: term_extension, rate_reduction.",
    )  # fmt: skip
    new_annual_rate = Rate(
        max_value=1, required=False, allow_null=True, default=None, help_text="rate_reduction."
    )
    holiday_periods = serializers.IntegerField(
        min_value=1, max_value=60, required=False, allow_null=True, default=None, help_text="payment_holiday."
    )
    settlement_amount = PositiveMoney(required=False, allow_null=True, default=None, help_text="settlement.")


class ProposalIn(TermsIn):
    case = IdField()
    reason = serializers.CharField(max_length=2000)

    field_order = ["case", "kind", "reason"]


class PreviewIn(TermsIn):
    case = IdField()


class SummaryRowOut(serializers.Serializer):
    number = serializers.IntegerField()
    due_date = serializers.DateField()
    principal = serializers.CharField()
    interest = serializers.CharField()
    fee = serializers.CharField()
    penalty = serializers.CharField()
    total = serializers.CharField()


class ScheduleSummaryOut(serializers.Serializer):
    """A schedule as a person compares it: amounts are strings with two decimals."""

    as_of = serializers.DateField()
    annual_rate = serializers.CharField()
    installment = serializers.CharField(help_text="The next instalment.")
    total_cost = serializers.CharField(help_text="Everything still to pay.")
    unpaid_principal = serializers.CharField()
    end_date = serializers.DateField(allow_null=True)
    periods = serializers.IntegerField()
    rows = SummaryRowOut(many=True)
    schedule_version = serializers.IntegerField(required=False)


class PreviewOut(serializers.Serializer):
    current = ScheduleSummaryOut()
    proposed = ScheduleSummaryOut()
    waived_amount = serializers.CharField()


class RestructuringListOut(serializers.ModelSerializer):
    loan_ref = serializers.CharField(source="loan.external_ref")
    proposed_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    decided_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)

    class Meta:
        model = Restructuring
        fields = [
            "id", "case", "loan", "loan_ref", "kind", "status", "new_term", "new_annual_rate",
            "holiday_periods", "settlement_amount", "first_due_date", "waived_amount", "reason",
            "proposed_by", "proposed_at", "decided_by", "decided_at", "decision_reason", "schedule_version",
        ]  # fmt: skip


class RestructuringOut(RestructuringListOut):
    current_summary = ScheduleSummaryOut(help_text="The schedule as it stood when proposed.")
    proposed_summary = ScheduleSummaryOut(help_text="The schedule as proposed.")

    class Meta(RestructuringListOut.Meta):
        fields = [*RestructuringListOut.Meta.fields, "current_summary", "proposed_summary"]


class RestructuringFilter(filters.FilterSet):
    status = filters.ChoiceFilter(choices=Restructuring.Status.choices)
    case = IdFilter(field_name="case_id", min_value=1)

    class Meta:
        model = Restructuring
        fields = ["status", "case"]


PROPOSAL_EXAMPLE = {
    "case": 4711,
    "kind": "term_extension",
    "new_term": 24,
    "first_due_date": "2026-04-01",
    "reason": "Lost his job in January; can pay about half the instalment.",
}


def _summary(*, installment, total, end, periods, rows) -> dict:
    return {
        "as_of": "2026-03-11",
        "annual_rate": "0.120000",
        "installment": installment,
        "total_cost": total,
        "unpaid_principal": "12000.00",
        "end_date": end,
        "periods": periods,
        "rows": rows,
    }


CURRENT_SUMMARY = {
    **_summary(
        installment="1066.19",
        total="12794.27",
        end="2026-12-01",
        periods=12,
        rows=[
            {
                "number": 1,
                "due_date": "2026-01-01",
                "principal": "946.19",
                "interest": "120.00",
                "fee": "0.00",
                "penalty": "0.00",
                "total": "1066.19",
            }
        ],
    ),
    "schedule_version": 1,
}
PROPOSED_SUMMARY = _summary(
    installment="582.50",
    total="13979.98",
    end="2028-03-01",
    periods=24,
    rows=[
        {
            "number": 1,
            "due_date": "2026-04-01",
            "principal": "462.50",
            "interest": "120.00",
            "fee": "0.00",
            "penalty": "0.00",
            "total": "582.50",
        }
    ],
)
RESTRUCTURING_OUT_EXAMPLE = {
    "id": 61,
    "case": 4711,
    "loan": 9051,
    "loan_ref": "L-2026-000456",
    "kind": "term_extension",
    "status": "proposed",
    "new_term": 24,
    "new_annual_rate": None,
    "holiday_periods": None,
    "settlement_amount": None,
    "first_due_date": "2026-04-01",
    "waived_amount": "0.00",
    "reason": PROPOSAL_EXAMPLE["reason"],
    "proposed_by": "partner:acme",
    "proposed_at": "2026-03-11T11:02:00+08:00",
    "decided_by": None,
    "decided_at": None,
    "decision_reason": "",
    "schedule_version": None,
    "current_summary": CURRENT_SUMMARY,
    "proposed_summary": PROPOSED_SUMMARY,
}
APPROVED_EXAMPLE = {
    **RESTRUCTURING_OUT_EXAMPLE,
    "status": "approved",
    "decided_by": "zhang.wei",
    "decided_at": "2026-03-12T09:30:00+08:00",
    "decision_reason": "Affordable on his new salary.",
    "schedule_version": 2,
}


def response_example(name: str, value, status_code: str = "200") -> OpenApiExample:
    return OpenApiExample(name, value=value, response_only=True, status_codes=[status_code])


def _terms(fields: dict) -> dict:
    names = ("new_term", "new_annual_rate", "holiday_periods", "settlement_amount", "first_due_date")
    return {name: fields[name] for name in names}


@extend_schema_view(
    list=extend_schema(
        summary="List restructurings",
        examples=[
            response_example(
                "A proposal",
                {k: v for k, v in RESTRUCTURING_OUT_EXAMPLE.items() if not k.endswith("_summary")},
            )
        ],
    ),
    retrieve=extend_schema(
        summary="A restructuring, with the schedule before and as proposed",
        examples=[response_example("A proposal", RESTRUCTURING_OUT_EXAMPLE)],
    ),
)
class RestructuringViewSet(IdLookupMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    access = Access(
        read="cases:read",
        write="cases:write",
        staff_read="debt_collections.view_restructuring",
        staff_write="debt_collections.add_restructuring",
        actions={
            "preview": ("cases:read", "debt_collections.view_restructuring"),
            "approve": (None, "debt_collections.approve_restructuring"),
            "reject": (None, "debt_collections.approve_restructuring"),
        },
    )
    filterset_class = RestructuringFilter

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # the schema generator has no caller
            return Restructuring.objects.none()
        queryset = Restructuring.objects.select_related("loan", "proposed_by", "decided_by")
        return cases_visible(queryset, self.request, prefix="case__")

    def get_serializer_class(self):
        return RestructuringListOut if self.action == "list" else RestructuringOut

    def _detail(self, proposal, code=status.HTTP_200_OK):
        return Response(RestructuringOut(self.get_queryset().get(pk=proposal.pk)).data, status=code)

    @extend_schema(
        summary="Propose a restructuring",
        description=(
            "Which terms apply depends on `kind`: term_extension `new_term`; rate_reduction "
            "`new_annual_rate` (and optionally `new_term`); payment_holiday `holiday_periods`; "
            "settlement `settlement_amount`; penalty_waiver none. One proposal waits per case."
        ),
        request=ProposalIn,
        responses={201: RestructuringOut},
        examples=[
            OpenApiExample("A term extension", value=PROPOSAL_EXAMPLE, request_only=True),
            response_example("Proposed", RESTRUCTURING_OUT_EXAMPLE, "201"),
        ],
    )
    @idempotent
    def create(self, request):
        data = ProposalIn(data=request.data)
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        proposal = restructuring.restructuring_propose(
            case=visible_case(request, fields["case"]),
            kind=fields["kind"],
            actor=request.user,
            reason=fields["reason"],
            **_terms(fields),
        )
        return self._detail(proposal, status.HTTP_201_CREATED)

    @extend_schema(
        summary="Preview a restructuring (nothing is written)",
        request=PreviewIn,
        responses={200: PreviewOut},
        examples=[
            OpenApiExample(
                "A term extension",
                value={k: v for k, v in PROPOSAL_EXAMPLE.items() if k != "reason"},
                request_only=True,
            ),
            response_example(
                "Before and after",
                {"current": CURRENT_SUMMARY, "proposed": PROPOSED_SUMMARY, "waived_amount": "0.00"},
            ),
        ],
    )
    @action(detail=False, methods=["post"], url_path="preview")
    def preview(self, request):
        data = PreviewIn(data=request.data)
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        case = visible_case(request, fields["case"])
        terms = _terms(fields)
        return Response(restructuring.restructuring_preview(case=case, kind=fields["kind"], **terms))

    @extend_schema(
        summary="Approve (supervisors; never one's own proposal)",
        description=(
            "Writes the new schedule version and closes the case as restructured and performing when "
            "nothing is overdue any more. Partner keys: 403. The proposer: 422 (`decided_by`). A waiver "
            "above the supervisor limit without a senior supervisor's right: 403."
        ),
        request=DecisionIn,
        responses={200: RestructuringOut},
        examples=[
            OpenApiExample("Approve", value={"reason": "Affordable on his new salary."}, request_only=True),
            response_example("Approved", APPROVED_EXAMPLE),
        ],
    )
    @action(detail=True, methods=["post"])
    def approve(self, request, id=None):
        proposal = self.get_object()
        data = DecisionIn(data=request.data)
        data.is_valid(raise_exception=True)
        proposal = restructuring.restructuring_approve(
            restructuring=proposal, actor=request.user, reason=data.validated_data["reason"]
        )
        return self._detail(proposal)

    @extend_schema(
        summary="Reject (supervisors; never one's own proposal)",
        request=DecisionIn,
        responses={200: RestructuringOut},
        examples=[
            OpenApiExample("Reject", value={"reason": "Income not verified."}, request_only=True),
            response_example(
                "Rejected",
                {
                    **APPROVED_EXAMPLE,
                    "status": "rejected",
                    "schedule_version": None,
                    "decision_reason": "Income not verified.",
                },
            ),
        ],
    )
    @action(detail=True, methods=["post"])
    def reject(self, request, id=None):
        proposal = self.get_object()
        data = DecisionIn(data=request.data)
        data.is_valid(raise_exception=True)
        proposal = restructuring.restructuring_reject(
            restructuring=proposal, actor=request.user, reason=data.validated_data["reason"]
        )
        return self._detail(proposal)


def register(router) -> None:
    router.register("restructurings", RestructuringViewSet, basename="restructuring")
