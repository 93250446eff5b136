"""Forms of the back office's case actions (``debt_collections.views.actions``).

They parse and check what a person typed; the rules live in the services the views call
(``contacts.contact_log``, ``services.promise_record``, ``notices.notice_send``,
``restructuring.restructuring_propose``, ``referrals.referral_request``). A service's
``ValidationError`` comes back onto the form with ``add_service_errors``: on the field it names when
the form has one, else above the form. Contact points are labelled masked (PIPL art. 6, JR/T
0171-2020): the number or address itself is never put on the page.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from django import forms
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.forms import formset_factory
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from compliance.models import Channel, Direction, Purpose
from debt_collections.contacts import NOTES_MAX
from debt_collections.models import Case, ContactOutcome, NoticeChannel, Restructuring, Team, TeamMember
from debt_collections.referrals import TEXT_MAX as REFERRAL_TEXT_MAX
from debt_collections.restructuring import KIND_TERMS
from debt_collections.services import PROMISE_MAX_INSTALMENTS
from loans.masking import mask_contact_value
from loans.models import ContactPoint

INSTALMENT_PREFIX = "inst"
RATE_PERCENT = Decimal(100)


def add_service_errors(form: forms.Form, exc: ValidationError, aliases: dict[str, str] | None = None) -> None:
    """Put a service's refusal on ``form``: each error on the field it names (renamed by ``aliases``)
    when the form has that field, else above the form."""
    if not hasattr(exc, "error_dict"):
        form.add_error(None, exc.messages)
        return
    aliases = aliases or {}
    for name, errors in exc.error_dict.items():
        field = aliases.get(name, name)
        messages = [message for error in errors for message in error.messages]
        form.add_error(field if field in form.fields else None, messages)


def contact_point_label(point: ContactPoint) -> str:
    """ "phone · mobile · 138****8000 · primary": the kind, the label, the masked value, and what the
    rules care about (a third party, an opt-out, no consent, known to be wrong)."""
    parts = [str(point.get_kind_display())]
    if point.kind == ContactPoint.Kind.PHONE:
        parts.append(str(point.get_label_display()))
    parts.append(mask_contact_value(point.kind, point.value))
    if point.is_primary:
        parts.append(gettext("primary"))
    if point.is_third_party:
        parts.append(gettext("third party: %(relationship)s") % {"relationship": point.relationship})
    if point.opted_out:
        parts.append(gettext("opted out"))
    if not point.consent_given:
        parts.append(gettext("no consent"))
    if not point.is_valid:
        parts.append(gettext("known to be wrong"))
    return " · ".join(parts)


class ContactPointField(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        return contact_point_label(obj)


class StaffField(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        return obj.get_full_name() or obj.get_username()


class DateInput(forms.DateInput):
    input_type = "date"

    def __init__(self, attrs=None):
        super().__init__(attrs, format="%Y-%m-%d")


class DateTimeInput(forms.DateTimeInput):
    input_type = "datetime-local"

    def __init__(self, attrs=None):
        super().__init__(attrs, format="%Y-%m-%dT%H:%M")


# --- promises ----------------------------------------------------------------------------------------


class InstalmentForm(forms.Form):
    due_date = forms.DateField(label=_("pay by"), widget=DateInput())
    amount = forms.DecimalField(
        label=_("amount"),
        max_digits=18,
        decimal_places=2,
        min_value=Decimal("0.01"),
        widget=forms.NumberInput(attrs={"step": "0.01", "min": "0.01", "inputmode": "decimal"}),
    )


InstalmentFormSet = formset_factory(
    InstalmentForm,
    extra=1,
    max_num=PROMISE_MAX_INSTALMENTS,
    absolute_max=PROMISE_MAX_INSTALMENTS,
    validate_max=True,
)


class PromiseForm(forms.Form):
    """A promise to pay: one amount by a date (one row), or a plan of up to 12 instalments (rows added
    with "Add instalment"). Empty rows are left out."""

    def __init__(self, data=None, *args, **kwargs):
        super().__init__(data, *args, **kwargs)
        self.instalments = InstalmentFormSet(data, prefix=INSTALMENT_PREFIX)

    def is_valid(self) -> bool:
        own, rows = super().is_valid(), self.instalments.is_valid()
        return own and rows

    @property
    def can_add_row(self) -> bool:
        return self.instalments.total_form_count() < PROMISE_MAX_INSTALMENTS

    def rows(self) -> list[tuple[date, Decimal]]:
        return [
            (row.cleaned_data["due_date"], row.cleaned_data["amount"])
            for row in self.instalments.forms
            if row.cleaned_data
        ]

    def service_kwargs(self) -> dict:
        """One row: ``amount`` and ``promised_date`` (the service names those fields when it refuses);
        several: ``instalments``."""
        rows = self.rows()
        if len(rows) > 1:
            return {"instalments": rows}
        due, amount = rows[0] if rows else (None, None)
        return {"amount": amount, "promised_date": due}

    def add_service_errors(self, exc: ValidationError) -> None:
        """The single amount's and date's errors go on the first row; the plan's and the case's above."""
        if hasattr(exc, "error_dict") and self.instalments.forms:
            first = self.instalments.forms[0]
            rows = {"amount": "amount", "promised_date": "due_date"}
            rest = {}
            for name, errors in exc.error_dict.items():
                messages = [message for error in errors for message in error.messages]
                if name in rows:
                    first.add_error(rows[name], messages)
                else:
                    rest[name] = messages
            if rest:
                self.add_error(None, [message for messages in rest.values() for message in messages])
            return
        add_service_errors(self, exc)


# --- contacts ----------------------------------------------------------------------------------------

OUTCOME_CHOICES = [("", _("Choose the outcome")), *ContactOutcome.choices]


def visit_companions(case: Case, actor):
    """Who may be named as the second member of staff on a field visit: the active members and
    supervisors of the case's team and of the teams the actor works in, not the actor."""
    user_model = get_user_model()
    teams = Team.objects.filter(
        Q(pk=case.team_id)
        | Q(pk__in=TeamMember.objects.filter(user=actor).values("team_id"))
        | Q(supervisors=actor)
    ).values("pk")
    return (
        user_model.objects.filter(is_active=True)
        .filter(Q(team_memberships__team__in=teams) | Q(supervised_teams__in=teams))
        .exclude(pk=actor.pk)
        .distinct()
        .order_by("username")
    )


