"""Configuration and inspection screens. Writes that matter (loans, payments) go through services;
the admin shows them read-only and keeps products, partners and contact points editable with history."""

from django import forms
from django.contrib import admin
from django.utils import timezone
from simple_history.admin import SimpleHistoryAdmin

from loans.models import Allocation, Borrower, ContactPoint, Installment, Loan, LoanProduct, Partner, Payment


class ReadOnlyMixin:
    """Money records are written by services only (allocation replay, delinquency refresh)."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Partner)
class PartnerAdmin(SimpleHistoryAdmin):
    list_display = ["code", "name", "is_active", "created_at"]
    search_fields = ["code", "name"]


class ContactPointForm(forms.ModelForm):
    class Meta:
        model = ContactPoint
        fields = [
            "kind", "label", "value", "is_primary", "consent_given", "opted_out", "opted_out_at",
            "is_third_party", "third_party_name", "relationship", "is_valid",
        ]

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


@admin.register(Borrower)
class BorrowerAdmin(SimpleHistoryAdmin):
    list_display = ["external_ref", "full_name", "partner", "region", "time_zone", "preferred_language"]
    list_filter = ["partner", "region", "preferred_language"]
    search_fields = ["external_ref", "full_name"]
    list_select_related = ["partner"]
    inlines = [ContactPointInline]


@admin.register(LoanProduct)
class LoanProductAdmin(SimpleHistoryAdmin):
    list_display = ["code", "name", "currency", "repayment_method", "frequency", "grace_days", "penalty_rate"]
    list_filter = ["currency", "repayment_method", "frequency", "is_active"]


class InstallmentInline(ReadOnlyMixin, admin.TabularInline):
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
class LoanAdmin(ReadOnlyMixin, SimpleHistoryAdmin):
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


class AllocationInline(ReadOnlyMixin, admin.TabularInline):
    model = Allocation
    extra = 0
    raw_id_fields = ["installment"]


@admin.register(Payment)
class PaymentAdmin(ReadOnlyMixin, SimpleHistoryAdmin):
    list_display = ["external_ref", "loan", "amount", "currency", "value_date", "status", "unapplied_amount"]
    list_filter = ["status", "channel", "partner"]
    search_fields = ["external_ref", "loan__external_ref"]
    list_select_related = ["loan"]
    raw_id_fields = ["loan"]
    inlines = [AllocationInline]


@admin.register(Installment)
class InstallmentAdmin(ReadOnlyMixin, SimpleHistoryAdmin):
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
class AllocationAdmin(ReadOnlyMixin, SimpleHistoryAdmin):
    list_display = ["payment", "installment", "principal", "interest", "fee", "penalty"]
    raw_id_fields = ["payment", "installment"]
    list_select_related = ["payment", "installment"]
