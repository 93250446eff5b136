"""Configuration (policies, teams) and inspection (cases, transitions, runs, outbox) screens.

Cases are written by the scan and the services; here a supervisor reassigns cases, approves
requests legal referrals, and adds holds and promises, each through its service so the same
checks, history and events apply as anywhere else.
"""

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils.translation import gettext_lazy as _
from simple_history.admin import SimpleHistoryAdmin

from collections_site.admin_tools import ReadOnlyAdminMixin, ServiceAddAdminMixin, ServiceForm
from compliance.audit import audit_record
from compliance.models import AuditEventType
from debt_collections import services
from debt_collections.admin.contacts import INSTALMENTS_HELP, CaseContactInline, parse_instalments
from debt_collections.models import (
    Case,
    CaseHold,
    CollectionPolicy,
    DueReminder,
    OutboxEvent,
    PromiseInstalment,
    PromiseToPay,
    ScanChunk,
    ScanRun,
    StageTransition,
    Team,
    TeamMember,
)


def _values(obj) -> dict:
    """The editable fields of a row as the audit log keeps them (a related row by its id)."""
    return {
        f.name: f.value_from_object(obj)
        for f in obj._meta.concrete_fields
        if f.editable and not f.primary_key
    }


class RuleEditAuditMixin:
    """Edits of the collection rules (policies, teams and their members) are audited: a ``rule_edit``
    event in the admin's transaction, naming the fields changed with their old and new values, read
    from the database (so a revert from the history screen is recorded as well as the change form)."""

    def _audit(self, request, obj, action: str, **details):
        audit_record(
            event_type=AuditEventType.RULE_EDIT,
            actor=request.user,
            subject=obj,
            details={"action": action, "object": str(obj), **details},
        )

    def save_model(self, request, obj, form, change):
        with transaction.atomic():
            stored = (
                type(obj)._default_manager.select_for_update().filter(pk=obj.pk).first() if change else None
            )
            super().save_model(request, obj, form, change)
            if stored is None:
                self._audit(request, obj, "added", fields=_values(obj))
                return
            before, after = _values(stored), _values(obj)
            fields = {
                name: {"from": before[name], "to": value}
                for name, value in after.items()
                if value != before[name]
            }
            if fields:
                self._audit(request, obj, "changed", fields=fields)

    def save_related(self, request, form, formsets, change):
        with transaction.atomic():
            super().save_related(request, form, formsets, change)
            inlines = {}
            for formset in formsets:
                rows = {
                    "added": [{"id": o.pk, "object": str(o)} for o in formset.new_objects],
                    "changed": [
                        {"id": o.pk, "object": str(o), "fields": list(fields)}
                        for o, fields in formset.changed_objects
                    ],
                    "deleted": [{"object": str(o)} for o in formset.deleted_objects],
                }
                if any(rows.values()):
                    inlines[formset.model._meta.model_name] = {k: v for k, v in rows.items() if v}
            if inlines:
                self._audit(request, form.instance, "changed", inlines=inlines)

    def delete_model(self, request, obj):
        with transaction.atomic():
            self._audit(request, obj, "deleted", fields=_values(obj))
            super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        with transaction.atomic():
            for obj in queryset:
                self._audit(request, obj, "deleted", fields=_values(obj))
            super().delete_queryset(request, queryset)


@admin.register(CollectionPolicy)
class CollectionPolicyAdmin(RuleEditAuditMixin, SimpleHistoryAdmin):
    list_display = [
        "name", "product", "early_warning_dpd", "follow_up_call_dpd", "notice_dpd", "restructuring_dpd",
        "legal_referral_dpd", "pre_due_reminder_days",
    ]  # fmt: skip
    list_select_related = ["product"]

    def has_delete_permission(self, request, obj=None):
        # The scan needs the default policy.
        return not (obj is not None and obj.is_default) and super().has_delete_permission(request, obj)


