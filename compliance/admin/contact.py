"""Admin screens: jurisdiction profiles and their rules (edits audited), borrower flags (through the
flag service), overrides, opt-outs and the contact log (read-only)."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.forms.models import model_to_dict
from django.utils.translation import gettext_lazy as _
from simple_history.admin import SimpleHistoryAdmin

from collections_site.admin_tools import ReadOnlyAdminMixin, ServiceAddAdminMixin, ServiceForm
from compliance import contact
from compliance.audit import audit_record
from compliance.models import (
    AuditEventType,
    BorrowerFlag,
    ChannelOptOut,
    ContactAttempt,
    ContactOverride,
    ContactRule,
    JurisdictionProfile,
)


class ContactRuleInline(admin.TabularInline):
    model = ContactRule
    extra = 0
    fields = ["rule", "enabled", "limit", "start", "end", "mode", "citation"]


def _audit_rule_edit(request, obj, change: bool, deleted: bool = False):
    audit_record(
        event_type=AuditEventType.RULE_EDIT,
        actor=request.user,
        subject=obj,
        details={
            "action": "deleted" if deleted else ("changed" if change else "added"),
            "values": model_to_dict(obj),
        },
    )


@admin.register(JurisdictionProfile)
class JurisdictionProfileAdmin(SimpleHistoryAdmin):
    list_display = ["code", "name", "regions", "updated_at"]
    inlines = [ContactRuleInline]

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        _audit_rule_edit(request, obj, change)

    def save_formset(self, request, form, formset, change):
        super().save_formset(request, form, formset, change)
        for rule in formset.new_objects:
            _audit_rule_edit(request, rule, change=False)
        for rule, _fields in formset.changed_objects:
            _audit_rule_edit(request, rule, change=True)
        for rule in formset.deleted_objects:
            _audit_rule_edit(request, rule, change=True, deleted=True)

    def delete_model(self, request, obj):
        _audit_rule_edit(request, obj, change=True, deleted=True)
        super().delete_model(request, obj)


@admin.register(ContactRule)
class ContactRuleAdmin(SimpleHistoryAdmin):
    list_display = ["profile", "rule", "enabled", "limit", "start", "end", "mode", "citation"]
    list_filter = ["profile", "rule", "enabled"]

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        _audit_rule_edit(request, obj, change)

    def delete_model(self, request, obj):
        _audit_rule_edit(request, obj, change=True, deleted=True)
        super().delete_model(request, obj)


class BorrowerFlagForm(ServiceForm):
    class Meta:
        model = BorrowerFlag
        fields = ["borrower", "kind", "reason", "until"]

    def call_service(self, cleaned):
        return contact.borrower_flag_set(
            borrower=cleaned["borrower"], kind=cleaned["kind"], reason=cleaned["reason"],
            until=cleaned.get("until"), actor=self.request.user,
        )  # fmt: skip


@admin.register(BorrowerFlag)
class BorrowerFlagAdmin(ServiceAddAdminMixin, SimpleHistoryAdmin):
    form = BorrowerFlagForm
    list_display = ["borrower", "kind", "reason", "until", "set_by", "set_at", "released_at"]
    list_filter = ["kind", ("released_at", admin.EmptyFieldListFilter)]
    list_select_related = ["borrower", "set_by"]
    raw_id_fields = ["borrower"]
    actions = ["release"]

    @admin.action(description=_("Release the selected flags"))
    def release(self, request, queryset):
        released = 0
        for flag in queryset.filter(released_at__isnull=True):
            try:
                contact.borrower_flag_release(flag=flag, actor=request.user)
            except (ValidationError, PermissionDenied) as exc:
                self.message_user(request, str(exc), messages.ERROR)
                return
            released += 1
        self.message_user(request, _("%(n)s flags released.") % {"n": released}, messages.SUCCESS)


class ContactOverrideForm(ServiceForm):
    codes = forms.CharField(
        label=_("reason codes overridden"),
        help_text=_("Comma-separated, as check_contact gave them: quiet_hours, daily_connected_cap, ..."),
    )

    class Meta:
        model = ContactOverride
        fields = ["borrower", "channel", "contact_point", "reason"]

    def call_service(self, cleaned):
        return contact.contact_override_grant(
            borrower=cleaned["borrower"], channel=cleaned["channel"],
            contact_point=cleaned.get("contact_point"),
            reasons=[code.strip() for code in cleaned["codes"].split(",") if code.strip()],
            reason=cleaned["reason"], actor=self.request.user,
        )  # fmt: skip


class ChannelOptOutForm(ServiceForm):
    class Meta:
        model = ChannelOptOut
        fields = ["borrower", "channel", "contact_point", "note"]

    def call_service(self, cleaned):
        return contact.channel_opt_out_record(
            borrower=cleaned["borrower"], channel=cleaned["channel"],
            contact_point=cleaned.get("contact_point"), note=cleaned.get("note", ""),
        )  # fmt: skip


@admin.register(ContactOverride)
class ContactOverrideAdmin(ServiceAddAdminMixin, admin.ModelAdmin):
    form = ContactOverrideForm
    raw_id_fields = ["borrower", "contact_point"]
    list_display = [
        "borrower", "channel", "reasons", "reason", "granted_by", "granted_at", "valid_until", "used_at",
    ]  # fmt: skip
    list_select_related = ["borrower", "granted_by"]


@admin.register(ChannelOptOut)
class ChannelOptOutAdmin(ServiceAddAdminMixin, admin.ModelAdmin):
    form = ChannelOptOutForm
    raw_id_fields = ["borrower", "contact_point"]
    list_display = ["borrower", "channel", "contact_point_id", "at", "note"]  # the id: no phone on screen
    list_select_related = ["borrower"]


@admin.register(ContactAttempt)
class ContactAttemptAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "at", "borrower", "channel", "direction", "purpose", "connected", "answered", "right_party",
        "outcome",
    ]  # fmt: skip
    list_filter = ["channel", "direction", "purpose", "answered"]
    list_select_related = ["borrower"]
    date_hierarchy = "at"
