"""The loan book: partners, borrowers and their contact points, products, loans, schedules, payments.

Invariants live in the database first (check and unique constraints, ``PROTECT`` on money records);
writes that matter go through ``loans.services``. The delinquency figures on ``Loan`` are derived
state, written set-wise by ``delinquency_refresh`` and deliberately left out of field history.
"""

from __future__ import annotations

from decimal import Decimal

from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy
from simple_history.models import HistoricalRecords

from loans.crypto import ContactLookupHashField, EncryptedCharField, LookupHashField, lookup_hash
from loans.delinquency import BUCKET_FLOORS, days_past_due
from loans.masking import mask_contact_value
from loans.money import SUPPORTED_CURRENCIES
from loans.schedules import Frequency, RepaymentMethod

CURRENCY_CHOICES = [(code, code) for code in SUPPORTED_CURRENCIES]
COMPONENTS = ("principal", "interest", "fee", "penalty")


def money_field(verbose_name, **kwargs):
    kwargs.setdefault("default", Decimal("0.00"))
    return models.DecimalField(verbose_name, max_digits=18, decimal_places=2, **kwargs)


def rate_field(verbose_name, **kwargs):
    # A yearly rate as a fraction: 0.180000 is 18% a year.
    return models.DecimalField(verbose_name, max_digits=9, decimal_places=6, **kwargs)


