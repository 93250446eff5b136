"""Contacts on a case: the log (read-only once written) and the screen a collector logs a contact on.

The add form writes through ``debt_collections.contacts.contact_log``: the contact rules decide
first, and a refusal shows its reason codes as a form error; a field visit uploads its recording.
"""

from datetime import date

from django import forms
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from collections_site.admin_tools import ReadOnlyAdminMixin, ServiceAddAdminMixin, ServiceForm
from compliance.models import Channel, Direction, Purpose
from debt_collections.contacts import contact_log
from debt_collections.models import CaseContact
from loans.models import ContactPoint

INSTALMENTS_HELP = _(
    "One instalment a line: the date (YYYY-MM-DD) and the amount, e.g. 2026-07-01 500.00. "
    "At most 12, the last within 180 days."
)


def parse_instalments(text: str) -> list[tuple]:
    """Instalments typed one to a line as "YYYY-MM-DD amount"; blank lines are skipped. The service
    checks the plan itself (order, dates, amounts, how many)."""
    rows = []
    lines = [raw.strip() for raw in (text or "").splitlines() if raw.strip()]
    for number, line in enumerate(lines, start=1):
        parts = line.replace(",", " ").split()
        try:
            if len(parts) != 2:
                raise ValueError(line)
            rows.append((date.fromisoformat(parts[0]), parts[1]))
        except ValueError:
            raise ValidationError(
                _("Line %(n)s: write a date and an amount, like 2026-07-01 500.00.") % {"n": number}
            ) from None
    return rows


class CaseContactInline(ReadOnlyAdminMixin, admin.TabularInline):
    """The case's contact history, newest first, on the case screen."""

    model = CaseContact
    fields = ["created_at", "channel", "direction", "outcome", "callback_on", "created_by", "notes"]
    readonly_fields = fields
    extra = 0
    ordering = ["-created_at"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("attempt", "created_by")

    @admin.display(description=_("channel"))
    def channel(self, obj):
        return obj.attempt.get_channel_display()

    @admin.display(description=_("direction"))
    def direction(self, obj):
        return obj.attempt.get_direction_display()


class CaseContactForm(ServiceForm):
    channel = forms.ChoiceField(label=_("channel"), choices=Channel.choices)
    direction = forms.ChoiceField(label=_("direction"), choices=Direction.choices, initial=Direction.OUTBOUND)
    purpose = forms.ChoiceField(label=_("purpose"), choices=Purpose.choices, initial=Purpose.COLLECTION)
    contact_point = forms.ModelChoiceField(
        label=_("contact point (id)"),
        queryset=ContactPoint.objects.all(),
        widget=forms.TextInput(attrs={"size": 10}),
        required=False,
        help_text=_(
            "The id of the borrower's phone number or address contacted (a visit may leave it empty)."
        ),
    )
    occurred_at = forms.DateTimeField(
        label=_("when"), required=False, help_text=_("Empty: now. Contacts are logged as they happen.")
    )
    promise_instalments = forms.CharField(
        label=_("promised instalments"),
        widget=forms.Textarea(attrs={"rows": 4, "cols": 40}),
        required=False,
        help_text=INSTALMENTS_HELP,
    )
    second_staff = forms.ModelChoiceField(
        label=_("second member of staff"),
        queryset=get_user_model().objects.filter(is_active=True).order_by("username"),
        required=False,
        help_text=_("A field visit: who went with you."),
    )

    class Meta:
        model = CaseContact
        fields = ["case", "outcome", "notes", "callback_on", "second_staff", "recording"]

    def clean_promise_instalments(self):
        return parse_instalments(self.cleaned_data.get("promise_instalments", ""))

    def call_service(self, c):
        return contact_log(
            case=c["case"],
            channel=c["channel"],
            outcome=c["outcome"],
            actor=self.request.user,
            direction=c["direction"],
            purpose=c["purpose"],
            contact_point=c.get("contact_point"),
            notes=c.get("notes", ""),
            occurred_at=c.get("occurred_at"),
            second_staff=c.get("second_staff"),
            recording=c.get("recording") or None,
            callback_on=c.get("callback_on"),
            promise_instalments=c.get("promise_instalments") or None,
        )


@admin.register(CaseContact)
class CaseContactAdmin(ServiceAddAdminMixin, admin.ModelAdmin):
    form = CaseContactForm
    raw_id_fields = ["case"]
    list_display = ["created_at", "case", "channel", "direction", "outcome", "callback_on", "created_by"]
    list_filter = ["outcome", "attempt__channel", "attempt__direction"]
    list_select_related = ["case", "attempt", "created_by"]
    search_fields = ["case__loan__external_ref"]
    date_hierarchy = "created_at"
    ADD_FIELDS = [
        "case", "channel", "direction", "purpose", "contact_point", "occurred_at", "outcome", "notes",
        "callback_on", "promise_instalments", "second_staff", "recording",
    ]  # fmt: skip
    VIEW_FIELDS = [
        "case", "attempt", "outcome", "notes", "callback_on", "second_staff", "recording", "recording_sha256",
        "created_by", "created_at",
    ]  # fmt: skip

    def get_fields(self, request, obj=None):
        return self.ADD_FIELDS if obj is None else self.VIEW_FIELDS

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.VIEW_FIELDS

    @admin.display(description=_("channel"), ordering="attempt__channel")
    def channel(self, obj):
        return obj.attempt.get_channel_display()

    @admin.display(description=_("direction"))
    def direction(self, obj):
        return obj.attempt.get_direction_display()
