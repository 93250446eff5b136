"""The compliance officer's pages: their filter forms and the review and export forms.

Filter forms read the query string. A bad value (a date that is not one, an unknown user, an event
type the log does not know) is a form error shown above the list, never a 500; the list then ignores
the filters until they are fixed.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta

from django import forms
from django.contrib.auth import get_user_model
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from compliance.export import REASON_MAX_LENGTH as EXPORT_REASON_MAX_LENGTH
from compliance.models import AuditEventType, Channel, LexiconTerm, OverrideRequest
from compliance.overrides import REASON_LABELS
from compliance.screening import MSG_REVIEW_NOTE_REQUIRED

MSG_NO_SUCH_USER = _("No user with this username.")
MSG_DATES_REVERSED = _("The end date is before the start date.")
MSG_BORROWER_ID = _("A borrower number is a whole number.")
MSG_EXPORT_REASON_REQUIRED = _("Give a reason.")

DATE_WIDGET = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


def _blank(choices) -> list[tuple[str, str]]:
    return [("", _("any")), *choices]


def day_start(day) -> datetime:
    """Midnight at the start of ``day`` in the current time zone (the user's own)."""
    return timezone.make_aware(datetime.combine(day, time.min))


class FilterForm(forms.Form):
    """A date range in the user's time zone: from the start of ``date_from`` to the end of ``date_to``."""

    date_from = forms.DateField(label=_("From"), required=False, widget=DATE_WIDGET)
    date_to = forms.DateField(label=_("Until"), required=False, widget=DATE_WIDGET)

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("date_from"), cleaned.get("date_to")
        if start and end and end < start:
            self.add_error("date_to", MSG_DATES_REVERSED)
        return cleaned

    def filters(self) -> dict:
        """The selector's keyword arguments; none while the form has errors."""
        if not self.is_valid():
            return {}
        data = dict(self.cleaned_data)
        start, end = data.pop("date_from", None), data.pop("date_to", None)
        data["start"] = day_start(start) if start else None
        data["end"] = day_start(end + timedelta(days=1)) if end else None
        return data


class UsernameField(forms.CharField):
    """A username; cleans to the user (``None`` when left empty)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault("max_length", 150)
        super().__init__(**kwargs)

    def clean(self, value):
        value = super().clean(value)
        if not value:
            return None
        user = get_user_model()._default_manager.filter(**{get_user_model().USERNAME_FIELD: value}).first()
        if user is None:
            raise forms.ValidationError(MSG_NO_SUCH_USER, code="unknown_user")
        return user


class DeniedContactFilter(FilterForm):
    channel = forms.ChoiceField(label=_("Channel"), required=False, choices=_blank(Channel.choices))
    reason = forms.ChoiceField(label=_("Reason"), required=False, choices=_blank(list(REASON_LABELS.items())))
    agent = UsernameField(label=_("Agent"))


class OverrideFilter(FilterForm):
    STATES = [
        ("open", _("not used yet, still valid")),
        ("used", _("used")),
        ("expired", _("expired unused")),
    ]
    state = forms.ChoiceField(label=_("State"), required=False, choices=_blank(STATES))
    channel = forms.ChoiceField(label=_("Channel"), required=False, choices=_blank(Channel.choices))
    granted_by = UsernameField(label=_("Granted by"))


class OverrideRequestFilter(FilterForm):
    status = forms.ChoiceField(
        label=_("Status"), required=False, choices=_blank(OverrideRequest.Status.choices)
    )
    channel = forms.ChoiceField(label=_("Channel"), required=False, choices=_blank(Channel.choices))
    requested_by = UsernameField(label=_("Requested by"))


class FlagFilter(forms.Form):
    STATES = [("unreviewed", _("waiting for review")), ("reviewed", _("reviewed")), ("all", _("all"))]
    state = forms.ChoiceField(label=_("State"), required=False, choices=STATES)
    category = forms.ChoiceField(
        label=_("Category"), required=False, choices=_blank(LexiconTerm.Category.choices)
    )
    source = forms.CharField(label=_("Source"), required=False, max_length=50)

    def filters(self) -> dict:
        if not self.is_valid():
            return {"state": "unreviewed"}
        return {**self.cleaned_data, "state": self.cleaned_data["state"] or "unreviewed"}


class KeysetFilter(FilterForm):
    """A filter over the audit log, paged by keyset: the rows older than ``before``, or newer than
    ``after`` (event ids)."""

    before = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)
    after = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)

    def filters(self) -> dict:
        data = super().filters()
        data.pop("before", None)
        data.pop("after", None)
        return data

    def cursor(self) -> dict:
        if not self.is_valid():
            return {}
        return {"before": self.cleaned_data.get("before"), "after": self.cleaned_data.get("after")}


PII_FIELDS = [
    ("national_id", _("national ID")),
    ("phone", _("phone number")),
    ("email", _("e-mail address")),
    ("address", _("postal address")),
]


class PiiRevealFilter(KeysetFilter):
    actor = UsernameField(label=_("Revealed by"))
    borrower = forms.IntegerField(
        label=_("Borrower number"), required=False, min_value=1, error_messages={"invalid": MSG_BORROWER_ID}
    )
    field = forms.ChoiceField(label=_("What"), required=False, choices=_blank(PII_FIELDS))


# Subjects the services record, offered as suggestions; any other type may be typed in.
SUBJECT_TYPES = (
    "loans.borrower",
    "loans.loan",
    "loans.partner",
    "debt_collections.case",
    "debt_collections.restructuring",
    "debt_collections.legalreferral",
    "debt_collections.noticetemplate",
    "debt_collections.scanrun",
    "compliance.contactoverride",
    "compliance.overriderequest",
    "compliance.screeningflag",
    "compliance.jurisdictionprofile",
    "compliance.contactrule",
    "compliance.lexiconterm",
    "auth.user",
)


class AuditFilter(KeysetFilter):
    event_type = forms.ChoiceField(label=_("Event"), required=False, choices=_blank(AuditEventType.choices))
    actor = forms.CharField(
        label=_("Actor"),
        required=False,
        max_length=150,
        help_text=_("A username, or “scan” or “system”."),
        widget=forms.TextInput(attrs={"data-search": "", "placeholder": _("username, scan, system")}),
    )
    subject_type = forms.CharField(
        label=_("Subject type"),
        required=False,
        max_length=50,
        widget=forms.TextInput(attrs={"list": "subject-types"}),
    )
    subject_id = forms.CharField(label=_("Subject id"), required=False, max_length=50)


class ReviewForm(forms.Form):
    note = forms.CharField(
        label=_("What the review found"),
        max_length=500,
        error_messages={"required": MSG_REVIEW_NOTE_REQUIRED},
        widget=forms.Textarea(attrs={"rows": 2}),
    )


class BorrowerSearchForm(forms.Form):
    KINDS = [
        ("national_id", _("national ID")),
        ("reference", _("borrower or loan reference")),
        ("name", _("name (starts with)")),
    ]
    kind = forms.ChoiceField(label=_("Find by"), choices=KINDS, initial="national_id")
    q = forms.CharField(label=_("Search"), max_length=200)


class ExportForm(forms.Form):
    reason = forms.CharField(
        label=_("Why is the data exported?"),
        max_length=EXPORT_REASON_MAX_LENGTH,
        error_messages={"required": MSG_EXPORT_REASON_REQUIRED},
        help_text=_("For example the data-subject request's reference. Kept in the audit log."),
    )