class ContactForm(forms.Form):
    """A contact on the case, as ``contacts.contact_log`` takes it. The time is in the user's own
    time zone; empty means now."""

    channel = forms.ChoiceField(label=_("channel"), choices=Channel.choices, initial=Channel.CALL)
    direction = forms.ChoiceField(label=_("direction"), choices=Direction.choices, initial=Direction.OUTBOUND)
    purpose = forms.ChoiceField(label=_("purpose"), choices=Purpose.choices, initial=Purpose.COLLECTION)
    contact_point = ContactPointField(
        label=_("contact point"),
        queryset=ContactPoint.objects.none(),
        required=False,
        empty_label=_("None (a letter or visit to the address on file)"),
    )
    occurred_at = forms.DateTimeField(
        label=_("when"),
        required=False,
        widget=DateTimeInput(),
        help_text=_("In your time zone. Empty: now."),
    )
    outcome = forms.ChoiceField(label=_("outcome"), choices=OUTCOME_CHOICES)
    notes = forms.CharField(
        label=_("note"),
        required=False,
        max_length=NOTES_MAX,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("Screened for threats, insults and the like: a match is flagged for compliance review."),
    )
    callback_on = forms.DateField(label=_("call back on"), required=False, widget=DateInput())
    second_staff = StaffField(
        label=_("second member of staff"), queryset=get_user_model().objects.none(), required=False
    )
    recording = forms.FileField(label=_("recording of the visit"), required=False)

    def __init__(self, data=None, files=None, *, case: Case, actor, **kwargs):
        super().__init__(data, files, **kwargs)
        self.case = case
        borrower_points = ContactPoint.objects.filter(borrower_id=case.loan.borrower_id)
        self.fields["contact_point"].queryset = borrower_points.order_by(
            "kind", "is_third_party", "-is_primary", "id"
        )
        self.fields["second_staff"].queryset = visit_companions(case, actor)
        self.promise = PromiseForm(data)
        self.initial_contact_point = None
        if data is None:  # a new contact: the borrower's own primary phone, for a call
            self.initial_contact_point = borrower_points.filter(
                kind=ContactPoint.Kind.PHONE, is_primary=True, is_third_party=False
            ).first()
            if self.initial_contact_point is not None:
                self.initial.setdefault("contact_point", self.initial_contact_point.pk)

    @property
    def outcome_is_promise(self) -> bool:
        return self.is_bound and self.data.get("outcome") == ContactOutcome.PROMISE_TO_PAY

    def is_valid(self) -> bool:
        own = super().is_valid()
        if self.outcome_is_promise:
            return self.promise.is_valid() and own
        return own

    def clean(self):
        cleaned = super().clean()
        # Fields that go with another channel or outcome are left out, whatever the hidden inputs hold.
        if cleaned.get("channel") != Channel.VISIT:
            cleaned["second_staff"] = None
            cleaned["recording"] = None
        if cleaned.get("outcome") != ContactOutcome.CALLBACK_REQUESTED:
            cleaned["callback_on"] = None
        return cleaned

    def moment(self):
        """When the contact happened (or is checked for): the time given, else now."""
        return self.cleaned_data.get("occurred_at") or timezone.now()

    def service_kwargs(self) -> dict:
        c = self.cleaned_data
        return {
            "channel": c["channel"],
            "outcome": c["outcome"],
            "direction": c["direction"],
            "purpose": c["purpose"],
            "contact_point": c.get("contact_point"),
            "notes": c.get("notes", ""),
            "occurred_at": self.moment(),
            "callback_on": c.get("callback_on"),
            "second_staff": c.get("second_staff"),
            "recording": c.get("recording"),
            "promise_instalments": self.promise.rows()
            if c["outcome"] == ContactOutcome.PROMISE_TO_PAY
            else None,
        }

    def add_service_errors(self, exc: ValidationError) -> None:
        if hasattr(exc, "error_dict") and "promise_instalments" in exc.error_dict:
            errors = exc.error_dict["promise_instalments"]
            self.promise.add_error(None, [message for error in errors for message in error.messages])
            exc = ValidationError({k: v for k, v in exc.error_dict.items() if k != "promise_instalments"})
            if not exc.error_dict:
                return
        # The contact rules' own checks name the time "at".
        add_service_errors(self, exc, aliases={"at": "occurred_at"})


