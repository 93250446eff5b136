"""Every write to the loan book that matters.

Plain functions with keyword-only arguments, each atomic. Bad input raises ``ValidationError``
naming the field, before anything is written. Dates of business (``as_of``, value dates) are
passed in; nothing here reads the clock except to stamp ``received_at`` when none is given.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from simple_history.utils import bulk_create_with_history

from loans import allocation, schedules
from loans.exceptions import ValidationError, field_error
from loans.models import (
    Allocation,
    Borrower,
    ContactPoint,
    Installment,
    Loan,
    LoanProduct,
    Partner,
    Payment,
)
from loans.money import MINOR_UNITS, ZERO, UnknownCurrency, minor_unit, quantize


def _to_decimal(value, field: str) -> Decimal:
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, TypeError, ValueError):
        raise field_error(field, _("Enter a number.")) from None
    if not amount.is_finite():
        raise field_error(field, _("Enter a finite number."))
    return amount


def _money(value, field: str, currency: str) -> Decimal:
    """An amount with no more decimals than the currency's minor unit has (never silently rounded)."""
    amount = _to_decimal(value, field)
    if amount % minor_unit(currency):
        raise field_error(
            field,
            _("%(currency)s amounts have at most %(digits)d decimal places.")
            % {"currency": currency, "digits": MINOR_UNITS[currency]},
        )
    return quantize(amount, currency)


def _require(value: str, field: str, max_length: int) -> str:
    value = (value or "").strip()
    if not value:
        raise field_error(field, _("This field is required."), code="required")
    if len(value) > max_length:
        raise field_error(field, _("At most %(n)d characters.") % {"n": max_length}, code="max_length")
    return value


_DUPLICATE_REF = {  # lazy: translated when raised, in the request's language
    "Borrower": gettext_lazy("This partner already has a borrower with this reference."),
    "Loan": gettext_lazy("This partner already has a loan with this reference."),
    "Payment": gettext_lazy("This partner already has a payment with this reference."),
}


def _insert_with_external_ref(instance):
    """Insert a row whose ``external_ref`` is unique per partner; a duplicate is a field error.

    The unique constraint decides (no check-then-insert race): a concurrent insert of the same
    reference fails here too, inside a savepoint, so the caller's transaction goes on cleanly.
    """
    model = type(instance)
    try:
        with transaction.atomic():
            instance.save(force_insert=True)
    except IntegrityError:
        duplicate = model.objects.filter(partner_id=instance.partner_id, external_ref=instance.external_ref)
        if duplicate.exists():
            raise field_error("external_ref", _DUPLICATE_REF[model.__name__], "unique") from None
        raise
    return instance


# --- partners and borrowers ------------------------------------------------------------------------


@transaction.atomic
def partner_create(*, code: str, name: str) -> Partner:
    code = _require(code, "code", 50)
    if Partner.objects.filter(code=code).exists():
        raise field_error("code", _("A partner with this code exists already."), code="unique")
    return Partner.objects.create(code=code, name=_require(name, "name", 200))


@dataclass(frozen=True)
class ContactPointIn:
    kind: str
    value: str
    label: str = ContactPoint.Label.MOBILE
    is_primary: bool = False
    consent_given: bool = True
    is_third_party: bool = False
    third_party_name: str = ""
    relationship: str = ""


def _validate_time_zone(value: str) -> str:
    if not value:
        return ""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise field_error("time_zone", _("Unknown time zone %(tz)r.") % {"tz": value}) from None
    return value


@transaction.atomic
def borrower_create(
    *,
    partner: Partner,
    external_ref: str,
    full_name: str,
    national_id: str = "",
    date_of_birth: date | None = None,
    time_zone: str = "",
    preferred_language: str = "zh-hans",
    region: str = "",
    contact_points: Sequence[ContactPointIn] = (),
) -> Borrower:
    borrower = Borrower(
        partner=partner,
        external_ref=_require(external_ref, "external_ref", 100),
        full_name=_require(full_name, "full_name", 200),
        national_id=(national_id or "").strip(),
        date_of_birth=date_of_birth,
        time_zone=_validate_time_zone(time_zone),
        preferred_language=preferred_language,
        region=(region or "").strip().upper(),
    )
    borrower.full_clean(validate_unique=False, validate_constraints=False)
    _insert_with_external_ref(borrower)
    for point in contact_points:
        contact_point_add(borrower=borrower, point=point)
    return borrower


