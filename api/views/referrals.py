"""``/api/v1/legal-referrals/``: cases sent to lawyers. Staff request them (``add_legalreferral``: a
collector only for a case the scan recommended); a supervisor who did not request one approves or
rejects it (``approve_referral``). Partner keys read them (``cases:read``) and never request or
decide: 403. Deciding one's own request is refused by the service with ``PermissionDenied``: 403."""

from __future__ import annotations

from django_filters import rest_framework as filters
from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from api.access import Access, cases_visible
from api.idempotency import idempotent
from api.serializers import DecisionIn, StrictSerializer
from api.views.base import ApiViewSet
from api.views.cases import IdField, IdFilter, IdLookupMixin, visible_case
from debt_collections import referrals
from debt_collections.models import LegalReferral


class ReferralIn(StrictSerializer):
    case = IdField()
    reason = serializers.CharField(
        max_length=referrals.TEXT_MAX, help_text="Why the case should go to lawyers."
    )
    forbearance_considered = serializers.CharField(
        max_length=referrals.TEXT_MAX, help_text="Which forbearance was considered, and what came of it."
    )


class ReferralOut(serializers.ModelSerializer):
    loan = serializers.IntegerField(source="case.loan_id")
    loan_ref = serializers.CharField(source="case.loan.external_ref")
    requested_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    decided_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    evidence_sha256 = serializers.CharField(help_text="SHA-256 of the evidence pack built on approval.")

    class Meta:
        model = LegalReferral
        fields = [
            "id", "case", "loan", "loan_ref", "status", "reason", "forbearance_considered", "requested_by",
            "requested_at", "decided_by", "decided_at", "decision_reason", "referred_on", "filed_on",
            "judgment_on", "concluded_on", "outcome", "evidence_sha256",
        ]  # fmt: skip


class ReferralFilter(filters.FilterSet):
    status = filters.ChoiceFilter(choices=LegalReferral.Status.choices)
    case = IdFilter(field_name="case_id", min_value=1)

    class Meta:
        model = LegalReferral
        fields = ["status", "case"]


REFERRAL_EXAMPLE = {
    "case": 4711,
    "reason": "No payment for 120 days; three promises broken; borrower stopped answering.",
    "forbearance_considered": (
        "Offered a 6-month term extension and a payment holiday on 2026-02-10; both refused."
    ),
}


REFERRAL_OUT_EXAMPLE = {
    "id": 12,
    "case": 4711,
    "loan": 9051,
    "loan_ref": "L-2026-000456",
    "status": "referred",
    "reason": REFERRAL_EXAMPLE["reason"],
    "forbearance_considered": REFERRAL_EXAMPLE["forbearance_considered"],
    "requested_by": "li.na",
    "requested_at": "2026-04-01T10:00:00+08:00",
    "decided_by": "zhang.wei",
    "decided_at": "2026-04-02T09:00:00+08:00",
    "decision_reason": "Forbearance exhausted.",
    "referred_on": "2026-04-02",
    "filed_on": None,
    "judgment_on": None,
    "concluded_on": None,
    "outcome": "",
    "evidence_sha256": "9f2c1e0b7d5a4c3b2a1908f7e6d5c4b3a29180f7e6d5c4b3a29180f7e6d5c4b3",
}
REQUESTED_EXAMPLE = {
    **REFERRAL_OUT_EXAMPLE,
    "status": "requested",
    "decided_by": None,
    "decided_at": None,
    "decision_reason": "",
    "referred_on": None,
    "evidence_sha256": "",
}


def response_example(name: str, value, status_code: str = "200") -> OpenApiExample:
    return OpenApiExample(name, value=value, response_only=True, status_codes=[status_code])


@extend_schema_view(
    list=extend_schema(
        summary="List legal referrals", examples=[response_example("Referred", REFERRAL_OUT_EXAMPLE)]
    ),
    retrieve=extend_schema(
        summary="A legal referral", examples=[response_example("Referred", REFERRAL_OUT_EXAMPLE)]
    ),
)
class ReferralViewSet(IdLookupMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    access = Access(
        read="cases:read",
        staff_read="debt_collections.view_legalreferral",
        staff_write="debt_collections.add_legalreferral",
        actions={
            "approve": (None, referrals.PERM_APPROVE),
            "reject": (None, referrals.PERM_APPROVE),
        },
    )
    serializer_class = ReferralOut
    filterset_class = ReferralFilter

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # the schema generator has no caller
            return LegalReferral.objects.none()
        queryset = LegalReferral.objects.select_related("case__loan", "requested_by", "decided_by")
        return cases_visible(queryset, self.request, prefix="case__")

    def _detail(self, referral, code=status.HTTP_200_OK):
        return Response(ReferralOut(self.get_queryset().get(pk=referral.pk)).data, status=code)

    @extend_schema(
        summary="Request a legal referral (staff)",
        description=(
            "A collector may request only a case the scan recommended; a supervisor any case. Refused "
            "(422, `case`) for time-barred debt, a hold, an open promise or a borrower flag in force."
        ),
        request=ReferralIn,
        responses={201: ReferralOut},
        examples=[
            OpenApiExample("A request", value=REFERRAL_EXAMPLE, request_only=True),
            response_example("Requested", REQUESTED_EXAMPLE, "201"),
        ],
    )
    @idempotent
    def create(self, request):
        data = ReferralIn(data=request.data)
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        referral = referrals.referral_request(
            case=visible_case(request, fields["case"]),
            actor=request.user,
            reason=fields["reason"],
            forbearance_considered=fields["forbearance_considered"],
        )
        return self._detail(referral, status.HTTP_201_CREATED)

    @extend_schema(
        summary="Approve (supervisors; never one's own request)",
        description=(
            "The case enters legal referral and its evidence pack is built, in one transaction. The "
            "requester: 403."
        ),
        request=DecisionIn,
        responses={200: ReferralOut},
        examples=[
            OpenApiExample("Approve", value={"reason": "Forbearance exhausted."}, request_only=True),
            response_example("Referred", REFERRAL_OUT_EXAMPLE),
        ],
    )
    @action(detail=True, methods=["post"])
    def approve(self, request, id=None):
        referral = self.get_object()
        data = DecisionIn(data=request.data)
        data.is_valid(raise_exception=True)
        referral = referrals.referral_approve(
            referral=referral, actor=request.user, reason=data.validated_data["reason"]
        )
        return self._detail(referral)

    @extend_schema(
        summary="Reject (supervisors; never one's own request)",
        request=DecisionIn,
        responses={200: ReferralOut},
        examples=[
            OpenApiExample("Reject", value={"reason": "Try a settlement first."}, request_only=True),
            response_example(
                "Rejected",
                {
                    **REQUESTED_EXAMPLE,
                    "status": "rejected",
                    "decided_by": "zhang.wei",
                    "decided_at": "2026-04-02T09:00:00+08:00",
                    "decision_reason": "Try a settlement first.",
                },
            ),
        ],
    )
    @action(detail=True, methods=["post"])
    def reject(self, request, id=None):
        referral = self.get_object()
        data = DecisionIn(data=request.data)
        data.is_valid(raise_exception=True)
        referral = referrals.referral_reject(
            referral=referral, actor=request.user, reason=data.validated_data["reason"]
        )
        return self._detail(referral)


def register(router) -> None:
    router.register("legal-referrals", ReferralViewSet, basename="legal-referral")