class TeamMemberInline(admin.TabularInline):
    model = TeamMember
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Team)
class TeamAdmin(RuleEditAuditMixin, SimpleHistoryAdmin):
    list_display = ["code", "name", "stage"]
    inlines = [TeamMemberInline]


class CaseActionForm(admin.helpers.ActionForm):
    assignee = forms.ModelChoiceField(
        queryset=get_user_model().objects.filter(is_active=True).order_by("username"),
        required=False,
        label=_("assignee"),
    )
    reason = forms.CharField(required=False, label=_("reason"), max_length=300)


class TransitionInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = StageTransition
    fields = ["at", "as_of", "from_stage", "to_stage", "close_reason", "actor", "reason"]
    readonly_fields = fields
    extra = 0


class HoldInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = CaseHold
    fk_name = "case"
    fields = ["reason", "note", "until", "set_by", "set_at", "released_at", "released_by"]
    readonly_fields = fields
    extra = 0


class PromiseInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = PromiseToPay
    fields = ["amount", "promised_date", "made_on", "status", "paid_amount", "resolved_on", "created_by"]
    readonly_fields = fields
    extra = 0


@admin.register(Case)
class CaseAdmin(SimpleHistoryAdmin):
    list_display = [
        "id", "loan", "stage", "status", "priority", "assignee", "team", "next_action_date",
        "referral_recommended_on", "broken_promises", "opened_on", "closed_on",
    ]  # fmt: skip
    list_filter = [
        "status",
        "stage",
        "team",
        "close_reason",
        ("referral_recommended_on", admin.EmptyFieldListFilter),
    ]
    search_fields = ["loan__external_ref", "loan__borrower__full_name"]
    list_select_related = ["loan", "assignee", "team"]
    raw_id_fields = ["loan"]
    readonly_fields = [f.name for f in Case._meta.fields]
    inlines = [TransitionInline, HoldInline, PromiseInline, CaseContactInline]
    action_form = CaseActionForm
    actions = ["reassign", "request_referral"]
    list_per_page = 50

    def has_add_permission(self, request):
        return False  # the scan opens cases

    def has_delete_permission(self, request, obj=None):
        return False

    def _run(self, request, fn, done_message):
        try:
            count = fn()
        except ValidationError as exc:
            self.message_user(request, "; ".join(exc.messages), messages.ERROR)
        except PermissionDenied as exc:
            self.message_user(request, str(exc) or _("You are not allowed to do this."), messages.ERROR)
        else:
            self.message_user(request, done_message % {"n": count}, messages.SUCCESS)

    def has_reassign_permission(self, request):
        return request.user.has_perm("debt_collections.reassign_case")

    def has_request_referral_permission(self, request):
        return request.user.has_perm("debt_collections.add_legalreferral")

    @admin.action(
        description=_("Reassign the selected cases to the chosen assignee"), permissions=["reassign"]
    )
    def reassign(self, request, queryset):
        assignee = CaseActionForm(request.POST).fields["assignee"].clean(request.POST.get("assignee") or None)
        if assignee is None:
            self.message_user(request, _("Choose an assignee."), messages.ERROR)
            return
        self._run(
            request,
            lambda: services.cases_reassign(
                cases=list(queryset),
                assignee=assignee,
                actor=request.user,
                reason=request.POST.get("reason", ""),
            ),
            _("%(n)s cases reassigned."),
        )

    @admin.action(
        description=_("Request the legal referral of the selected case"), permissions=["request_referral"]
    )
    def request_referral(self, request, queryset):
        # A referral needs a written reason and the forbearance considered, and another supervisor's
        # approval: this opens the referral request form for the case (debt_collections.referrals).
        from django.shortcuts import redirect
        from django.urls import reverse

        cases = list(queryset.values_list("pk", flat=True)[:2])
        if len(cases) != 1:
            self.message_user(request, _("Choose exactly one case to refer."), messages.ERROR)
            return None
        return redirect(f"{reverse('admin:debt_collections_legalreferral_add')}?case={cases[0]}")


