"""``/api/v1/webhooks/``: a partner's webhook subscriptions, their delivery log, and redelivery.

The signing secret is shown once, in the response that creates the subscription. Staff with
``api.view_webhooksubscription`` may read every partner's subscriptions and logs; nobody but the
partner changes them.
"""

from __future__ import annotations

from django.core.validators import URLValidator
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext_lazy as _
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from api import webhooks
from api.access import Access, partner_visible, request_partner
from api.lookup import id_lookup
from api.models import WebhookDelivery, WebhookSubscription
from api.pagination import IdCursorPagination
from api.serializers import StrictSerializer
from api.views.base import ApiViewSet

EVENT_TYPE_CHOICES = list(webhooks.EVENT_TYPES.items())


class HttpUrlField(serializers.URLField):
    """An http(s) URL (DRF's URLField also takes ftp)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.validators = [v for v in self.validators if not isinstance(v, URLValidator)]
        self.validators.append(
            URLValidator(schemes=["http", "https"], message=self.error_messages["invalid"])
        )


class WebhookIn(StrictSerializer):
    url = HttpUrlField(max_length=500, help_text=_("Where to POST the events (http or https)."))
    event_types = serializers.ListField(
        child=serializers.ChoiceField(choices=EVENT_TYPE_CHOICES),
        default=list,
        max_length=len(EVENT_TYPE_CHOICES),
        help_text=_("The events to send; empty: every event."),
    )
    secret = serializers.CharField(
        min_length=webhooks.SECRET_MIN_LENGTH,
        max_length=webhooks.SECRET_MAX_LENGTH,
        required=False,
        write_only=True,
        trim_whitespace=False,
        help_text=_("Your own signing secret; leave it out to have one made (shown once)."),
    )
    description = serializers.CharField(max_length=200, default="", allow_blank=True)
    is_active = serializers.BooleanField(default=True)


class WebhookOut(serializers.ModelSerializer):
    partner = serializers.SlugRelatedField(slug_field="code", read_only=True)
    event_types = serializers.ListField(
        child=serializers.ChoiceField(choices=EVENT_TYPE_CHOICES),
        help_text=_("The events sent; empty: every event."),
    )

    class Meta:
        model = WebhookSubscription
        fields = ["id", "partner", "url", "event_types", "description", "is_active", "created_at"]


class WebhookCreatedOut(WebhookOut):
    secret = serializers.CharField(
        help_text=_("The HMAC-SHA256 signing secret. Shown only in this response: store it now.")
    )

    class Meta(WebhookOut.Meta):
        fields = [*WebhookOut.Meta.fields, "secret"]


class DeliveryOut(serializers.ModelSerializer):
    event_id = serializers.IntegerField()
    event_type = serializers.CharField(source="event.event_type")
    event_created_at = serializers.DateTimeField(source="event.created_at")

    class Meta:
        model = WebhookDelivery
        fields = [
            "id", "event_id", "event_type", "event_created_at", "status", "attempts", "first_attempt_at",
            "last_attempt_at", "next_attempt_at", "last_status_code", "last_error", "delivered_at",
            "created_at",
        ]  # fmt: skip


class DeliveryFilter(filters.FilterSet):
    status = filters.ChoiceFilter(choices=WebhookDelivery.Status.choices)
    event_type = filters.ChoiceFilter(field_name="event__event_type", choices=EVENT_TYPE_CHOICES)

    class Meta:
        model = WebhookDelivery
        fields = ["status", "event_type"]


class NewestFirstPagination(IdCursorPagination):
    ordering = "-id"


WEBHOOK_EXAMPLE = {
    "url": "https://partner.example.com/hooks/collections",
    "event_types": ["case.opened", "case.stage_changed", "promise.broken"],
    "description": "collections events for the servicing platform",
}
SUBSCRIPTION_EXAMPLE = {
    "id": 7,
    "partner": "acme",
    **WEBHOOK_EXAMPLE,
    "is_active": True,
    "created_at": "2026-03-02T09:15:00+08:00",
}
CREATED_EXAMPLE = SUBSCRIPTION_EXAMPLE | {"secret": "q1ktq8Wm0N0pZtZg3CqY2x1u7Yv4sB6eXJ3wq9aD4fE"}
DELIVERY_EXAMPLE = {
    "id": 1042,
    "event_id": 88231,
    "event_type": "case.opened",
    "event_created_at": "2026-03-02T02:00:04+08:00",
    "status": "pending",
    "attempts": 3,
    "first_attempt_at": "2026-03-02T02:00:15+08:00",
    "last_attempt_at": "2026-03-02T02:02:15+08:00",
    "next_attempt_at": "2026-03-02T02:04:15+08:00",
    "last_status_code": 503,
    "last_error": "HTTP 503",
    "delivered_at": None,
    "created_at": "2026-03-02T02:00:15+08:00",
}
DELIVERY_STATUS_PARAMETER = OpenApiParameter(
    "status",
    OpenApiTypes.STR,
    enum=WebhookDelivery.Status.values,
    description="Only deliveries in this status.",
)
DELIVERY_TYPE_PARAMETER = OpenApiParameter(
    "event_type", OpenApiTypes.STR, enum=list(webhooks.EVENT_TYPES), description="Only this event type."
)
ID_PARAMETER = OpenApiParameter(
    "id", OpenApiTypes.INT, OpenApiParameter.PATH, description="The subscription's id."
)
DELIVERY_ID_PARAMETER = OpenApiParameter(
    "delivery_id", OpenApiTypes.INT, OpenApiParameter.PATH, description="The delivery's id."
)


@extend_schema_view(
    list=extend_schema(
        summary="List webhook subscriptions",
        examples=[OpenApiExample("A subscription", value=SUBSCRIPTION_EXAMPLE, response_only=True)],
    ),
    retrieve=extend_schema(
        summary="A webhook subscription",
        parameters=[ID_PARAMETER],
        examples=[OpenApiExample("A subscription", value=SUBSCRIPTION_EXAMPLE, response_only=True)],
    ),
    create=extend_schema(
        summary="Subscribe to events",
        description=(
            "Events are POSTed as JSON, signed: `X-Signature: sha256=<hex HMAC-SHA256 of "
            '"<X-Timestamp>.<body>">` with the secret, which this response shows once. A failed '
            "delivery is retried with exponential backoff for 24 hours."
        ),
        request=WebhookIn,
        responses={201: WebhookCreatedOut},
        examples=[
            OpenApiExample("Case events", value=WEBHOOK_EXAMPLE, request_only=True),
            OpenApiExample("Created (secret shown once)", value=CREATED_EXAMPLE, response_only=True),
        ],
    ),
    partial_update=extend_schema(
        summary="Change a webhook subscription",
        parameters=[ID_PARAMETER],
        request=WebhookIn,
        responses={200: WebhookOut},
        examples=[OpenApiExample("Pause it", value={"is_active": False}, request_only=True)],
    ),
    destroy=extend_schema(
        summary="Delete a webhook subscription (and its delivery log)",
        parameters=[ID_PARAMETER],
        responses={204: None},
    ),
)
class WebhookViewSet(ApiViewSet):
    access = Access(
        read="webhooks:manage", write="webhooks:manage", staff_read="api.view_webhooksubscription"
    )
    serializer_class = WebhookOut
    lookup_value_regex = r"[^/]+"
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self):
        return partner_visible(WebhookSubscription.objects.select_related("partner"), self.request)

    def get_object(self):
        subscription = get_object_or_404(self.get_queryset(), pk=id_lookup(self.kwargs["pk"]))
        self.check_object_permissions(self.request, subscription)
        return subscription

    def list(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(WebhookOut(page, many=True).data)

    def retrieve(self, request, pk=None):
        return Response(WebhookOut(self.get_object()).data)

    def create(self, request):
        data = WebhookIn(data=request.data)
        data.is_valid(raise_exception=True)
        subscription = webhooks.subscription_create(partner=request_partner(request), **data.validated_data)
        subscription = self.get_queryset().get(pk=subscription.pk)
        return Response(WebhookCreatedOut(subscription).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, pk=None):
        subscription = self.get_object()
        data = WebhookIn(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        subscription = webhooks.subscription_update(subscription=subscription, **data.validated_data)
        return Response(WebhookOut(self.get_queryset().get(pk=subscription.pk)).data)

    def destroy(self, request, pk=None):
        webhooks.subscription_delete(subscription=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="A subscription's delivery log, newest first",
        parameters=[ID_PARAMETER, DELIVERY_STATUS_PARAMETER, DELIVERY_TYPE_PARAMETER],
        responses={200: DeliveryOut(many=True)},
        examples=[OpenApiExample("A delivery being retried", value=DELIVERY_EXAMPLE, response_only=True)],
        filters=False,
    )
    @action(detail=True, methods=["get"], pagination_class=NewestFirstPagination)
    def deliveries(self, request, pk=None):
        subscription = self.get_object()
        queryset = WebhookDelivery.objects.filter(subscription=subscription).select_related("event")
        found = DeliveryFilter(request.query_params, queryset=queryset)
        if not found.is_valid():
            raise serializers.ValidationError(found.errors)
        page = self.paginate_queryset(found.qs)
        return self.get_paginated_response(DeliveryOut(page, many=True).data)

    @extend_schema(
        summary="Send a delivery again",
        description=(
            "Queues the delivery for the next run (within seconds), whatever its status, with a new "
            "24-hour retry window."
        ),
        parameters=[ID_PARAMETER, DELIVERY_ID_PARAMETER],
        request=None,
        responses={202: DeliveryOut},
        examples=[
            OpenApiExample(
                "Queued again",
                value=DELIVERY_EXAMPLE
                | {"status": "pending", "attempts": 0, "first_attempt_at": None, "last_error": "HTTP 503"},
                response_only=True,
                status_codes=["202"],
            )
        ],
    )
    @action(detail=True, methods=["post"], url_path=r"deliveries/(?P<delivery_id>[^/]+)/redeliver")
    def redeliver(self, request, pk=None, delivery_id=None):
        subscription = self.get_object()
        delivery = get_object_or_404(WebhookDelivery, subscription=subscription, pk=id_lookup(delivery_id))
        delivery = webhooks.delivery_redeliver(delivery=delivery, actor=request.user)
        delivery = WebhookDelivery.objects.select_related("event").get(pk=delivery.pk)
        return Response(DeliveryOut(delivery).data, status=status.HTTP_202_ACCEPTED)


def register(router) -> None:
    router.register("webhooks", WebhookViewSet, basename="webhook")
