"""Configuration and inspection screens. Writes that matter (loans, payments) go through services;
the admin shows them read-only and keeps products, partners and contact points editable with history.

Personal data is masked on every borrower page: the list, the change form, the contact point inline,
the history list and the historical versions. National IDs and contact values are never written into
the page in clear: their inputs start empty (the masked value as placeholder) and an empty input keeps
what is stored. Revealing one value needs a permission and a reason and is audited; that view belongs
to the compliance app (``compliance.admin.pii``), which plugs it in with ``BorrowerAdmin.install_reveal``
because ``loans`` imports no other app.
"""

from collections.abc import Callable

from django import forms
from django.contrib import admin
from django.db.models import BooleanField, Value
from django.http import Http404
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from simple_history.admin import SimpleHistoryAdmin
from simple_history.template_utils import HistoricalRecordContextHelper

from collections_site.admin_tools import ReadOnlyAdminMixin
from loans.crypto import lookup_hash
from loans.masking import mask_contact_value, mask_national_id
from loans.models import Allocation, Borrower, ContactPoint, Installment, Loan, LoanProduct, Partner, Payment


@admin.register(Partner)
class PartnerAdmin(SimpleHistoryAdmin):
    list_display = ["code", "name", "is_active", "created_at"]
    search_fields = ["code", "name"]


# --- personal data: masked on every page --------------------------------------------------------------


class WriteOnlyMixin:
    """A ModelForm whose ``write_only`` fields never carry the stored value into the page.

    ``write_only`` maps a field to the mask of the instance's value. The input starts empty with the
    masked value as its placeholder; left empty it keeps the stored value (so it is not "changed"),
    filled in it replaces it. (Clearing a stored value is therefore not possible here.)
    """

    write_only: dict[str, Callable[[object], str]] = {}  # field -> mask of the instance's value
    # The input's label when a value is on file (shown masked beside it under the field's own label).
    replacement_labels: dict[str, str] = {}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name, mask in self.write_only.items():
            field = self.fields.get(name)
            if field is None:
                continue
            self.initial[name] = ""
            field.widget.attrs["autocomplete"] = "off"
            if getattr(self.instance, name, ""):
                field.required = False
                field.widget.attrs["placeholder"] = mask(self.instance)
                field.help_text = _("Leave empty to keep the value on file.")
                field.label = self.replacement_labels.get(name, field.label)

    def clean(self):
        cleaned = super().clean()
        for name in self.write_only:
            if name in self.fields and not cleaned.get(name) and getattr(self.instance, name, ""):
                cleaned[name] = getattr(self.instance, name)
        return cleaned


def _reveal_link(masked: str, url: str | None):
    if not url:
        return masked
    return format_html('{} <a class="pii-reveal" href="{}">{}</a>', masked, url, _("reveal"))


class ContactPointForm(WriteOnlyMixin, forms.ModelForm):
    write_only = {"value": lambda point: mask_contact_value(point.kind, point.value)}

    class Meta:
        model = ContactPoint
        fields = [
            "kind", "label", "value", "is_primary", "consent_given", "opted_out", "opted_out_at",
            "is_third_party", "third_party_name", "relationship", "is_valid",
        ]  # fmt: skip

    def clean(self):
        cleaned = super().clean()
        # Ticking "opted out" records when; the database insists on the date (Reg F 1006.14(h)).
        if cleaned.get("opted_out") and not cleaned.get("opted_out_at"):
            cleaned["opted_out_at"] = timezone.now()
            self.instance.opted_out_at = cleaned["opted_out_at"]
        return cleaned


class ContactPointInline(admin.TabularInline):
    model = ContactPoint
    form = ContactPointForm
    extra = 0
    fields = [
        "kind", "label", "value_on_file", "value", "is_primary", "consent_given", "opted_out", "opted_out_at",
        "is_third_party", "third_party_name", "relationship", "is_valid",
    ]  # fmt: skip
    readonly_fields = ["value_on_file"]

    def get_queryset(self, request):
        can_reveal = self.admin_site.get_model_admin(Borrower).can_reveal(request)
        return (
            super()
            .get_queryset(request)
            .annotate(pii_can_reveal=Value(can_reveal, output_field=BooleanField()))
        )

    def get_fields(self, request, obj=None):
        fields = list(super().get_fields(request, obj))
        if not self.has_change_permission(request, obj):
            fields.remove("value")  # a read-only inline would print it in clear
        return fields

    @admin.display(description=_("value on file"))
    def value_on_file(self, point):
        if point is None or point.pk is None:
            return "-"
        url = None
        if getattr(point, "pii_can_reveal", False):
            url = reverse(
                "admin:loans_borrower_reveal", args=[point.borrower_id, f"contact_point:{point.pk}"]
            )
        return _reveal_link(mask_contact_value(point.kind, point.value), url)


class BorrowerForm(WriteOnlyMixin, forms.ModelForm):
    write_only = {"national_id": lambda borrower: mask_national_id(borrower.national_id)}
    replacement_labels = {"national_id": _("new national ID")}

    class Meta:
        model = Borrower
        fields = [
            "partner", "external_ref", "full_name", "national_id", "date_of_birth", "time_zone",
            "preferred_language", "region",
        ]  # fmt: skip


class MaskedHistory(HistoricalRecordContextHelper):
    """The history list's "changes" column, with the national ID masked and its hash left out."""

    masks = {"national_id": mask_national_id}
    hidden = {"national_id_hash"}

    def context_for_delta_changes(self, delta):
        rows = super().context_for_delta_changes(delta)
        return [
            row for row, change in zip(rows, delta.changes, strict=True) if change.field not in self.hidden
        ]

    def prepare_delta_change_value(self, change, value):
        mask = self.masks.get(change.field)
        return mask(value) if mask else super().prepare_delta_change_value(change, value)