@transaction.atomic
def contact_point_add(*, borrower: Borrower, point: ContactPointIn) -> ContactPoint:
    contact = ContactPoint(
        borrower=borrower,
        kind=point.kind,
        value=_require(point.value, "value", 300),
        label=point.label,
        is_primary=point.is_primary,
        consent_given=point.consent_given,
        is_third_party=point.is_third_party,
        third_party_name=point.third_party_name,
        relationship=point.relationship,
    )
    if contact.is_third_party and not contact.relationship:
        raise field_error("relationship", _("A third-party contact needs its relationship to the borrower."))
    contact.full_clean(validate_unique=False, validate_constraints=False)
    if ContactPoint.objects.filter(borrower=borrower, kind=contact.kind, value=contact.value).exists():
        raise field_error("value", _("The borrower already has this contact point."), code="unique")
    if contact.is_primary:
        ContactPoint.objects.filter(borrower=borrower, kind=contact.kind, is_primary=True).update(
            is_primary=False
        )
    contact.save()
    return contact


@transaction.atomic
def contact_point_opt_out(*, contact_point: ContactPoint, at: datetime) -> ContactPoint:
    """The borrower withdrew consent for this channel and address (Reg F 1006.14(h), PIPL art. 15)."""
    contact_point.opted_out = True
    contact_point.opted_out_at = at
    contact_point.save(update_fields=["opted_out", "opted_out_at"])
    return contact_point


# --- loans -----------------------------------------------------------------------------------------


def _validate_terms(*, product: LoanProduct, currency: str, principal, annual_rate, term) -> tuple:
    if currency != product.currency:
        raise field_error(
            "currency",
            _("Product %(product)s lends in %(expected)s, not %(given)s.")
            % {"product": product.code, "expected": product.currency, "given": currency},
        )
    try:
        minor_unit(currency)
    except UnknownCurrency:
        raise field_error("currency", _("Unsupported currency %(c)r.") % {"c": currency}) from None
    principal = _money(principal, "principal", currency)
    if principal <= 0:
        raise field_error("principal", _("Principal must be greater than zero."), code="min_value")
    if not product.min_principal <= principal <= product.max_principal:
        raise field_error(
            "principal",
            _("Principal must be between %(low)s and %(high)s for this product.")
            % {"low": product.min_principal, "high": product.max_principal},
            code="out_of_range",
        )
    annual_rate = _to_decimal(annual_rate, "annual_rate")
    if not product.min_rate <= annual_rate <= product.max_rate:
        raise field_error(
            "annual_rate",
            _("The yearly rate must be between %(low)s and %(high)s for this product.")
            % {"low": product.min_rate, "high": product.max_rate},
            code="out_of_range",
        )
    if annual_rate % Decimal("0.000001"):
        raise field_error("annual_rate", _("The yearly rate has at most 6 decimal places."))
    if not isinstance(term, int) or isinstance(term, bool):
        raise field_error("term", _("Enter a whole number of installments."))
    if not product.min_term <= term <= product.max_term:
        raise field_error(
            "term",
            _("The term must be between %(low)d and %(high)d installments for this product.")
            % {"low": product.min_term, "high": product.max_term},
            code="out_of_range",
        )
    return principal, annual_rate, term


def _schedule_error(exc: schedules.ScheduleError) -> ValidationError:
    """The schedule module says ``installments[i]``; the loan's input calls them ``schedule[i]``."""
    field = exc.field
    if field.startswith("installments"):
        field = "schedule" + field[len("installments") :]
    return field_error(field, exc.message)