# --- notices -----------------------------------------------------------------------------------------


class NoticeForm(forms.Form):
    channel = forms.ChoiceField(label=_("channel"), choices=NoticeChannel.choices)

    def __init__(self, data=None, *, channels, **kwargs):
        super().__init__(data, **kwargs)
        self.fields["channel"].choices = channels
        if channels:
            self.initial.setdefault("channel", channels[0][0])


# --- restructurings ----------------------------------------------------------------------------------


class RestructuringForm(forms.Form):
    """A restructuring's kind and the terms that kind takes (``restructuring.KIND_TERMS``); the rate
    is typed as a percentage."""

    kind = forms.ChoiceField(label=_("kind"), choices=Restructuring.Kind.choices)
    first_due_date = forms.DateField(
        label=_("first due date of the new schedule"),
        required=False,
        widget=DateInput(),
        help_text=_("After today. A settlement is paid on this date."),
    )
    new_term = forms.IntegerField(
        label=_("instalments in the new schedule"), required=False, min_value=1, max_value=600
    )
    new_annual_rate = forms.DecimalField(
        label=_("new yearly rate (%)"),
        required=False,
        min_value=Decimal(0),
        max_value=RATE_PERCENT,
        max_digits=8,
        decimal_places=4,
        widget=forms.NumberInput(attrs={"step": "0.0001", "inputmode": "decimal"}),
    )
    holiday_periods = forms.IntegerField(
        label=_("instalments skipped"), required=False, min_value=1, max_value=60
    )
    settlement_amount = forms.DecimalField(
        label=_("settlement amount"),
        required=False,
        max_digits=18,
        decimal_places=2,
        min_value=Decimal("0.01"),
        widget=forms.NumberInput(attrs={"step": "0.01", "inputmode": "decimal"}),
    )
    reason = forms.CharField(
        label=_("reason for the proposal"),
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("The borrower's situation and why this plan is affordable: the supervisor reads it."),
    )

    def __init__(self, data=None, *, current_rate: Decimal | None = None, **kwargs):
        super().__init__(data, **kwargs)
        if current_rate is not None:
            self.fields["new_annual_rate"].help_text = _("Now %(rate)s%%.") % {
                "rate": f"{(current_rate * RATE_PERCENT).normalize():f}"
            }
        self.initial.setdefault("first_due_date", timezone.localdate() + timedelta(days=30))

    def terms(self) -> dict:
        """The terms for the chosen kind (the others left out), as the services take them."""
        c = self.cleaned_data
        kind = c["kind"]
        wanted = KIND_TERMS[kind]
        rate = c.get("new_annual_rate")
        values = {
            "new_term": c.get("new_term"),
            "new_annual_rate": rate / RATE_PERCENT if rate is not None else None,
            "holiday_periods": c.get("holiday_periods"),
            "settlement_amount": c.get("settlement_amount"),
        }
        terms = {name: (value if name in wanted else None) for name, value in values.items()}
        first_due = c.get("first_due_date")
        if first_due is None and kind == Restructuring.Kind.PENALTY_WAIVER:
            # A waiver keeps the schedule as it is; the proposal still records a date, unused.
            first_due = timezone.localdate() + timedelta(days=1)
        terms["first_due_date"] = first_due
        return terms


# --- legal referrals ---------------------------------------------------------------------------------


class ReferralForm(forms.Form):
    reason = forms.CharField(
        label=_("why the case should go to lawyers"),
        max_length=REFERRAL_TEXT_MAX,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    forbearance_considered = forms.CharField(
        label=_("forbearance considered"),
        max_length=REFERRAL_TEXT_MAX,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_(
            "Which forbearance was considered and why it did not help (a longer term, a payment "
            "holiday, a lower rate...)."
        ),
    )
