"""``/api/v1/audit-events/``: the hash-chained audit log, for compliance officers only
(``compliance.view_auditevent``; partner keys never: 403), and ``verify/``, which walks the chain and
says whether any row was edited, deleted or moved (``compliance.audit.verify_chain``)."""

from __future__ import annotations

from datetime import UTC

from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext as _
from django_filters import rest_framework as filters
from django_filters.fields import IsoDateTimeField
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_field, extend_schema_view
from rest_framework import mixins, serializers
from rest_framework.decorators import action
from rest_framework.response import Response

from api.access import Access
from api.views.base import ApiViewSet
from api.views.cases import IdLookupMixin
from compliance.audit import verify_chain
from compliance.models import AuditEvent, AuditEventType


class AuditEventOut(serializers.ModelSerializer):
    actor = serializers.IntegerField(
        source="actor_id", allow_null=True, help_text="The user's id; null: the system."
    )
    actor_label = serializers.CharField(help_text='The username at the time, or "scan", "system".')
    details = serializers.JSONField()

    class Meta:
        model = AuditEvent
        fields = [
            "id", "event_type", "at", "actor", "actor_label", "subject_type", "subject_id", "details",
            "prev_hash", "hash",
        ]  # fmt: skip


class ChainProblemOut(serializers.Serializer):
    event_id = serializers.IntegerField()
    problem = serializers.CharField()


class ChainOut(serializers.Serializer):
    intact = serializers.BooleanField(
        help_text="True when every row links to the one before and matches its hash."
    )
    checked_at = serializers.DateTimeField()
    events = serializers.IntegerField(help_text="Events in the log.")
    first_problem = ChainProblemOut(allow_null=True)


class MomentField(IsoDateTimeField):
    """An ISO 8601 moment that the database can hold in UTC (year 1 at +14:00 cannot be)."""

    def to_python(self, value):
        moment = super().to_python(value)
        if moment is not None:
            try:
                moment.astimezone(UTC)
            except OverflowError:
                raise ValidationError(_("The time is out of range."), code="invalid") from None
        return moment


@extend_schema_field(OpenApiTypes.DATETIME)
class MomentFilter(filters.IsoDateTimeFilter):
    field_class = MomentField


class AuditEventFilter(filters.FilterSet):
    event_type = filters.ChoiceFilter(choices=AuditEventType.choices)
    subject_type = filters.CharFilter(help_text='A model label, e.g. "debt_collections.case".')
    subject_id = filters.CharFilter()
    actor = filters.CharFilter(field_name="actor_label", help_text='A username, or "scan", "system".')
    at_from = MomentFilter(field_name="at", lookup_expr="gte")
    at_to = MomentFilter(field_name="at", lookup_expr="lt", help_text="Exclusive.")

    class Meta:
        model = AuditEvent
        fields = ["event_type", "subject_type", "subject_id", "actor", "at_from", "at_to"]


AUDIT_EVENT_EXAMPLE = {
    "id": 18233,
    "event_type": "approval",
    "at": "2026-03-12T09:30:00+08:00",
    "actor": 23,
    "actor_label": "zhang.wei",
    "subject_type": "debt_collections.restructuring",
    "subject_id": "61",
    "details": {"approved": "restructuring", "restructuring": 61, "case": 4711, "kind": "term_extension"},
    "prev_hash": "5e1a0c6f3b2d4e8a9c7b6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a",
    "hash": "a3f9d2c1b0e8f7a6d5c4b3a2918f7e6d5c4b3a2918f7e6d5c4b3a2918f7e6d5c",
}


@extend_schema_view(
    list=extend_schema(
        summary="List audit events (compliance officers)",
        examples=[OpenApiExample("An approval", value=AUDIT_EVENT_EXAMPLE, response_only=True)],
    ),
    retrieve=extend_schema(
        summary="An audit event (compliance officers)",
        examples=[OpenApiExample("An approval", value=AUDIT_EVENT_EXAMPLE, response_only=True)],
    ),
)
class AuditEventViewSet(IdLookupMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    access = Access(staff_read="compliance.view_auditevent")
    serializer_class = AuditEventOut
    filterset_class = AuditEventFilter
    queryset = AuditEvent.objects.all()

    @extend_schema(
        summary="Verify the audit chain",
        responses={200: ChainOut},
        examples=[
            OpenApiExample(
                "Intact",
                value={
                    "intact": True,
                    "checked_at": "2026-03-02T10:00:00+08:00",
                    "events": 18234,
                    "first_problem": None,
                },
                response_only=True,
            ),
            OpenApiExample(
                "A row was edited",
                value={
                    "intact": False,
                    "checked_at": "2026-03-02T10:00:00+08:00",
                    "events": 18234,
                    "first_problem": {
                        "event_id": 912,
                        "problem": "its contents do not match its hash (the row was edited)",
                    },
                },
                response_only=True,
            ),
        ],
    )
    @action(detail=False, methods=["get"], pagination_class=None, filterset_class=None)
    def verify(self, request):
        problem = verify_chain()
        body = {
            "intact": problem is None,
            "checked_at": timezone.now(),
            "events": AuditEvent.objects.count(),
            "first_problem": {"event_id": problem.event_id, "problem": problem.problem} if problem else None,
        }
        return Response(ChainOut(body).data)


def register(router) -> None:
    router.register("audit-events", AuditEventViewSet, basename="audit-event")