@transaction.atomic
def loan_create(
    *,
    partner: Partner,
    borrower: Borrower,
    product: LoanProduct,
    external_ref: str,
    principal,
    annual_rate,
    term: int,
    start_date: date,
    first_due_date: date,
    currency: str | None = None,
    schedule: Sequence[schedules.ExplicitInstallment] | None = None,
) -> Loan:
    """Book a loan with its schedule: generated from the terms, or the partner's, validated.

    With an explicit schedule, ``term`` must equal its length and ``first_due_date`` its first date.
    """
    external_ref = _require(external_ref, "external_ref", 100)
    if borrower.partner_id != partner.id:
        raise field_error("borrower", _("The borrower belongs to another partner."))
    if not product.is_active:
        raise field_error("product", _("Product %(p)s is not active.") % {"p": product.code})
    currency = currency or product.currency
    principal, annual_rate, term = _validate_terms(
        product=product, currency=currency, principal=principal, annual_rate=annual_rate, term=term
    )
    if first_due_date <= start_date:
        raise field_error("first_due_date", _("The first due date must be after the disbursement date."))
    try:
        if schedule is None:
            rows = schedules.generate_schedule(
                principal=principal,
                annual_rate=annual_rate,
                term=term,
                method=schedules.RepaymentMethod(product.repayment_method),
                frequency=schedules.Frequency(product.frequency),
                first_due_date=first_due_date,
                currency=currency,
                fee_per_installment=product.installment_fee,
            )
        else:
            rows = schedules.validate_explicit_schedule(
                principal=principal, start_date=start_date, installments=schedule, currency=currency
            )
    except schedules.ScheduleError as exc:
        raise _schedule_error(exc) from None
    if schedule is not None and (len(rows) != term or rows[0].due_date != first_due_date):
        raise field_error(
            "schedule", _("The schedule must have `term` installments starting on `first_due_date`.")
        )
    loan = Loan(
        partner=partner,
        borrower=borrower,
        product=product,
        external_ref=external_ref,
        currency=currency,
        principal=principal,
        annual_rate=annual_rate,
        term=term,
        start_date=start_date,
        first_due_date=first_due_date,
        oldest_unpaid_due_date=rows[0].due_date,
        outstanding_principal=principal,
    )
    _insert_with_external_ref(loan)
    Installment.objects.bulk_create(
        Installment(
            loan=loan,
            schedule_version=1,
            number=row.number,
            due_date=row.due_date,
            principal_due=row.principal,
            interest_due=row.interest,
            fee_due=row.fee,
        )
        for row in rows
    )
    return loan


# --- payments --------------------------------------------------------------------------------------


@transaction.atomic
def payment_post(
    *,
    loan: Loan,
    external_ref: str,
    amount,
    currency: str,
    value_date: date,
    received_at: datetime | None = None,
    channel: str = Payment.Channel.BANK_TRANSFER,
    as_of: date | None = None,
) -> Payment:
    """Post a payment and replay the loan's allocation (so a back-dated one lands in its place).

    ``as_of`` is the business date for the delinquency refresh that follows (default: today in
    the configured time zone). A payment that clears the loan closes it as paid off.
    """
    loan = Loan.objects.select_for_update().get(pk=loan.pk)
    external_ref = _require(external_ref, "external_ref", 100)
    if loan.status != Loan.Status.ACTIVE:
        raise field_error(
            "loan",
            _("Loan %(ref)s is %(status)s; it takes no payments.") % {"ref": loan, "status": loan.status},
        )
    if currency != loan.currency:
        raise field_error(
            "currency",
            _("The loan is in %(loan)s, not %(given)s.") % {"loan": loan.currency, "given": currency},
        )
    amount = _money(amount, "amount", currency)
    if amount <= 0:
        raise field_error("amount", _("The amount must be greater than zero."), code="min_value")
    if value_date < loan.start_date:
        raise field_error("value_date", _("The value date is before the loan was disbursed."))
    if received_at is None:
        received_at = timezone.now()
    if channel not in Payment.Channel.values:
        raise field_error("channel", _("Unknown payment channel %(c)r.") % {"c": channel})
    payment = _insert_with_external_ref(
        Payment(
            partner_id=loan.partner_id,
            loan=loan,
            external_ref=external_ref,
            amount=amount,
            currency=currency,
            value_date=value_date,
            received_at=received_at,
            channel=channel,
        )
    )
    loan_replay(loan=loan, as_of=as_of or timezone.localdate())
    payment.refresh_from_db()
    return payment


