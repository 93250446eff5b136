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

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from simple_history.utils import bulk_create_with_history

from loans import allocation, schedules
from loans.delinquency import BUCKET_FLOORS
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
    if Borrower.objects.filter(partner=partner, external_ref=borrower.external_ref).exists():
        raise field_error(
            "external_ref", _("This partner already has a borrower with this reference."), "unique"
        )
    try:
        with transaction.atomic():
            borrower.save()
    except IntegrityError:  # a concurrent insert of the same reference won the race
        raise field_error(
            "external_ref", _("This partner already has a borrower with this reference."), "unique"
        ) from None
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
    if annual_rate.as_tuple().exponent < -6:
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
    if Loan.objects.filter(partner=partner, external_ref=external_ref).exists():
        raise field_error("external_ref", _("This partner already has a loan with this reference."), "unique")

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
    try:
        with transaction.atomic():
            loan.save()
    except IntegrityError:
        raise field_error(
            "external_ref", _("This partner already has a loan with this reference."), "unique"
        ) from None
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
    if Payment.objects.filter(partner_id=loan.partner_id, external_ref=external_ref).exists():
        raise field_error(
            "external_ref", _("This partner already has a payment with this reference."), "unique"
        )
    if channel not in Payment.Channel.values:
        raise field_error("channel", _("Unknown payment channel %(c)r.") % {"c": channel})
    try:
        with transaction.atomic():
            payment = Payment.objects.create(
                partner_id=loan.partner_id,
                loan=loan,
                external_ref=external_ref,
                amount=amount,
                currency=currency,
                value_date=value_date,
                received_at=received_at,
                channel=channel,
            )
    except IntegrityError:
        raise field_error(
            "external_ref", _("This partner already has a payment with this reference."), "unique"
        ) from None
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
    Allocation.objects.filter(installment__loan=loan).delete()
    for inst in installments:
        paid = result.paid[inst.pk]
        inst.principal_paid = paid["principal"]
        inst.interest_paid = paid["interest"]
        inst.fee_paid = paid["fee"]
        inst.penalty_paid = paid["penalty"]
    Installment.objects.bulk_update(
        installments, ["principal_paid", "interest_paid", "fee_paid", "penalty_paid"], batch_size=500
    )
    # Allocation rows are the record of where each payment went: their history shows every replay
    # (the deletions above are historised by simple-history's delete signal, the new rows here).
    bulk_create_with_history(
        [
            Allocation(
                payment_id=line.payment_key,
                installment_id=line.installment_key,
                principal=line.principal,
                interest=line.interest,
                fee=line.fee,
                penalty=line.penalty,
            )
            for line in result.lines
        ],
        Allocation,
    )
    for payment in payments:
        payment.unapplied_amount = result.excess.get(payment.pk, ZERO)
    Payment.objects.bulk_update(payments, ["unapplied_amount"], batch_size=500)

    fully_paid = all(i.outstanding == 0 for i in installments)
    if fully_paid and loan.status == Loan.Status.ACTIVE:
        loan.status = Loan.Status.PAID_OFF
        loan.closed_on = max(p.value_date for p in payments)
        loan.save(update_fields=["status", "closed_on"])
    elif not fully_paid and loan.status == Loan.Status.PAID_OFF:
        loan.status = Loan.Status.ACTIVE  # a reversal reopened it
        loan.closed_on = None
        loan.save(update_fields=["status", "closed_on"])
    delinquency_refresh(as_of=as_of, loan_ids=[loan.pk])


# --- delinquency -----------------------------------------------------------------------------------

_DIALECT = {
    "postgresql": {
        "days": "(%(as_of)s::date - {col})",
        "greatest": "GREATEST",
        "least": "LEAST",
        "distinct": "IS DISTINCT FROM",
        "as_of_minus_grace": "(%(as_of)s::date - p.grace_days)",
        "ids": "= ANY(%(ids)s)",
    },
    "sqlite": {
        "days": "CAST(julianday(%(as_of)s) - julianday({col}) AS INTEGER)",
        "greatest": "MAX",
        "least": "MIN",
        "distinct": "IS NOT",
        "as_of_minus_grace": "date(%(as_of)s, '-' || p.grace_days || ' days')",
        "ids": "IN (SELECT value FROM json_each(%(ids)s))",
    },
}

_PENALTY_SQL = """
UPDATE loans_installment AS i
SET penalty_due = {greatest}(i.penalty_paid, ROUND(
        (i.principal_due - i.principal_paid)
        * {least}(p.penalty_rate, {greatest}(0, %(cap)s - l.annual_rate))
        * {days_i} / 365.0, 2))
FROM loans_loan AS l, loans_loanproduct AS p
WHERE i.loan_id = l.id AND p.id = l.product_id
  AND NOT i.superseded
  AND i.principal_paid < i.principal_due
  AND i.due_date < %(as_of)s  -- lets the partial index on unpaid rows range-scan
  AND i.due_date < {as_of_minus_grace}
  AND p.penalty_rate > 0
  AND l.status = 'active'
  {loan_filter_i}
  AND i.penalty_due {distinct} {greatest}(i.penalty_paid, ROUND(
        (i.principal_due - i.principal_paid)
        * {least}(p.penalty_rate, {greatest}(0, %(cap)s - l.annual_rate))
        * {days_i} / 365.0, 2))
"""

