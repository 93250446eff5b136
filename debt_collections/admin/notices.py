"""Notice templates (edited through ``notice_template_save``: checked, versioned, audited, with a
preview) and notices (read-only; queued ones can be sent now; a new one is queued and sent for a
case and channel through ``notice_send``)."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.template import TemplateSyntaxError
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from simple_history.admin import SimpleHistoryAdmin

from collections_site.admin_tools import (
    RequestFormMixin,
    ServiceAddAdminMixin,
    ServiceForm,
)
from debt_collections import notices
from debt_collections.models import Notice, NoticeTemplate


class NoticeTemplateForm(ServiceForm):
    """Creates or edits through ``notice_template_save``: a refused template shows its errors here."""

    class Meta:
        model = NoticeTemplate
        fields = ["stage", "channel", "language", "subject", "body", "is_active"]
        widgets = {"body": forms.Textarea(attrs={"rows": 24, "cols": 100})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["body"].help_text = _(
            "Placeholders: %(names)s. Tags: {%% if %%} and {%% comment %%}."
        ) % {"names": ", ".join(f"{{{{ {name} }}}}" for name in notices.PLACEHOLDERS)}
        if self.instance.pk:
            for name in ("stage", "channel", "language"):
                self.fields[name].disabled = True

    def call_service(self, cleaned):
        return notices.notice_template_save(
            template=self.instance if self.instance.pk else None,
            actor=self.request.user,
            **{name: cleaned[name] for name in notices.TEMPLATE_FIELDS if name in cleaned},
        )


@admin.register(NoticeTemplate)
class NoticeTemplateAdmin(RequestFormMixin, SimpleHistoryAdmin):
    form = NoticeTemplateForm
    list_display = [
        "stage",
        "channel",
        "language",
        "version",
        "is_active",
        "subject",
        "updated_by",
        "updated_at",
    ]
    list_filter = ["stage", "channel", "language", "is_active"]
    list_select_related = ["updated_by"]
    readonly_fields = ["version", "preview"]
    search_fields = ["subject", "body"]

    def save_model(self, request, obj, form, change):
        pass  # notice_template_save wrote it (and its audit event) in the form's clean()

    def has_delete_permission(self, request, obj=None):
        return False  # sent notices point at their template; switch one off instead

    @admin.display(description=_("preview (made-up figures)"))
    def preview(self, obj):
        if obj is None or not obj.pk:
            return "-"
        context = notices.sample_context(language=obj.language, channel=obj.channel)
        try:
            subject, body = notices.render_notice(subject=obj.subject, body=obj.body, context=context)
        except TemplateSyntaxError as exc:
            return str(exc)
        return format_html(
            '<div style="white-space: pre-wrap; max-width: 50em"><strong>{}</strong>\n\n{}</div>',
            subject,
            body,
        )


class NoticeSendForm(ServiceForm):
    """Queue and send one notice now, for a case and a channel (the contact rules decide first)."""

    class Meta:
        model = Notice
        fields = ["case", "channel"]

    def call_service(self, cleaned):
        return notices.notice_send(case=cleaned["case"], channel=cleaned["channel"], actor=self.request.user)


@admin.register(Notice)
class NoticeAdmin(ServiceAddAdminMixin, admin.ModelAdmin):
    form = NoticeSendForm
    list_display = [
        "id",
        "case",
        "stage",
        "channel",
        "status",
        "queued_on",
        "sent_at",
        "language",
        "reason_codes",
    ]
    list_filter = ["status", "channel", "stage", "language", "queued_on"]
    list_select_related = ["case"]
    raw_id_fields = ["case"]
    actions = ["send_now"]
    readonly_fields = [
        "case", "stage", "channel", "status", "queued_on", "template", "template_version", "language",
        "contact_point_id", "subject", "body", "figures", "attempt", "sent_at", "reason_codes", "failure",
        "provider_ref", "created_by", "created_at",
    ]  # fmt: skip

    def get_fields(self, request, obj=None):
        return ["case", "channel"] if obj is None else self.readonly_fields

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.readonly_fields

    @admin.action(description=_("Send the selected queued notices now"), permissions=["add"])
    def send_now(self, request, queryset):
        counts = {status: 0 for status in Notice.Status.values}
        for notice in queryset.filter(status=Notice.Status.QUEUED).order_by("id"):
            try:
                sent = notices.notice_send(notice=notice, actor=request.user)
            except (ValidationError, PermissionDenied) as exc:
                self.message_user(request, " ".join(getattr(exc, "messages", [str(exc)])), messages.ERROR)
                continue
            counts[sent.status] += 1
        self.message_user(
            request,
            _("%(sent)s sent, %(queued)s waiting (contact rules), %(refused)s refused, %(failed)s failed.")
            % counts,
            messages.SUCCESS,
        )