@transaction.atomic
def payment_reverse(
    *, payment: Payment, reason: str, at: datetime | None = None, as_of: date | None = None
) -> Payment:
    """Reverse a posted payment (a bounced transfer, a chargeback) and replay the loan without it."""
    loan = Loan.objects.select_for_update().get(pk=payment.loan_id)
    payment = Payment.objects.select_for_update().get(pk=payment.pk)
    reason = _require(reason, "reason", 300)
    if payment.status == Payment.Status.REVERSED:
        raise field_error("payment", _("This payment was reversed already."), code="reversed")
    if loan.status == Loan.Status.WRITTEN_OFF:
        raise field_error("payment", _("The loan is written off; its payments cannot be reversed."))
    payment.status = Payment.Status.REVERSED
    payment.reversed_at = at or timezone.now()
    payment.reversal_reason = reason
    payment.unapplied_amount = ZERO
    payment.save(update_fields=["status", "reversed_at", "reversal_reason", "unapplied_amount"])
    loan_replay(loan=loan, as_of=as_of or timezone.localdate())
    payment.refresh_from_db()
    return payment


PAID_FIELDS = ("principal_paid", "interest_paid", "fee_paid", "penalty_paid")
ALLOCATION_AMOUNTS = ("principal", "interest", "fee", "penalty")


@dataclass(frozen=True)
class ReplayChanges:
    """What replaying one loan changes, computed in memory (``loan_replay_changes``).

    ``installments`` and ``payments`` are the given rows whose paid columns or ``unapplied_amount``
    moved (already set on them); ``status_changed`` says the loan's ``status``/``closed_on`` were set.
    """

    lines: tuple[allocation.AllocationLine, ...]
    installments: list[Installment]
    payments: list[Payment]
    status_changed: bool


def loan_replay_changes(
    *, loan: Loan, installments: Sequence[Installment], payments: Sequence[Payment]
) -> ReplayChanges:
    """Allocate the loan's posted ``payments`` over its current ``installments`` and set the results on
    them and on ``loan`` (reads ``loan.product``: load it with the loans). Shared by ``loan_replay`` (one
    loan) and ``loans.batch`` (many loans, written in bulk), so both give the same answer.

    The rows may be model instances or anything with their attributes (``loans.batch`` passes plain
    rows: building twelve thousand model instances would cost more than the allocation)."""
    installments = sorted(installments, key=lambda i: (i.due_date, i.number))
    payments = sorted(payments, key=lambda p: (p.value_date, p.pk))
    result = allocation.allocate(
        installments=[
            allocation.InstallmentDue(
                key=i.pk,
                number=i.number,
                due_date=i.due_date,
                principal=i.principal_due,
                interest=i.interest_due,
                fee=i.fee_due,
                penalty=i.penalty_due,
            )
            for i in installments
        ],
        payments=[
            allocation.PaymentIn(key=p.pk, value_date=p.value_date, amount=p.amount, sequence=p.pk)
            for p in payments
        ],
        order=loan.product.waterfall,
        currency=loan.currency,
    )
    changed_installments = []
    for inst in installments:
        paid = result.paid[inst.pk]
        new = [paid["principal"], paid["interest"], paid["fee"], paid["penalty"]]
        if [getattr(inst, f) for f in PAID_FIELDS] != new:
            for field, value in zip(PAID_FIELDS, new, strict=True):
                setattr(inst, field, value)
            changed_installments.append(inst)
    changed_payments = []
    for payment in payments:
        unapplied = result.excess.get(payment.pk, ZERO)
        if payment.unapplied_amount != unapplied:
            payment.unapplied_amount = unapplied
            changed_payments.append(payment)

    status_changed = False
    fully_paid = all(i.outstanding == 0 for i in installments)
    if fully_paid and loan.status == Loan.Status.ACTIVE:
        loan.status = Loan.Status.PAID_OFF
        loan.closed_on = max(p.value_date for p in payments)
        status_changed = True
    elif not fully_paid and loan.status == Loan.Status.PAID_OFF:
        loan.status = Loan.Status.ACTIVE  # a reversal reopened it
        loan.closed_on = None
        status_changed = True
    return ReplayChanges(
        lines=result.lines,
        installments=changed_installments,
        payments=changed_payments,
        status_changed=status_changed,
    )