class CaseHoldForm(ServiceForm):
    class Meta:
        model = CaseHold
        fields = ["case", "reason", "note", "until"]

    def call_service(self, c):
        return services.case_hold_add(
            case=c["case"], reason=c["reason"], note=c["note"], until=c.get("until"), actor=self.request.user
        )


class PromiseForm(ServiceForm):
    instalments = forms.CharField(
        label=_("instalments"),
        widget=forms.Textarea(attrs={"rows": 6, "cols": 40}),
        help_text=INSTALMENTS_HELP,
    )

    class Meta:
        model = PromiseToPay
        fields = ["case"]

    def clean_instalments(self):
        return parse_instalments(self.cleaned_data["instalments"])

    def call_service(self, c):
        return services.promise_record(case=c["case"], instalments=c["instalments"], actor=self.request.user)


class ServiceAddAdmin(ServiceAddAdminMixin, SimpleHistoryAdmin):
    raw_id_fields = ["case"]


@admin.register(CaseHold)
class CaseHoldAdmin(ServiceAddAdmin):
    form = CaseHoldForm
    list_display = ["case", "reason", "note", "until", "set_by", "set_at", "released_at"]
    list_filter = ["reason", ("released_at", admin.EmptyFieldListFilter)]
    list_select_related = ["case", "set_by"]
    actions = ["release"]

    @admin.action(description=_("Release the selected holds"))
    def release(self, request, queryset):
        released = 0
        for hold in queryset.filter(released_at__isnull=True):
            try:
                services.case_hold_release(hold=hold, actor=request.user)
            except (ValidationError, PermissionDenied) as exc:
                self.message_user(request, str(exc), messages.ERROR)
                return
            released += 1
        self.message_user(request, _("%(n)s holds released.") % {"n": released}, messages.SUCCESS)


class PromiseInstalmentInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = PromiseInstalment
    fields = ["number", "due_date", "amount"]
    readonly_fields = fields
    extra = 0


@admin.register(PromiseToPay)
class PromiseToPayAdmin(ServiceAddAdmin):
    form = PromiseForm
    list_display = [
        "case", "amount", "promised_date", "made_on", "status", "paid_amount", "resolved_on", "created_by",
    ]  # fmt: skip
    list_filter = ["status"]
    list_select_related = ["case", "created_by"]
    inlines = [PromiseInstalmentInline]

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["case", "instalments"]
        return [
            "case", "amount", "promised_date", "made_on", "status", "paid_amount", "resolved_on",
            "created_by",
        ]  # fmt: skip

    def get_inlines(self, request, obj):
        return self.inlines if obj is not None else []  # the plan is typed on the add form


@admin.register(StageTransition)
class StageTransitionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["case", "from_stage", "to_stage", "close_reason", "as_of", "at", "actor", "reason"]
    list_filter = ["to_stage", "from_stage", "as_of"]
    list_select_related = ["case", "actor"]


class ChunkInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = ScanChunk
    fields = ["number", "first_loan_id", "end_loan_id", "status", "seconds", *ScanChunk.COUNTERS]
    readonly_fields = fields
    extra = 0


@admin.register(ScanRun)
class ScanRunAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["as_of", "status", "full", "attempts", "started_at", "finished_at"]
    inlines = [ChunkInline]


@admin.register(OutboxEvent)
class OutboxEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["id", "event_type", "partner", "subject_id", "created_at", "delivered_at", "attempts"]
    list_filter = ["event_type", ("delivered_at", admin.EmptyFieldListFilter)]
    list_select_related = ["partner"]


@admin.register(DueReminder)
class DueReminderAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["loan", "due_date", "amount_due", "queued_on", "sent_at"]
    list_select_related = ["loan"]
    raw_id_fields = ["loan"]
