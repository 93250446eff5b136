"""Legal referrals: a collector or supervisor requests one (the add form), another supervisor
approves or rejects it (actions, with a reason), the proceedings are recorded (the status action),
and the evidence pack is downloaded through a view that checks the right and audits the download.
Every write goes through ``debt_collections.referrals``; existing referrals are read-only here."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from simple_history.admin import SimpleHistoryAdmin

from collections_site.admin_tools import ServiceAddAdminMixin, ServiceForm
from debt_collections import referrals
from debt_collections.evidence import DOWNLOAD_PERMISSION, evidence_pack_download
from debt_collections.models import LegalReferral


class ReferralRequestForm(ServiceForm):
    class Meta:
        model = LegalReferral
        fields = ["case", "reason", "forbearance_considered"]

    def call_service(self, c):
        return referrals.referral_request(
            case=c["case"],
            reason=c["reason"],
            forbearance_considered=c["forbearance_considered"],
            actor=self.request.user,
        )


class ReferralActionForm(admin.helpers.ActionForm):
    reason = forms.CharField(required=False, label=_("reason or outcome"), max_length=2000)
    status = forms.ChoiceField(
        required=False,
        label=_("new status"),
        choices=[("", "---")]
        + [
            (s.value, s.label)
            for s in (
                LegalReferral.Status.FILED,
                LegalReferral.Status.JUDGMENT,
                LegalReferral.Status.SETTLED,
                LegalReferral.Status.WITHDRAWN,
            )
        ],
    )
    on = forms.DateField(required=False, label=_("on"), widget=forms.DateInput(attrs={"type": "date"}))


@admin.register(LegalReferral)
class LegalReferralAdmin(ServiceAddAdminMixin, SimpleHistoryAdmin):
    form = ReferralRequestForm
    raw_id_fields = ["case"]
    list_display = [
        "id", "case", "status", "requested_by", "requested_at", "decided_by", "referred_on", "filed_on",
        "judgment_on", "concluded_on", "evidence_link",
    ]  # fmt: skip
    list_filter = ["status"]
    list_select_related = ["case", "requested_by", "decided_by"]
    search_fields = ["case__loan__external_ref"]
    readonly_fields = ["evidence_link"]
    action_form = ReferralActionForm
    actions = ["approve", "reject", "withdraw", "update_status"]

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["case", "reason", "forbearance_considered"]
        return [f.name for f in LegalReferral._meta.fields if f.name != "evidence_pack"] + ["evidence_link"]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return self.get_fields(request, obj)

    def get_changeform_initial_data(self, request):
        # The case admin's "request a legal referral" action links here with ?case=<id>.
        return {"case": request.GET.get("case")} if request.GET.get("case") else {}

    @admin.display(description=_("evidence pack"))
    def evidence_link(self, obj):
        if not obj or not obj.evidence_sha256:
            return "-"
        url = reverse("admin:debt_collections_legalreferral_evidence", args=[obj.pk])
        return format_html(
            '<a href="{}">{}</a> <code>{}</code>', url, _("download"), obj.evidence_sha256[:16]
        )

    def get_urls(self):
        return [
            path(
                "<int:pk>/evidence-pack/",
                self.admin_site.admin_view(self.evidence_view),
                name="debt_collections_legalreferral_evidence",
            ),
            *super().get_urls(),
        ]

    def evidence_view(self, request, pk):
        referral = get_object_or_404(LegalReferral, pk=pk)
        try:
            content = evidence_pack_download(referral=referral, actor=request.user)
        except ValidationError as exc:
            self.message_user(request, "; ".join(exc.messages), messages.ERROR)
            return redirect("admin:debt_collections_legalreferral_change", pk)
        response = HttpResponse(content, content_type="application/zip")
        response["Content-Disposition"] = f'attachment; filename="evidence-referral-{referral.pk}.zip"'
        response["Cache-Control"] = "no-store"
        return response

    # --- actions ------------------------------------------------------------------------------------

    def has_approve_permission(self, request):
        return request.user.has_perm("debt_collections.approve_referral")

    def has_follow_permission(self, request):
        return request.user.has_perm("debt_collections.change_legalreferral")

    def has_withdraw_permission(self, request):
        return request.user.has_perm("debt_collections.add_legalreferral")

    def has_download_permission(self, request):
        return request.user.has_perm(DOWNLOAD_PERMISSION)

    def _each(self, request, queryset, call, done):
        count = 0
        for referral in queryset.order_by("pk"):
            try:
                call(referral)
            except ValidationError as exc:
                self.message_user(request, f"#{referral.pk}: {'; '.join(exc.messages)}", messages.ERROR)
            except PermissionDenied as exc:
                self.message_user(
                    request, f"#{referral.pk}: {exc or _('You are not allowed to do this.')}", messages.ERROR
                )
            else:
                count += 1
        if count:
            self.message_user(request, done % {"n": count}, messages.SUCCESS)

    @admin.action(description=_("Approve the selected referral requests (builds the evidence pack)"),
                  permissions=["approve"])  # fmt: skip
    def approve(self, request, queryset):
        reason = request.POST.get("reason", "")
        self._each(
            request,
            queryset,
            lambda r: referrals.referral_approve(referral=r, actor=request.user, reason=reason),
            _("%(n)s referrals approved."),
        )

    @admin.action(description=_("Reject the selected referral requests"), permissions=["approve"])
    def reject(self, request, queryset):
        reason = request.POST.get("reason", "")
        self._each(
            request,
            queryset,
            lambda r: referrals.referral_reject(referral=r, actor=request.user, reason=reason),
            _("%(n)s referrals rejected."),
        )

    @admin.action(description=_("Withdraw the selected referrals"), permissions=["withdraw"])
    def withdraw(self, request, queryset):
        reason = request.POST.get("reason", "")
        self._each(
            request,
            queryset,
            lambda r: referrals.referral_withdraw(referral=r, actor=request.user, reason=reason),
            _("%(n)s referrals withdrawn."),
        )

    @admin.action(description=_("Record the new status of the selected referrals"), permissions=["follow"])
    def update_status(self, request, queryset):
        fields = ReferralActionForm().fields
        try:
            status = fields["status"].clean(request.POST.get("status", ""))
            on = fields["on"].clean(request.POST.get("on", ""))
        except ValidationError:
            status = on = None
        if not status or not on:
            self.message_user(request, _("Choose the new status and its date."), messages.ERROR)
            return
        outcome = request.POST.get("reason", "")
        self._each(
            request,
            queryset,
            lambda r: referrals.referral_status_update(
                referral=r, actor=request.user, status=status, on=on, outcome=outcome
            ),
            _("%(n)s referrals updated."),
        )