def allocation_changes(*, existing: Iterable[Allocation], lines) -> tuple[list[Allocation], list[Allocation]]:
    """Which allocation rows to delete and which to insert so that ``existing`` equals ``lines``.

    Only the rows that differ: a payment on the current date adds rows and changes none; a
    back-dated one or a reversal rewrites only what moved.
    """
    wanted = {(line.payment_key, line.installment_key): line for line in lines}
    stale, kept = [], set()
    for row in existing:
        line = wanted.get((row.payment_id, row.installment_id))
        if line is not None and all(getattr(row, a) == getattr(line, a) for a in ALLOCATION_AMOUNTS):
            kept.add((row.payment_id, row.installment_id))
        else:
            stale.append(row)
    new = [
        Allocation(payment_id=p, installment_id=i, **{a: getattr(line, a) for a in ALLOCATION_AMOUNTS})
        for (p, i), line in wanted.items()
        if (p, i) not in kept
    ]
    return stale, new


def loan_replay(*, loan: Loan, as_of: date) -> None:
    """Re-derive the loan's allocations and paid amounts from its schedule and posted payments.

    Allocation is a pure function of the two (``loans.allocation.allocate``), so the loan is
    replayed from scratch: the answer never depends on the order payments arrived in. Runs inside
    the caller's transaction with the loan row locked.
    """
    installments = list(
        Installment.objects.filter(loan=loan, superseded=False).order_by("due_date", "number")
    )
    payments = list(
        Payment.objects.filter(loan=loan, status=Payment.Status.POSTED).order_by("value_date", "id")
    )
    changes = loan_replay_changes(loan=loan, installments=installments, payments=payments)
    _write_allocations(loan=loan, lines=changes.lines)
    Installment.objects.bulk_update(changes.installments, PAID_FIELDS, batch_size=500)
    Payment.objects.bulk_update(changes.payments, ["unapplied_amount"], batch_size=500)
    if changes.status_changed:
        loan.save(update_fields=["status", "closed_on"])
    delinquency_refresh(as_of=as_of, loan_ids=[loan.pk])


def _write_allocations(*, loan: Loan, lines) -> None:
    """Make the loan's allocation rows equal ``lines``, touching only the rows that differ.

    Allocation rows are the record of where each payment went, so their history shows each
    change: deletions through simple-history's delete signal, new rows through
    ``bulk_create_with_history``.
    """
    stale, new = allocation_changes(existing=Allocation.objects.filter(installment__loan=loan), lines=lines)
    if stale:
        Allocation.objects.filter(pk__in=[row.pk for row in stale]).delete()
    bulk_create_with_history(new, Allocation)


# --- delinquency -----------------------------------------------------------------------------------

# The refresh's SQL lives in loans.refresh (PostgreSQL and SQLite dialects of one computation).
from loans.refresh import RefreshResult, delinquency_refresh  # noqa: E402

__all__ = [
    "ContactPointIn",
    "RefreshResult",
    "ReplayChanges",
    "allocation_changes",
    "borrower_create",
    "contact_point_add",
    "contact_point_opt_out",
    "delinquency_refresh",
    "loan_create",
    "loan_replay",
    "loan_replay_changes",
    "partner_create",
    "payment_post",
    "payment_reverse",
]


@transaction.atomic
def contact_point_invalidate(*, contact_point: ContactPoint, reason: str) -> ContactPoint:
    """The number or address reached someone else (a wrong number): the contact rules refuse it from
    now on (``invalid_contact_point``), and in China it counts towards the borrower being unreachable."""
    reason = (reason or "").strip()
    if not reason:
        raise field_error("reason", _("Say why the contact point is wrong."))
    contact_point = ContactPoint.objects.select_for_update().get(pk=contact_point.pk)
    if contact_point.is_valid:
        contact_point.is_valid = False
        contact_point._change_reason = reason[:100]
        contact_point.save(update_fields=["is_valid"])
    return contact_point
