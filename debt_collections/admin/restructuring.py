"""Restructurings: a collector proposes one from the add form (through ``restructuring_propose``); the
proposal's page shows the schedule as it stands beside the schedule proposed (next instalment, total
cost, end date, rows), frozen when it was proposed; a supervisor approves or rejects it with a reason
from the list's actions. Nothing here writes a model itself."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from simple_history.admin import SimpleHistoryAdmin

from collections_site.admin_tools import ServiceAddAdminMixin, ServiceForm
from debt_collections.models import Restructuring
from debt_collections.restructuring import restructuring_approve, restructuring_propose, restructuring_reject


class RestructuringForm(ServiceForm):
    class Meta:
        model = Restructuring
        fields = [
            "case", "kind", "first_due_date", "new_term", "new_annual_rate", "holiday_periods",
            "settlement_amount", "reason",
        ]  # fmt: skip
        help_texts = {
            "first_due_date": _(
                "The first due date of the new schedule; for a payment holiday, the first due date skipped."
            ),
        }

    def call_service(self, c):
        return restructuring_propose(
            case=c["case"],
            kind=c["kind"],
            actor=self.request.user,
            reason=c["reason"],
            first_due_date=c.get("first_due_date"),
            new_term=c.get("new_term"),
            new_annual_rate=c.get("new_annual_rate"),
            holiday_periods=c.get("holiday_periods"),
            settlement_amount=c.get("settlement_amount"),
        )


class DecisionForm(admin.helpers.ActionForm):
    reason = forms.CharField(required=False, label=_("reason"), max_length=300)


def _summary_table(summary: dict):
    rows = format_html_join(
        "",
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        (
            (r["number"], r["due_date"], r["principal"], r["interest"], r["fee"], r["penalty"], r["total"])
            for r in summary.get("rows", [])
        ),
    )
    return format_html(
        "<p>{}: <b>{}</b><br>{}: <b>{}</b><br>{}: <b>{}</b><br>{}: {}</p>"
        "<table><thead><tr><th>#</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th>"
        "</tr></thead><tbody>{}</tbody></table>",
        _("instalment"), summary.get("installment"),
        _("total cost"), summary.get("total_cost"),
        _("end date"), summary.get("end_date") or "-",
        _("yearly interest rate"), summary.get("annual_rate"),
        _("due date"), _("principal"), _("interest"), _("fee"), _("penalty"), _("total"),
        rows,
    )  # fmt: skip


@admin.register(Restructuring)
class RestructuringAdmin(ServiceAddAdminMixin, SimpleHistoryAdmin):
    form = RestructuringForm
    list_display = [
        "id", "case", "loan", "kind", "status", "waived_amount", "proposed_by", "proposed_at", "decided_by",
        "decided_at",
    ]  # fmt: skip
    list_filter = ["status", "kind"]
    list_select_related = ["case", "loan", "proposed_by", "decided_by"]
    search_fields = ["loan__external_ref"]
    raw_id_fields = ["case"]
    action_form = DecisionForm
    actions = ["approve", "reject"]

    def get_fields(self, request, obj=None):
        if obj is None:
            return list(RestructuringForm.Meta.fields)
        return [
            "case", "loan", "kind", "status", "first_due_date", "new_term", "new_annual_rate",
            "holiday_periods", "settlement_amount", "waived_amount", "reason", "comparison", "proposed_by",
            "proposed_at", "decided_by", "decided_at", "decision_reason", "schedule_version",
        ]  # fmt: skip

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.get_fields(request, obj)

    @admin.display(description=_("current and proposed schedule"))
    def comparison(self, obj):
        return format_html(
            '<div style="display:flex;gap:2em"><div><h4>{}</h4>{}</div><div><h4>{}</h4>{}</div></div>',
            _("current schedule"),
            _summary_table(obj.current_summary or {}),
            _("proposed schedule"),
            _summary_table(obj.proposed_summary or {}),
        )

    def has_approve_permission(self, request):
        return request.user.has_perm("debt_collections.approve_restructuring")

    def _decide(self, request, queryset, decide, done):
        reason = request.POST.get("reason", "")
        count = 0
        for proposal in queryset:
            try:
                decide(restructuring=proposal, actor=request.user, reason=reason)
            except ValidationError as exc:
                self.message_user(request, f"#{proposal.pk}: " + "; ".join(exc.messages), messages.ERROR)
            except PermissionDenied as exc:
                msg = str(exc) or _("You are not allowed to do this.")
                self.message_user(request, f"#{proposal.pk}: {msg}", messages.ERROR)
            else:
                count += 1
        if count:
            self.message_user(request, done % {"n": count}, messages.SUCCESS)

    @admin.action(description=_("Approve the selected restructurings"), permissions=["approve"])
    def approve(self, request, queryset):
        self._decide(request, queryset, restructuring_approve, _("%(n)s restructurings approved."))

    @admin.action(description=_("Reject the selected restructurings"), permissions=["approve"])
    def reject(self, request, queryset):
        self._decide(request, queryset, restructuring_reject, _("%(n)s restructurings rejected."))