class Partner(models.Model):
    """A source system (the lending platform) that owns its borrowers, loans and payments."""

    code = models.SlugField(_("code"), max_length=50, unique=True)
    name = models.CharField(_("name"), max_length=200)
    is_active = models.BooleanField(_("active"), default=True)
    # The creditor's details that every collection notice carries (how to reach them, how to pay).
    collections_phone = models.CharField(_("collections phone"), max_length=50, blank=True)
    collections_email = models.EmailField(_("collections e-mail"), blank=True)
    postal_address = models.CharField(_("postal address"), max_length=300, blank=True)
    payment_instructions = models.TextField(
        _("how to pay"), blank=True, help_text=_("Bank account, app or counter: printed on every notice.")
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("partner")
        verbose_name_plural = _("partners")
        ordering = ["code"]

    def __str__(self):
        return self.name


class Language(models.TextChoices):
    ZH_HANS = "zh-hans", _("Simplified Chinese")
    EN = "en", _("English")


class BorrowerQuerySet(models.QuerySet):
    """Keeps ``national_id_hash`` with ``national_id`` where ``pre_save`` does not run."""

    def with_national_id(self, number: str):
        """Borrowers with this national ID number (exact match, normalised), found through the hash."""
        digest = lookup_hash(number)
        return self.filter(national_id_hash=digest) if digest else self.none()

    def update(self, **kwargs):
        if "national_id" in kwargs and "national_id_hash" not in kwargs:
            value = kwargs["national_id"]
            if not isinstance(value, str):
                raise TypeError("update national_id with a plain string: its hash is computed in Python")
            kwargs["national_id_hash"] = lookup_hash(value)
        return super().update(**kwargs)

    def bulk_update(self, objs, fields, batch_size=None):
        objs, fields = list(objs), list(fields)
        if "national_id" in fields and "national_id_hash" not in fields:
            for obj in objs:
                obj.national_id_hash = lookup_hash(obj.national_id)
            fields.append("national_id_hash")
        return super().bulk_update(objs, fields, batch_size=batch_size)


class Borrower(models.Model):
    partner = models.ForeignKey(Partner, on_delete=models.PROTECT, related_name="borrowers")
    external_ref = models.CharField(_("external reference"), max_length=100)
    full_name = models.CharField(_("full name"), max_length=200)
    # Stored as a Fernet token (loans.crypto); never filtered on: find a number through national_id_hash
    # (Borrower.objects.with_national_id(number)). Shown masked; compliance.pii reveals it, audited.
    national_id = EncryptedCharField(_("national ID"), max_length=64, blank=True)
    # HMAC-SHA256 of the normalised number under FIELD_HASH_KEY, set on save; "" when there is none.
    # The database default keeps raw inserts that leave it out (bench/delinquency.py) valid.
    national_id_hash = LookupHashField(_("national ID lookup hash"), source="national_id", db_default="")
    date_of_birth = models.DateField(_("date of birth"), null=True, blank=True)
    # IANA zone of the borrower's location; contact rules fail closed when it is empty.
    time_zone = models.CharField(_("time zone"), max_length=64, blank=True)
    preferred_language = models.CharField(
        _("preferred language"), max_length=10, choices=Language.choices, default=Language.ZH_HANS
    )
    # ISO 3166-1 alpha-2 country, optionally with a subdivision: "CN", "US-NY", "GB-SCT".
    region = models.CharField(_("region"), max_length=10, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    history = HistoricalRecords()

    objects = BorrowerQuerySet.as_manager()

    class Meta:
        verbose_name = _("borrower")
        verbose_name_plural = _("borrowers")
        indexes = [
            models.Index(fields=["national_id_hash"], name="borrower_national_id_hash_idx"),
            # The worklist's search by name: a prefix match (LIKE 'x%') through this index on PostgreSQL.
            models.Index(
                fields=["full_name"], name="borrower_name_prefix_idx", opclasses=["varchar_pattern_ops"]
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["partner", "external_ref"],
                name="borrower_unique_ref_per_partner",
                violation_error_message=_("This partner already has a borrower with this reference."),
            ),
            # Target of the composite foreign key that keeps a loan with its borrower's partner (0004).
            models.UniqueConstraint(fields=["id", "partner"], name="borrower_unique_id_partner"),
            models.CheckConstraint(
                condition=~Q(external_ref=""),
                name="borrower_external_ref_not_empty",
                violation_error_message=_("The external reference is required."),
            ),
            models.CheckConstraint(
                condition=~Q(full_name=""),
                name="borrower_full_name_not_empty",
                violation_error_message=_("The full name is required."),
            ),
        ]

    def __str__(self):
        return self.full_name

    def save(self, *args, **kwargs):
        # pre_save recomputes the hash only for the fields saved: keep it with the number.
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "national_id" in update_fields:
            kwargs["update_fields"] = {*update_fields, "national_id_hash"}
        super().save(*args, **kwargs)


class ContactPoint(models.Model):
    class Kind(models.TextChoices):
        PHONE = "phone", _("phone")
        EMAIL = "email", _("e-mail")
        ADDRESS = "address", _("postal address")

    class Label(models.TextChoices):
        MOBILE = "mobile", _("mobile")
        HOME = "home", _("home")
        WORK = "work", _("work")
        OTHER = "other", _("other")

    borrower = models.ForeignKey(Borrower, on_delete=models.CASCADE, related_name="contact_points")
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    label = models.CharField(_("label"), max_length=10, choices=Label.choices, default=Label.MOBILE)
    value = models.CharField(_("value"), max_length=300)
    # Keyed hash of the normalised phone number or e-mail address, set on save: the worklist's search
    # by phone compares hashes through an index instead of reading every number.
    value_hash = ContactLookupHashField(_("search hash"), db_default="")
    is_primary = models.BooleanField(_("primary"), default=False)
    consent_given = models.BooleanField(_("consent to contact"), default=True)
    opted_out = models.BooleanField(_("opted out"), default=False)
    opted_out_at = models.DateTimeField(_("opted out at"), null=True, blank=True)
    # A contact point of somebody else (relative, employer, reference): never told of the debt.
    is_third_party = models.BooleanField(_("third party"), default=False)
    third_party_name = models.CharField(_("third party's name"), max_length=200, blank=True)
    relationship = models.CharField(_("relationship to the borrower"), max_length=50, blank=True)
    is_valid = models.BooleanField(_("valid"), default=True)

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("contact point")
        verbose_name_plural = _("contact points")
        constraints = [
            models.UniqueConstraint(
                fields=["borrower", "kind", "value"],
                name="contact_point_unique_value",
                violation_error_message=_("The borrower already has this contact point."),
            ),
            models.UniqueConstraint(
                fields=["borrower", "kind"],
                condition=Q(is_primary=True),
                name="contact_point_one_primary_per_kind",
                violation_error_message=_("Only one contact point of each kind can be primary."),
            ),
            models.CheckConstraint(
                condition=~Q(value=""),
                name="contact_point_value_not_empty",
                violation_error_message=_("The value is required."),
            ),
            models.CheckConstraint(
                condition=Q(opted_out=False) | Q(opted_out_at__isnull=False),
                name="contact_point_opt_out_dated",
                violation_error_message=_("An opt-out needs the date and time it was given."),
            ),
            models.CheckConstraint(
                condition=Q(is_third_party=False) | ~Q(relationship=""),
                name="contact_point_third_party_relationship",
                violation_error_message=_("A third-party contact needs its relationship to the borrower."),
            ),
        ]
        indexes = [
            models.Index(fields=["value_hash"], name="contact_point_search_idx", condition=~Q(value_hash=""))
        ]

    def __str__(self):
        # Masked: this is what admin inlines, drop-downs, delete pages and log entries print (PII).
        return f"{self.get_kind_display()} {mask_contact_value(self.kind, self.value)}"


class AllocationOrder(models.TextChoices):
    PENALTY_FEE_INTEREST_PRINCIPAL = "penalty,fee,interest,principal", _("penalty, fee, interest, principal")
    FEE_PENALTY_INTEREST_PRINCIPAL = "fee,penalty,interest,principal", _("fee, penalty, interest, principal")
    INTEREST_PRINCIPAL_PENALTY_FEE = "interest,principal,penalty,fee", _("interest, principal, penalty, fee")
    PRINCIPAL_INTEREST_FEE_PENALTY = "principal,interest,fee,penalty", _("principal, interest, fee, penalty")


class LoanProduct(models.Model):
    code = models.SlugField(_("code"), max_length=50, unique=True)
    name = models.CharField(_("name"), max_length=200)
    currency = models.CharField(_("currency"), max_length=3, choices=CURRENCY_CHOICES, default="CNY")
    repayment_method = models.CharField(
        _("repayment method"), max_length=20, choices=[(m.value, m.value) for m in RepaymentMethod]
    )
    frequency = models.CharField(
        _("frequency"), max_length=10, choices=[(f.value, f.value) for f in Frequency]
    )
    min_principal = money_field(_("minimum principal"), default=Decimal("100.00"))
    max_principal = money_field(_("maximum principal"), default=Decimal("1000000.00"))
    min_rate = rate_field(_("minimum yearly rate"), default=Decimal("0"))
    max_rate = rate_field(_("maximum yearly rate"), default=Decimal("0.24"))
    min_term = models.PositiveSmallIntegerField(_("minimum term (installments)"), default=1)
    max_term = models.PositiveSmallIntegerField(_("maximum term (installments)"), default=360)
    grace_days = models.PositiveSmallIntegerField(_("grace days"), default=0)
    penalty_rate = rate_field(_("penalty (default interest) yearly rate"), default=Decimal("0"))
    installment_fee = money_field(_("fee per installment"))
    allocation_order = models.CharField(
        _("allocation order"),
        max_length=40,
        choices=AllocationOrder.choices,
        default=AllocationOrder.PENALTY_FEE_INTEREST_PRINCIPAL,
    )
    is_active = models.BooleanField(_("active"), default=True)

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("loan product")
        verbose_name_plural = _("loan products")
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(
                condition=Q(min_principal__gt=0) & Q(max_principal__gte=F("min_principal")),
                name="product_principal_range",
                violation_error_message=_(
                    "The minimum principal must be positive and not above the maximum."
                ),
            ),
            models.CheckConstraint(
                condition=Q(min_rate__gte=0) & Q(max_rate__gte=F("min_rate")),
                name="product_rate_range",
                violation_error_message=_("The minimum rate must not be negative nor above the maximum."),
            ),
            models.CheckConstraint(
                condition=Q(min_term__gte=1) & Q(max_term__gte=F("min_term")),
                name="product_term_range",
                violation_error_message=_("The minimum term must be at least 1 and not above the maximum."),
            ),
            models.CheckConstraint(
                condition=Q(penalty_rate__gte=0),
                name="product_penalty_rate_non_negative",
                violation_error_message=_("The penalty rate must not be negative."),
            ),
            models.CheckConstraint(
                condition=Q(installment_fee__gte=0),
                name="product_fee_non_negative",
                violation_error_message=_("The fee must not be negative."),
            ),
            models.CheckConstraint(
                condition=Q(allocation_order__in=AllocationOrder.values),
                name="product_allocation_order_valid",
            ),
            models.CheckConstraint(
                condition=Q(repayment_method__in=[m.value for m in RepaymentMethod]),
                name="product_repayment_method_valid",
            ),
            models.CheckConstraint(
                condition=Q(frequency__in=[f.value for f in Frequency]), name="product_frequency_valid"
            ),
        ]

    def __str__(self):
        return self.name

    @property
    def waterfall(self) -> tuple[str, ...]:
        return tuple(self.allocation_order.split(","))


class Bucket(models.TextChoices):
    CURRENT = "current", _("current")
    D1_30 = "1-30", _("1-30 days (M1)")
    D31_60 = "31-60", _("31-60 days (M2)")
    D61_90 = "61-90", _("61-90 days (M3)")
    D91_180 = "91-180", _("91-180 days (M4-M6)")
    D180_PLUS = "180+", _("over 180 days (M6+)")


assert [b for _floor, b in BUCKET_FLOORS] == Bucket.values  # noqa: S101 - the pure module and the model agree


class Loan(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", pgettext_lazy("loan status", "active")
        PAID_OFF = "paid_off", _("paid off")
        WRITTEN_OFF = "written_off", _("written off")

    DELINQUENCY_FIELDS = (
        "oldest_unpaid_due_date",
        "overdue_principal",
        "overdue_interest",
        "overdue_fee",
        "overdue_penalty",
        "outstanding_principal",
        "bucket",
    )

    partner = models.ForeignKey(Partner, on_delete=models.PROTECT, related_name="loans")
    borrower = models.ForeignKey(Borrower, on_delete=models.PROTECT, related_name="loans")
    product = models.ForeignKey(LoanProduct, on_delete=models.PROTECT, related_name="loans")
    external_ref = models.CharField(_("external reference"), max_length=100)
    currency = models.CharField(_("currency"), max_length=3, choices=CURRENCY_CHOICES)
    principal = money_field(_("principal"), default=None)
    annual_rate = rate_field(_("yearly interest rate"))
    term = models.PositiveSmallIntegerField(_("term (installments)"))
    start_date = models.DateField(_("disbursed on"))
    first_due_date = models.DateField(_("first due date"))
    status = models.CharField(_("status"), max_length=12, choices=Status.choices, default=Status.ACTIVE)
    closed_on = models.DateField(_("closed on"), null=True, blank=True)
    schedule_version = models.PositiveSmallIntegerField(_("current schedule version"), default=1)
    # Set by risk scoring; the early-warning stage sends pre-due reminders to loans at risk.
    at_risk = models.BooleanField(_("at risk"), default=False)
    # After this date the debt is time-barred: no suit, no threat of suit (Reg F 1006.26(b), CONC 7.15).
    limitation_date = models.DateField(_("limitation date"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    # Delinquency state, derived from the current schedule by delinquency_refresh(as_of).
    # Days past due is as_of - oldest_unpaid_due_date (the oldest installment with anything unpaid,
    # future ones included), so it needs no daily update; a row changes only when its figures do.
    oldest_unpaid_due_date = models.DateField(_("oldest unpaid due date"), null=True, blank=True)
    overdue_principal = money_field(_("overdue principal"))
    overdue_interest = money_field(_("overdue interest"))
    overdue_fee = money_field(_("overdue fees"))
    overdue_penalty = money_field(_("overdue penalty"))
    outstanding_principal = money_field(_("outstanding principal"))
    bucket = models.CharField(_("bucket"), max_length=10, choices=Bucket.choices, default=Bucket.CURRENT)

    history = HistoricalRecords(excluded_fields=list(DELINQUENCY_FIELDS))

    class Meta:
        verbose_name = _("loan")
        verbose_name_plural = _("loans")
        constraints = [
            models.UniqueConstraint(fields=["partner", "external_ref"], name="loan_unique_ref_per_partner"),
            # Target of the composite foreign key that keeps a payment with its loan's partner (0004).
            models.UniqueConstraint(fields=["id", "partner"], name="loan_unique_id_partner"),
            models.CheckConstraint(condition=~Q(external_ref=""), name="loan_external_ref_not_empty"),
            models.CheckConstraint(condition=Q(principal__gt=0), name="loan_principal_positive"),
            models.CheckConstraint(condition=Q(annual_rate__gte=0), name="loan_rate_non_negative"),
            models.CheckConstraint(condition=Q(term__gte=1), name="loan_term_positive"),
            models.CheckConstraint(
                condition=Q(first_due_date__gt=F("start_date")), name="loan_first_due_after_start"
            ),
            models.CheckConstraint(
                condition=Q(schedule_version__gte=1), name="loan_schedule_version_positive"
            ),
            models.CheckConstraint(
                condition=Q(overdue_principal__gte=0)
                & Q(overdue_interest__gte=0)
                & Q(overdue_fee__gte=0)
                & Q(overdue_penalty__gte=0)
                & Q(outstanding_principal__gte=0)
                & Q(outstanding_principal__lte=F("principal")),
                name="loan_delinquency_amounts_valid",
            ),
            models.CheckConstraint(condition=Q(bucket__in=Bucket.values), name="loan_bucket_valid"),
            models.CheckConstraint(
                condition=Q(status__in=["active", "paid_off", "written_off"]), name="loan_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(status="active", closed_on__isnull=True)
                | (~Q(status="active") & Q(closed_on__isnull=False)),
                name="loan_closed_on_iff_closed",
            ),
        ]
        indexes = [
            models.Index(fields=["bucket"], name="loan_bucket_idx", condition=~Q(bucket="current")),
            # The worklist's search by loan reference, across partners.
            models.Index(fields=["external_ref"], name="loan_external_ref_idx"),
            models.Index(
                fields=["oldest_unpaid_due_date"],
                name="loan_active_oldest_due_idx",
                condition=Q(status="active"),
            ),
        ]

    def __str__(self):
        return self.external_ref

    @property
    def overdue_total(self) -> Decimal:
        return self.overdue_principal + self.overdue_interest + self.overdue_fee + self.overdue_penalty

    def days_past_due(self, as_of) -> int:
        return days_past_due(self.oldest_unpaid_due_date, as_of)


class Installment(models.Model):
    loan = models.ForeignKey(Loan, on_delete=models.PROTECT, related_name="installments")
    schedule_version = models.PositiveSmallIntegerField(_("schedule version"), default=1)
    number = models.PositiveSmallIntegerField(_("number"))
    due_date = models.DateField(_("due date"))
    principal_due = money_field(_("principal due"))
    interest_due = money_field(_("interest due"))
    fee_due = money_field(_("fee due"))
    penalty_due = money_field(_("penalty due"))
    principal_paid = money_field(_("principal paid"))
    interest_paid = money_field(_("interest paid"))
    fee_paid = money_field(_("fee paid"))
    penalty_paid = money_field(_("penalty paid"))
    # A restructuring writes a new version; the old rows stay, superseded.
    superseded = models.BooleanField(_("superseded"), default=False)
    # Set by a restructuring: penalty brought over from the superseded schedule (due with this row)
    # and accrued penalty forgiven. The refresh keeps penalty_due = carried + accrued - waived.
    penalty_carried = money_field(_("penalty carried over"))
    penalty_waived = money_field(_("penalty waived"))

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("installment")
        verbose_name_plural = _("installments")
        ordering = ["loan_id", "schedule_version", "number"]
        constraints = [
            models.UniqueConstraint(
                fields=["loan", "schedule_version", "number"], name="installment_unique_number_per_version"
            ),
            # One current row per installment number; on PostgreSQL an exclusion constraint (migration
            # 0002) further forbids current rows from two schedule versions.
            models.UniqueConstraint(
                fields=["loan", "number"],
                condition=Q(superseded=False),
                name="installment_one_current_per_number",
            ),
            models.CheckConstraint(condition=Q(number__gte=1), name="installment_number_positive"),
            *[
                models.CheckConstraint(
                    condition=Q(**{f"{c}_paid__gte": 0}) & Q(**{f"{c}_paid__lte": F(f"{c}_due")}),
                    name=f"installment_{c}_paid_within_due",
                )
                for c in COMPONENTS
            ],
            models.CheckConstraint(
                condition=Q(principal_due__gte=0)
                & Q(interest_due__gte=0)
                & Q(fee_due__gte=0)
                & Q(penalty_due__gte=0),
                name="installment_due_non_negative",
            ),
            models.CheckConstraint(
                condition=Q(penalty_carried__gte=0) & Q(penalty_waived__gte=0),
                name="installment_penalty_adjustments_non_negative",
            ),
        ]
        indexes = [
            models.Index(
                fields=["loan", "due_date"], name="installment_current_due_idx", condition=Q(superseded=False)
            ),
            # The penalty step of the refresh reads only late rows with principal still unpaid.
            models.Index(
                fields=["due_date"],
                name="installment_unpaid_due_idx",
                condition=Q(superseded=False) & Q(principal_paid__lt=F("principal_due")),
            ),
        ]

    def __str__(self):
        return f"{self.loan_id} #{self.number} v{self.schedule_version}"

    @property
    def total_due(self) -> Decimal:
        return self.principal_due + self.interest_due + self.fee_due + self.penalty_due

    @property
    def total_paid(self) -> Decimal:
        return self.principal_paid + self.interest_paid + self.fee_paid + self.penalty_paid

    @property
    def outstanding(self) -> Decimal:
        return self.total_due - self.total_paid


class Payment(models.Model):
    class Status(models.TextChoices):
        POSTED = "posted", _("posted")
        REVERSED = "reversed", _("reversed")

    class Channel(models.TextChoices):
        BANK_TRANSFER = "bank_transfer", _("bank transfer")
        CARD = "card", _("card")
        WALLET = "wallet", _("e-wallet")
        CASH = "cash", _("cash")
        OTHER = "other", _("other")

    partner = models.ForeignKey(Partner, on_delete=models.PROTECT, related_name="payments")
    loan = models.ForeignKey(Loan, on_delete=models.PROTECT, related_name="payments")
    external_ref = models.CharField(_("external reference"), max_length=100)
    amount = money_field(_("amount"), default=None)
    currency = models.CharField(_("currency"), max_length=3, choices=CURRENCY_CHOICES)
    # The date the money counts from; a back-dated payment replays the loan's allocation.
    value_date = models.DateField(_("value date"))
    received_at = models.DateTimeField(_("received at"))
    channel = models.CharField(
        _("channel"), max_length=20, choices=Channel.choices, default=Channel.BANK_TRANSFER
    )
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.POSTED)
    reversed_at = models.DateTimeField(_("reversed at"), null=True, blank=True)
    reversal_reason = models.CharField(_("reversal reason"), max_length=300, blank=True)
    # Money left over after every installment of the current schedule is paid (to refund or hold).
    unapplied_amount = money_field(_("unapplied amount"))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("payment")
        verbose_name_plural = _("payments")
        ordering = ["loan_id", "value_date", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["partner", "external_ref"], name="payment_unique_ref_per_partner"
            ),
            models.CheckConstraint(condition=~Q(external_ref=""), name="payment_external_ref_not_empty"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="payment_amount_positive"),
            models.CheckConstraint(
                condition=Q(unapplied_amount__gte=0) & Q(unapplied_amount__lte=F("amount")),
                name="payment_unapplied_within_amount",
            ),
            models.CheckConstraint(
                condition=(Q(status="posted") & Q(reversed_at__isnull=True))
                | (Q(status="reversed") & Q(reversed_at__isnull=False) & ~Q(reversal_reason="")),
                name="payment_reversal_recorded",
            ),
            models.CheckConstraint(
                condition=~Q(status="reversed") | Q(unapplied_amount=0), name="payment_reversed_holds_nothing"
            ),
        ]
        indexes = [
            # The dashboards' amount collected by day.
            models.Index(
                fields=["value_date"], name="payment_posted_value_date_idx", condition=Q(status="posted")
            ),
            models.Index(fields=["loan", "value_date"], name="payment_loan_value_date_idx"),
        ]

    def __str__(self):
        return f"{self.external_ref} {self.amount} {self.currency}"


class Allocation(models.Model):
    """How much of a payment went to each component of one installment.

    Derived: ``payment_post``/``payment_reverse`` replay the loan's payments through
    ``loans.allocation.allocate`` and rewrite the loan's allocation rows in bulk.
    """

    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="allocations")
    installment = models.ForeignKey(Installment, on_delete=models.PROTECT, related_name="allocations")
    principal = money_field(_("principal"))
    interest = money_field(_("interest"))
    fee = money_field(_("fee"))
    penalty = money_field(_("penalty"))

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("allocation")
        verbose_name_plural = _("allocations")
        constraints = [
            models.UniqueConstraint(
                fields=["payment", "installment"], name="allocation_unique_per_installment"
            ),
            models.CheckConstraint(
                condition=Q(principal__gte=0) & Q(interest__gte=0) & Q(fee__gte=0) & Q(penalty__gte=0),
                name="allocation_non_negative",
            ),
            models.CheckConstraint(
                condition=Q(principal__gt=0) | Q(interest__gt=0) | Q(fee__gt=0) | Q(penalty__gt=0),
                name="allocation_not_empty",
            ),
        ]

    def __str__(self):
        return f"{self.payment_id} -> {self.installment_id}: {self.total}"

    @property
    def total(self) -> Decimal:
        return self.principal + self.interest + self.fee + self.penalty


__all__ = [
    "Allocation",
    "AllocationOrder",
    "Borrower",
    "Bucket",
    "ContactPoint",
    "Installment",
    "Loan",
    "LoanProduct",
    "Partner",
    "Payment",
]


class BucketSnapshot(models.Model):
    """A delinquent loan's arrears bucket at a month's end (or another reporting date).

    Loans are re-bucketed every day in place, so the past is kept here: the arrears ageing trend and the
    month-over-month roll rates compare two snapshot dates. Only loans past due are written; an active
    loan without a row on a date was current then.
    """

    as_of = models.DateField(_("as of"))
    loan = models.ForeignKey(Loan, on_delete=models.CASCADE, related_name="bucket_snapshots")
    bucket = models.CharField(_("bucket"), max_length=10, choices=Bucket.choices)
    days_past_due = models.PositiveIntegerField(_("days past due"))
    overdue_total = money_field(_("amount overdue"))
    outstanding_principal = money_field(_("outstanding principal"))

    class Meta:
        verbose_name = _("bucket snapshot")
        verbose_name_plural = _("bucket snapshots")
        constraints = [
            models.UniqueConstraint(fields=["as_of", "loan"], name="bucket_snapshot_one_per_loan_and_date"),
            models.CheckConstraint(
                condition=Q(bucket__in=Bucket.values) & ~Q(bucket="current"), name="bucket_snapshot_past_due"
            ),
            models.CheckConstraint(
                condition=Q(overdue_total__gte=0) & Q(outstanding_principal__gte=0),
                name="bucket_snapshot_amounts_valid",
            ),
        ]
        indexes = [models.Index(fields=["as_of", "bucket"], name="bucket_snapshot_date_idx")]

    def __str__(self):
        return f"{self.loan_id} {self.bucket} @ {self.as_of}"