@admin.register(Borrower)
class BorrowerAdmin(SimpleHistoryAdmin):
    form = BorrowerForm
    list_display = [
        "external_ref", "full_name", "masked_national_id", "partner", "region", "time_zone",
        "preferred_language",
    ]  # fmt: skip
    list_filter = ["partner", "region", "preferred_language"]
    search_fields = ["external_ref", "full_name"]
    search_help_text = _("A reference, a name, or a whole national ID number.")
    list_select_related = ["partner"]
    fields = [
        "partner", "external_ref", "full_name", "masked_national_id", "national_id", "date_of_birth",
        "time_zone", "preferred_language", "region",
    ]  # fmt: skip
    readonly_fields = ["masked_national_id"]
    inlines = [ContactPointInline]

    # The view that reveals one masked value, and the permission it needs: set by the compliance app,
    # which owns both (and the audit log). Called as reveal_view(model_admin, request, object_id, field)
    # with field "national_id" or "contact_point:<id>".
    reveal_view: Callable | None = None
    reveal_permission: str = ""

    @classmethod
    def install_reveal(cls, *, view: Callable, permission: str) -> None:
        cls.reveal_view = staticmethod(view)
        cls.reveal_permission = permission

    def can_reveal(self, request) -> bool:
        return bool(
            self.reveal_view and self.reveal_permission and request.user.has_perm(self.reveal_permission)
        )

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        reveal = path(
            "<path:object_id>/reveal/<str:field>/",
            self.admin_site.admin_view(self.reveal),
            name="{}_{}_reveal".format(*info),
        )
        return [reveal, *super().get_urls()]

    def reveal(self, request, object_id, field):
        if self.reveal_view is None:
            raise Http404
        return self.reveal_view(self, request, object_id, field)

    def get_object(self, request, object_id, from_field=None):
        borrower = super().get_object(request, object_id, from_field)
        if borrower is not None:
            borrower.pii_can_reveal = self.can_reveal(request)  # the reveal link on the change form
        return borrower

    def get_fields(self, request, obj=None):
        fields = list(super().get_fields(request, obj))
        if obj is None:
            fields.remove("masked_national_id")
        elif not self.has_change_permission(request, obj):
            fields.remove("national_id")  # a read-only page would print it in clear
        return fields

    def get_search_results(self, request, queryset, search_term):
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        digest = lookup_hash(search_term)
        if digest:  # exact match on the whole number, through its hash
            results |= queryset.filter(national_id_hash=digest)
        return results, may_have_duplicates

    def get_historical_record_context_helper(self, request, historical_record):
        return MaskedHistory(self.model, historical_record)

    @admin.display(description=_("national ID"))
    def masked_national_id(self, borrower):
        masked = mask_national_id(borrower.national_id)
        if not masked:
            return "-"
        url = None
        if getattr(borrower, "pii_can_reveal", False):
            url = reverse("admin:loans_borrower_reveal", args=[borrower.pk, "national_id"])
        return _reveal_link(masked, url)


@admin.register(LoanProduct)
class LoanProductAdmin(SimpleHistoryAdmin):
    list_display = ["code", "name", "currency", "repayment_method", "frequency", "grace_days", "penalty_rate"]
    list_filter = ["currency", "repayment_method", "frequency", "is_active"]


class InstallmentInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = Installment
    extra = 0
    fields = [
        "schedule_version",
        "number",
        "due_date",
        "principal_due",
        "interest_due",
        "fee_due",
        "penalty_due",
        "principal_paid",
        "interest_paid",
        "fee_paid",
        "penalty_paid",
        "superseded",
    ]
    ordering = ["-superseded", "schedule_version", "number"]


@admin.register(Loan)
class LoanAdmin(ReadOnlyAdminMixin, SimpleHistoryAdmin):
    list_display = [
        "external_ref",
        "borrower",
        "product",
        "principal",
        "currency",
        "status",
        "bucket",
        "oldest_unpaid_due_date",
        "outstanding_principal",
    ]
    list_filter = ["status", "bucket", "product", "partner"]
    search_fields = ["external_ref", "borrower__full_name"]
    list_select_related = ["borrower", "product"]
    raw_id_fields = ["borrower"]
    inlines = [InstallmentInline]


class AllocationInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = Allocation
    extra = 0
    raw_id_fields = ["installment"]


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdminMixin, SimpleHistoryAdmin):
    list_display = ["external_ref", "loan", "amount", "currency", "value_date", "status", "unapplied_amount"]
    list_filter = ["status", "channel", "partner"]
    search_fields = ["external_ref", "loan__external_ref"]
    list_select_related = ["loan"]
    raw_id_fields = ["loan"]
    inlines = [AllocationInline]


@admin.register(Installment)
class InstallmentAdmin(ReadOnlyAdminMixin, SimpleHistoryAdmin):
    list_display = [
        "loan",
        "schedule_version",
        "number",
        "due_date",
        "principal_due",
        "principal_paid",
        "superseded",
    ]
    list_filter = ["superseded"]
    raw_id_fields = ["loan"]
    list_select_related = ["loan"]


@admin.register(Allocation)
class AllocationAdmin(ReadOnlyAdminMixin, SimpleHistoryAdmin):
    list_display = ["payment", "installment", "principal", "interest", "fee", "penalty"]
    raw_id_fields = ["payment", "installment"]
    list_select_related = ["payment", "installment"]