_LOAN_SQL = """
UPDATE loans_loan AS l
SET oldest_unpaid_due_date = a.oldest_unpaid,
    overdue_principal = a.overdue_principal,
    overdue_interest = a.overdue_interest,
    overdue_fee = a.overdue_fee,
    overdue_penalty = a.overdue_penalty,
    outstanding_principal = a.outstanding_principal,
    bucket = {bucket}
FROM (
    SELECT i.loan_id,
        MIN(i.due_date) FILTER (WHERE i.principal_paid + i.interest_paid + i.fee_paid + i.penalty_paid
                                      < i.principal_due + i.interest_due + i.fee_due + i.penalty_due)
            AS oldest_unpaid,
        -- ROUND keeps SQLite's REAL arithmetic on the cent; PostgreSQL's numeric is exact anyway.
        ROUND(COALESCE(SUM(i.principal_due - i.principal_paid) {late}, 0), 2) AS overdue_principal,
        ROUND(COALESCE(SUM(i.interest_due - i.interest_paid) {late}, 0), 2) AS overdue_interest,
        ROUND(COALESCE(SUM(i.fee_due - i.fee_paid) {late}, 0), 2) AS overdue_fee,
        ROUND(COALESCE(SUM(i.penalty_due - i.penalty_paid) {late}, 0), 2) AS overdue_penalty,
        ROUND(SUM(i.principal_due - i.principal_paid), 2) AS outstanding_principal
    FROM loans_installment AS i
    WHERE NOT i.superseded {loan_filter_i}
    GROUP BY i.loan_id
) AS a, loans_loanproduct AS p
WHERE l.id = a.loan_id AND p.id = l.product_id
  AND (l.oldest_unpaid_due_date {distinct} a.oldest_unpaid
       OR l.overdue_principal {distinct} a.overdue_principal
       OR l.overdue_interest {distinct} a.overdue_interest
       OR l.overdue_fee {distinct} a.overdue_fee
       OR l.overdue_penalty {distinct} a.overdue_penalty
       OR l.outstanding_principal {distinct} a.outstanding_principal
       OR l.bucket {distinct} {bucket})
"""

def _bucket_sql(dpd: str) -> str:
    """The bucket as a SQL CASE over days past due, built from the one ladder in loans.delinquency.

    Grace days delay the bucket, not the count.
    """
    (_, current), *ladder = BUCKET_FLOORS
    whens = [f"WHEN a.oldest_unpaid IS NULL OR {dpd} <= p.grace_days THEN '{current}'"]
    for (_, name), (next_floor, _) in zip(ladder, ladder[1:], strict=False):
        whens.append(f"WHEN {dpd} < {next_floor} THEN '{name}'")
    return "(CASE " + " ".join(whens) + f" ELSE '{ladder[-1][1]}' END)"


def _render(sql: str, vendor: str, *, filtered: bool) -> str:
    d = _DIALECT[vendor]
    return sql.format(
        greatest=d["greatest"],
        least=d["least"],
        distinct=d["distinct"],
        as_of_minus_grace=d["as_of_minus_grace"],
        days_i=d["days"].format(col="i.due_date"),
        bucket=_bucket_sql(d["days"].format(col="a.oldest_unpaid")),
        loan_filter_i=f"AND i.loan_id {d['ids']}" if filtered else "",
        late="FILTER (WHERE i.due_date < %(as_of)s)",
    )


@dataclass(frozen=True)
class RefreshResult:
    installments_repriced: int
    loans_changed: int


def delinquency_refresh(*, as_of: date, loan_ids: Iterable[int] | None = None) -> RefreshResult:
    """Recompute penalty interest and the delinquency state of some loans (or all) as of a date.

    Two set-based statements, no loop over loans: penalties on late installments are recomputed
    from the days overdue (never incremented, so a rerun is a no-op), then each loan's oldest unpaid
    due date, overdue amounts per component, outstanding principal and bucket come from one
    ``UPDATE ... FROM (SELECT ... GROUP BY loan_id)``. Only rows whose figures change are written.
    """
    vendor = connection.vendor
    if vendor not in _DIALECT:
        raise NotImplementedError(f"delinquency_refresh has no SQL for {vendor}")
    params: dict = {"as_of": as_of.isoformat(), "cap": settings.PENALTY_ANNUAL_COST_CAP}
    filtered = loan_ids is not None
    if filtered:
        ids = sorted({int(i) for i in loan_ids})
        if not ids:
            return RefreshResult(0, 0)
        if vendor == "postgresql":
            params["ids"] = ids
        else:
            import json

            params["ids"] = json.dumps(ids)
    if vendor == "sqlite":
        params["cap"] = float(params["cap"])  # SQLite has no decimal type; its figures are REAL anyway
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_render(_PENALTY_SQL, vendor, filtered=filtered), params)
        repriced = cursor.rowcount
        cursor.execute(_render(_LOAN_SQL, vendor, filtered=filtered), params)
        changed = cursor.rowcount
    return RefreshResult(installments_repriced=repriced, loans_changed=changed)
