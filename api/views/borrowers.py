"""``/api/v1/borrowers/``: a partner's borrowers with their contact points (personal data masked)."""

from __future__ import annotations

from django_filters import rest_framework as filters
from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status
from rest_framework.response import Response

from api.access import Access, partner_visible, request_partner
from api.idempotency import idempotent
from api.lookup import ID_OR_REF_PARAMETER, IdOrRefLookupMixin
from api.serializers import StrictSerializer
from api.views.base import ApiViewSet
from loans import services
from loans.masking import mask_contact_value, mask_national_id
from loans.models import Borrower, ContactPoint, Language


class ContactPointIn(StrictSerializer):
    kind = serializers.ChoiceField(choices=ContactPoint.Kind.choices)
    value = serializers.CharField(max_length=300)
    label = serializers.ChoiceField(choices=ContactPoint.Label.choices, default=ContactPoint.Label.MOBILE)
    is_primary = serializers.BooleanField(default=False)
    consent_given = serializers.BooleanField(default=True)
    is_third_party = serializers.BooleanField(default=False)
    third_party_name = serializers.CharField(max_length=200, default="", allow_blank=True)
    relationship = serializers.CharField(max_length=50, default="", allow_blank=True)


class ContactPointOut(serializers.ModelSerializer):
    value = serializers.SerializerMethodField(help_text="Masked.")

    class Meta:
        model = ContactPoint
        fields = [
            "id", "kind", "label", "value", "is_primary", "consent_given", "opted_out", "is_third_party",
            "relationship", "is_valid",
        ]  # fmt: skip

    def get_value(self, obj) -> str:
        return mask_contact_value(obj.kind, obj.value)


class BorrowerIn(StrictSerializer):
    external_ref = serializers.CharField(max_length=100)
    full_name = serializers.CharField(max_length=200)
    national_id = serializers.CharField(max_length=64, default="", allow_blank=True)
    date_of_birth = serializers.DateField(required=False, allow_null=True, default=None)
    time_zone = serializers.CharField(
        max_length=64, default="", allow_blank=True, help_text="IANA zone, e.g. Asia/Shanghai."
    )
    preferred_language = serializers.ChoiceField(choices=Language.choices, default=Language.ZH_HANS)
    region = serializers.CharField(
        max_length=10, default="", allow_blank=True, help_text='ISO 3166: "CN", "US-NY", "GB-SCT".'
    )
    contact_points = ContactPointIn(many=True, default=list, max_length=20)


class BorrowerOut(serializers.ModelSerializer):
    partner = serializers.SlugRelatedField(slug_field="code", read_only=True)
    national_id = serializers.SerializerMethodField(help_text="Masked.")
    contact_points = ContactPointOut(many=True, read_only=True)

    class Meta:
        model = Borrower
        fields = [
            "id", "partner", "external_ref", "full_name", "national_id", "time_zone", "preferred_language",
            "region", "contact_points", "created_at", "updated_at",
        ]  # fmt: skip

    def get_national_id(self, obj) -> str:
        return mask_national_id(obj.national_id)


class BorrowerFilter(filters.FilterSet):
    external_ref = filters.CharFilter()
    region = filters.CharFilter()

    class Meta:
        model = Borrower
        fields = ["external_ref", "region"]


BORROWER_EXAMPLE = {
    "external_ref": "B-2026-000123",
    "full_name": "王小明",
    "national_id": "110101199003074518",
    "date_of_birth": "1990-03-07",
    "time_zone": "Asia/Shanghai",
    "preferred_language": "zh-hans",
    "region": "CN",
    "contact_points": [{"kind": "phone", "value": "+8613800138000", "is_primary": True}],
}


@extend_schema_view(
    list=extend_schema(summary="List borrowers"),
    retrieve=extend_schema(summary="A borrower", parameters=[ID_OR_REF_PARAMETER]),
    create=extend_schema(
        summary="Create a borrower",
        request=BorrowerIn,
        responses={201: BorrowerOut},
        examples=[OpenApiExample("A borrower in China", value=BORROWER_EXAMPLE, request_only=True)],
    ),
)
class BorrowerViewSet(IdOrRefLookupMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    access = Access(read="borrowers:read", write="borrowers:write", staff_read="loans.view_borrower")
    serializer_class = BorrowerOut
    filterset_class = BorrowerFilter

    def get_queryset(self):
        queryset = Borrower.objects.select_related("partner").prefetch_related("contact_points")
        return partner_visible(queryset, self.request)

    @idempotent
    def create(self, request):
        data = BorrowerIn(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        points = [services.ContactPointIn(**p) for p in fields.pop("contact_points")]
        borrower = services.borrower_create(partner=request_partner(request), contact_points=points, **fields)
        borrower = self.get_queryset().get(pk=borrower.pk)
        return Response(BorrowerOut(borrower).data, status=status.HTTP_201_CREATED)


def register(router) -> None:
    router.register("borrowers", BorrowerViewSet, basename="borrower")
