"""Inspection screens of the partner API: keys (revoke), webhook subscriptions (pause, resume),
the delivery log (redeliver) and the idempotency records.

Keys are made with ``manage.py create_partner_key`` (the key is shown once, on the terminal), so the
admin neither adds them nor shows or edits their hash. Every action calls the service a partner or
the command would call; an action needs the model's change permission.
"""

from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _

from api import keys, webhooks
from api.models import IdempotencyRecord, PartnerKey, WebhookDelivery, WebhookSubscription
from collections_site.admin_tools import ReadOnlyAdminMixin


class ChangePermissionActionMixin:
    """Actions marked ``permissions=["act"]`` need the model's change permission, which the
    read-only screens otherwise never grant (nothing is edited in a form here)."""

    def has_act_permission(self, request):
        opts = self.opts
        return request.user.has_perm(f"{opts.app_label}.change_{opts.model_name}")


@admin.register(PartnerKey)
class PartnerKeyAdmin(ChangePermissionActionMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["prefix", "partner", "name", "scopes", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["partner", ("revoked_at", admin.EmptyFieldListFilter)]
    list_select_related = ["partner"]
    search_fields = ["prefix", "partner__code", "partner__name", "name"]
    fields = [
        "partner", "name", "prefix", "scopes", "service_user", "created_at", "created_by", "last_used_at",
        "revoked_at",
    ]  # fmt: skip
    readonly_fields = fields
    actions = ["revoke"]

    @admin.action(description=_("Revoke the selected keys"), permissions=["act"])
    def revoke(self, request, queryset):
        revoked = 0
        for key in queryset.filter(revoked_at__isnull=True):
            keys.partner_key_revoke(key=key, revoked_by=request.user.get_username())
            revoked += 1
        self.message_user(request, _("%(n)s keys revoked.") % {"n": revoked}, messages.SUCCESS)


@admin.register(WebhookSubscription)
class WebhookSubscriptionAdmin(ChangePermissionActionMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["id", "partner", "url", "event_types", "is_active", "created_at"]
    list_filter = ["partner", "is_active"]
    list_select_related = ["partner"]
    search_fields = ["url", "partner__code", "description"]
    # The signing secret is never shown here: the partner holds it; it changes only through the API.
    fields = ["partner", "url", "event_types", "description", "is_active", "created_at"]
    readonly_fields = fields
    actions = ["pause", "resume"]

    def _set_active(self, request, queryset, active: bool):
        count = 0
        for subscription in queryset.filter(is_active=not active):
            webhooks.subscription_update(subscription=subscription, is_active=active)
            count += 1
        return count

    @admin.action(description=_("Pause the selected subscriptions"), permissions=["act"])
    def pause(self, request, queryset):
        count = self._set_active(request, queryset, False)
        self.message_user(request, _("%(n)s subscriptions paused.") % {"n": count}, messages.SUCCESS)

    @admin.action(description=_("Resume the selected subscriptions"), permissions=["act"])
    def resume(self, request, queryset):
        count = self._set_active(request, queryset, True)
        self.message_user(request, _("%(n)s subscriptions resumed.") % {"n": count}, messages.SUCCESS)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ChangePermissionActionMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "id", "event_type", "event", "subscription", "status", "attempts", "next_attempt_at",
        "last_status_code", "last_error", "delivered_at",
    ]  # fmt: skip
    list_filter = ["status", "event__event_type", "subscription__partner"]
    list_select_related = ["event", "subscription"]
    search_fields = ["=event__id", "subscription__url", "last_error"]
    fields = [
        "subscription", "event", "status", "attempts", "first_attempt_at", "last_attempt_at",
        "next_attempt_at", "last_status_code", "last_error", "delivered_at", "created_at",
    ]  # fmt: skip
    readonly_fields = fields
    actions = ["redeliver"]

    @admin.display(description=_("event type"), ordering="event__event_type")
    def event_type(self, obj):
        return obj.event.event_type

    @admin.action(description=_("Send the selected deliveries again"), permissions=["act"])
    def redeliver(self, request, queryset):
        count = 0
        for delivery in queryset:
            webhooks.delivery_redeliver(delivery=delivery, actor=request.user)
            count += 1
        self.message_user(
            request, _("%(n)s deliveries queued to be sent again.") % {"n": count}, messages.SUCCESS
        )


@admin.register(IdempotencyRecord)
class IdempotencyRecordAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["id", "owner", "key", "method", "path", "response_status", "created_at"]
    list_filter = ["method", "response_status"]
    search_fields = ["=key", "=owner", "path"]
    date_hierarchy = "created_at"
