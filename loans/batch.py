"""Set-based posting of many payments at once: the partner API's batch ingestion.

``payment_post`` replays one loan with about ten queries; a file of 1,000 payments posted that way
is 10,000 queries. Here the whole batch costs a handful of statements per *round*, whatever its
size: the loans locked in one query (``SELECT ... FOR UPDATE`` in id order, so two batches cannot
deadlock), the payments inserted in one statement, the installments, posted payments and
allocation rows of those loans read in one query each, the allocation replayed per loan in Python
(``loans.services.loan_replay_changes``, the code ``loan_replay`` runs), and the results written
in bulk (``UPDATE ... FROM (VALUES ...)`` on PostgreSQL), then one delinquency refresh.

The outcome is what posting the same payments one by one with ``payment_post``, in the batch's
order, gives: the same payments accepted, the same refused with the same message, the same
allocations, paid amounts, unapplied amounts, loan statuses and delinquency figures. Two things
make that hold:

* A round posts at most one payment per loan; round *r* posts each loan's *r*-th. Between rounds
  the refresh reprices penalty interest, which the next payment's allocation reads, and a loan
  that a payment paid off refuses its later items ("Loan ... is paid_off"), as ``payment_post``
  would. A batch of one payment per loan (a day's file) is a single round.
* An item is decided only once every earlier item it depends on is: the earlier items of its
  loan (the loan's status) and the earlier items with the same reference (the first one posted
  wins). Every check is ``payment_post``'s, in its order, with its messages.

Duplicates never abort the batch: references already in the book are read in one query, and a
concurrent insert of the same reference (the race between that read and the insert) is skipped by
``ON CONFLICT DO NOTHING`` and refused like any other duplicate.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from loans.exceptions import ValidationError, field_error
from loans.models import Allocation, Installment, Loan, LoanProduct, Partner, Payment
from loans.refresh import delinquency_refresh
from loans.services import (
    _DUPLICATE_REF,
    PAID_FIELDS,
    _money,
    _require,
    allocation_changes,
    loan_replay_changes,
)

# Rows per INSERT / UPDATE statement (PostgreSQL takes up to 65,535 parameters a statement).
CHUNK = 1000

_INSERTED = ("partner", "loan", "external_ref", "amount", "currency", "value_date", "received_at",
             "channel", "status", "reversal_reason", "unapplied_amount", "created_at")  # fmt: skip


@dataclass(frozen=True)
class BatchPayment:
    """One payment of a batch, as ``payment_post`` takes it (``loan_id``: a loan of the partner)."""

    loan_id: int
    external_ref: str
    amount: object  # a Decimal, or a string of digits
    currency: str
    value_date: date
    received_at: datetime | None = None
    channel: str = Payment.Channel.BANK_TRANSFER


@dataclass
class BatchOutcome:
    """An item's fate: the payment posted (its state after the batch), or the errors by field."""

    payment: Payment | None = None
    errors: dict[str, list[str]] | None = None

    @property
    def accepted(self) -> bool:
        return self.payment is not None

    @property
    def decided(self) -> bool:
        return self.payment is not None or self.errors is not None


@dataclass
class _Item:
    index: int
    loan: Loan
    external_ref: str = ""
    ref_error: ValidationError | None = None  # payment_post's first check, before the loan's status
    other_error: ValidationError | None = None  # its later checks (currency, amount, date, channel)
    payment: Payment | None = None
    earlier_same_ref: list[int] = field(default_factory=list)


def payments_post_batch(
    *,
    partner: Partner,
    items: Sequence[BatchPayment],
    as_of: date,
    received_at: datetime | None = None,
) -> list[BatchOutcome]:
    """Post ``items`` for ``partner``; one outcome per item, in order. Atomic: the accepted payments
    are posted together or not at all. ``as_of`` is the business date of the delinquency refresh;
    ``received_at`` (default: now) stamps the items that do not say when the money came."""
    outcomes = [BatchOutcome() for _item in items]
    received_at = received_at or timezone.now()
    with transaction.atomic():
        loans = {
            loan.pk: loan
            for loan in Loan.objects.select_for_update()
            .filter(partner=partner, pk__in={item.loan_id for item in items})
            .order_by("pk")
        }
        products = LoanProduct.objects.in_bulk({loan.product_id for loan in loans.values()})
        for loan in loans.values():
            loan.product = products[loan.product_id]  # a handful of products for a thousand loans
        queues: dict[int, deque[_Item]] = defaultdict(deque)
        by_ref: dict[str, list[int]] = defaultdict(list)
        for index, item in enumerate(items):
            loan = loans.get(item.loan_id)
            if loan is None:
                outcomes[index].errors = {"loan": [_("No such loan.")]}
                continue
            checked = _check(index, item, loan, partner, received_at)
            if checked.ref_error is None:
                checked.earlier_same_ref = list(by_ref[checked.external_ref])
                by_ref[checked.external_ref].append(index)
            queues[loan.pk].append(checked)
        in_book = set(
            Payment.objects.filter(partner=partner, external_ref__in=list(by_ref)).values_list(
                "external_ref", flat=True
            )
        )
        posted: dict[int, Payment] = {}
        while queues:
            posting = []
            for loan_id in list(queues):
                queue = queues[loan_id]
                while queue:
                    verdict = _decide(queue[0], outcomes, in_book)
                    if verdict == "wait":
                        break
                    item = queue.popleft()
                    if verdict == "post":
                        posting.append(item)
                        break
                    outcomes[item.index].errors = verdict
                if not queue:
                    del queues[loan_id]
            if posting:
                _post_round(posting, outcomes, posted, as_of=as_of)
        for payment in posted.values():
            payment.loan = loans[payment.loan_id]
    return outcomes


def _check(index: int, item: BatchPayment, loan: Loan, partner: Partner, received_at: datetime) -> _Item:
    """``payment_post``'s checks that do not depend on the other items, in its order."""
    checked = _Item(index=index, loan=loan)
    try:
        checked.external_ref = _require(item.external_ref, "external_ref", 100)
    except ValidationError as exc:
        checked.ref_error = exc
        return checked
    try:
        if item.currency != loan.currency:
            raise field_error(
                "currency",
                _("The loan is in %(loan)s, not %(given)s.")
                % {"loan": loan.currency, "given": item.currency},
            )
        amount = _money(item.amount, "amount", item.currency)
        if amount <= 0:
            raise field_error("amount", _("The amount must be greater than zero."), code="min_value")
        if item.value_date < loan.start_date:
            raise field_error("value_date", _("The value date is before the loan was disbursed."))
        if item.channel not in Payment.Channel.values:
            raise field_error("channel", _("Unknown payment channel %(c)r.") % {"c": item.channel})
    except ValidationError as exc:
        checked.other_error = exc
        return checked
    checked.payment = Payment(
        partner_id=partner.pk,
        loan_id=loan.pk,
        external_ref=checked.external_ref,
        amount=amount,
        currency=item.currency,
        value_date=item.value_date,
        received_at=item.received_at or received_at,
        channel=item.channel,
    )
    return checked


def _decide(item: _Item, outcomes: list[BatchOutcome], in_book: set[str]):
    """``"post"``, ``"wait"`` (an earlier item with its reference is undecided), or its errors."""
    if item.ref_error is not None:
        return item.ref_error.message_dict
    loan = item.loan
    if loan.status != Loan.Status.ACTIVE:
        return {
            "loan": [
                _("Loan %(ref)s is %(status)s; it takes no payments.") % {"ref": loan, "status": loan.status}
            ]
        }
    if item.other_error is not None:
        return item.other_error.message_dict
    earlier = [outcomes[i] for i in item.earlier_same_ref]
    if item.external_ref in in_book or any(o.accepted for o in earlier):
        return {"external_ref": [str(_DUPLICATE_REF["Payment"])]}
    if not all(o.decided for o in earlier):
        return "wait"
    return "post"


def _post_round(
    items: list[_Item], outcomes: list[BatchOutcome], posted: dict[int, Payment], *, as_of: date
) -> None:
    """Insert one payment per loan, replay those loans, write what changed, refresh them. ``posted``:
    the batch's payments so far (kept as the database has them, ``unapplied_amount`` included)."""
    now = timezone.now()
    inserted = _insert_payments([item.payment for item in items], now)
    loans = {}
    for item in items:
        if item.payment.pk is None:  # a concurrent request posted this reference first
            outcomes[item.index].errors = {"external_ref": [str(_DUPLICATE_REF["Payment"])]}
        else:
            outcomes[item.index].payment = item.payment
            loans[item.loan.pk] = item.loan
    if not inserted:
        return
    user_id = _history_user_id()
    # The created row's history, as payment_post's save() records it.
    _write_history(Payment, [p.pk for p in inserted], "+", now, user_id)

    ids = list(loans)
    installments, payments, existing = defaultdict(list), defaultdict(list), defaultdict(list)
    for row in Installment.objects.filter(loan_id__in=ids, superseded=False).values_list(
        *_InstallmentRow.__slots__
    ):
        installments[row[1]].append(_InstallmentRow(row))
    for row in Payment.objects.filter(loan_id__in=ids, status=Payment.Status.POSTED).values_list(
        *_PaymentRow.__slots__
    ):
        payments[row[1]].append(_PaymentRow(row))
    for row in Allocation.objects.filter(installment__loan_id__in=ids).values_list(*_AllocationRow.COLUMNS):
        existing[row[1]].append(_AllocationRow(row))

    stale, new, changed_installments, changed_payments, changed_loans = [], [], [], [], []
    for loan_id, loan in loans.items():
        changes = loan_replay_changes(
            loan=loan, installments=installments[loan_id], payments=payments[loan_id]
        )
        gone, added = allocation_changes(existing=existing[loan_id], lines=changes.lines)
        stale += gone
        new += added
        changed_installments += changes.installments
        changed_payments += changes.payments
        if changes.status_changed:
            changed_loans.append(loan)

    if stale:
        ids_gone = [row.pk for row in stale]
        _write_history(Allocation, ids_gone, "-", now, user_id)
        _delete(Allocation, ids_gone)
    if new:
        allocation_ids = _insert(Allocation, _ALLOCATION_FIELDS, new)
        _write_history(Allocation, allocation_ids, "+", now, user_id)
    _bulk_set(Installment, changed_installments, PAID_FIELDS)
    _bulk_set(Payment, changed_payments, ("unapplied_amount",))
    posted.update((p.pk, p) for p in inserted)
    for row in changed_payments:
        if row.pk in posted:
            posted[row.pk].unapplied_amount = row.unapplied_amount
    if changed_loans:
        Loan.objects.bulk_update(changed_loans, ["status", "closed_on"])
        Loan.history.bulk_history_create(changed_loans, update=True)
    delinquency_refresh(as_of=as_of, loan_ids=ids)


# --- rows and statements ---------------------------------------------------------------------------
# A batch reads some twelve thousand installments; Django model instances of them cost ten times what
# these plain rows do. ``loan_replay_changes`` reads and sets the same attributes on either.


class _InstallmentRow:
    __slots__ = ("pk", "loan_id", "number", "due_date", "principal_due", "interest_due", "fee_due",
                 "penalty_due", "principal_paid", "interest_paid", "fee_paid", "penalty_paid")  # fmt: skip

    def __init__(self, values):
        (self.pk, self.loan_id, self.number, self.due_date, self.principal_due, self.interest_due,
         self.fee_due, self.penalty_due, self.principal_paid, self.interest_paid, self.fee_paid,
         self.penalty_paid) = values  # fmt: skip

    @property
    def outstanding(self):
        due = self.principal_due + self.interest_due + self.fee_due + self.penalty_due
        return due - (self.principal_paid + self.interest_paid + self.fee_paid + self.penalty_paid)


class _PaymentRow:
    __slots__ = ("pk", "loan_id", "value_date", "amount", "unapplied_amount")

    def __init__(self, values):
        self.pk, self.loan_id, self.value_date, self.amount, self.unapplied_amount = values


class _AllocationRow:
    __slots__ = ("pk", "loan_id", "payment_id", "installment_id", "principal", "interest", "fee", "penalty")
    COLUMNS = ("pk", "installment__loan_id", "payment_id", "installment_id", "principal", "interest", "fee",
               "penalty")  # fmt: skip

    def __init__(self, values):
        (self.pk, self.loan_id, self.payment_id, self.installment_id, self.principal, self.interest, self.fee,
         self.penalty) = values  # fmt: skip


_ALLOCATION_FIELDS = ("payment", "installment", "principal", "interest", "fee", "penalty")


def _chunks(rows: list, size: int = CHUNK):
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def _preparer(fields):
    """How to pass the fields' values to the driver: psycopg2 adapts Python values itself; SQLite
    stores what Django's field makes of them (datetimes as UTC text, decimals as text)."""
    if connection.vendor == "postgresql":
        return lambda obj: [getattr(obj, f.attname) for f in fields]
    return lambda obj: [f.get_db_prep_save(getattr(obj, f.attname), connection) for f in fields]


def _placeholders(count: int) -> str:
    return ", ".join(["%s"] * count)


def _insert(model, names: Sequence[str], objs: list, *, suffix: str = "", returning: str = "id") -> list:
    """``INSERT ... VALUES ... [suffix] RETURNING {returning}`` a thousand rows a statement; the rows
    returned."""
    fields = [model._meta.get_field(name) for name in names]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(f.column) for f in fields)
    one_row = f"({_placeholders(len(fields))})"
    returned = []
    prepare = _preparer(fields)
    for chunk in _chunks(objs):
        params = [value for obj in chunk for value in prepare(obj)]
        sql = (
            f"INSERT INTO {quote(model._meta.db_table)} ({columns}) "  # noqa: S608 - names from the model
            f"VALUES {', '.join([one_row] * len(chunk))} {suffix} RETURNING {returning}"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        returned += [row[0] for row in rows] if returning == "id" else rows
    return returned


def _insert_payments(payments: list[Payment], now: datetime) -> list[Payment]:
    """Insert the payments, skipping any whose reference the partner has by now; sets ``pk`` on
    those inserted and returns them."""
    by_ref = {p.external_ref: p for p in payments}
    for payment in payments:
        payment.created_at = now
    rows = _insert(
        Payment, _INSERTED, payments,
        suffix="ON CONFLICT (partner_id, external_ref) DO NOTHING", returning="id, external_ref",
    )  # fmt: skip
    inserted = []
    for pk, ref in rows:
        by_ref[ref].pk = pk
        by_ref[ref]._state.adding = False
        inserted.append(by_ref[ref])
    return inserted


def _bulk_set(model, rows: list, fields: Sequence[str]) -> None:
    """Write ``fields`` of ``rows`` (anything with ``pk`` and those attributes): on PostgreSQL
    ``UPDATE ... FROM (VALUES ...)``, one statement a thousand rows; on SQLite (development) one
    ``UPDATE`` a row."""
    if not rows:
        return
    opts = model._meta
    model_fields = [opts.get_field(name) for name in fields]
    quote = connection.ops.quote_name
    table = quote(opts.db_table)
    if connection.vendor != "postgresql":
        sets = ", ".join(f"{quote(f.column)} = %s" for f in model_fields)
        prepare = _preparer(model_fields)
        params = [[*prepare(row), row.pk] for row in rows]
        with connection.cursor() as cursor:
            cursor.executemany(f"UPDATE {table} SET {sets} WHERE id = %s", params)  # noqa: S608
        return
    assignments = ", ".join(f"{quote(f.column)} = v.{quote(f.column)}" for f in model_fields)
    casts = ", ".join(f"CAST(%s AS {f.db_type(connection)})" for f in model_fields)
    names = ", ".join(quote(f.column) for f in model_fields)
    for chunk in _chunks(rows):
        values = ", ".join([f"(CAST(%s AS bigint), {casts})"] * len(chunk))
        params = [
            value for row in chunk for value in (row.pk, *(getattr(row, f.attname) for f in model_fields))
        ]
        sql = (
            f"UPDATE {table} AS t SET {assignments} "  # noqa: S608 - names from the model
            f"FROM (VALUES {values}) AS v(id, {names}) WHERE t.id = v.id"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, params)


def _delete(model, ids: list[int]) -> None:
    table = connection.ops.quote_name(model._meta.db_table)
    for chunk in _chunks(ids):
        with connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {table} WHERE id IN ({_placeholders(len(chunk))})", chunk)  # noqa: S608


def _history_user_id() -> int | None:
    """Who simple-history names for changes made in this request (the partner's service user)."""
    user = Payment.history.model.get_default_history_user(Payment())
    return getattr(user, "pk", None)


def _write_history(model, ids: list[int], history_type: str, now: datetime, user_id: int | None) -> None:
    """The rows' simple-history records (``+`` created, ``-`` deleted), copied from the table in one
    ``INSERT ... SELECT`` a thousand rows: what simple-history writes, without building each row."""
    history = model.history.model
    quote = connection.ops.quote_name
    tracked = ", ".join(quote(f.column) for f in history.tracked_fields)
    when = (
        now
        if connection.vendor == "postgresql"
        else history._meta.get_field("history_date").get_db_prep_save(now, connection)
    )
    extra = ", ".join(
        quote(history._meta.get_field(name).column)
        for name in ("history_date", "history_type", "history_user", "history_change_reason")
    )
    for chunk in _chunks(ids):
        sql = (
            f"INSERT INTO {quote(history._meta.db_table)} ({tracked}, {extra}) "  # noqa: S608
            f"SELECT {tracked}, %s, %s, %s, NULL FROM {quote(model._meta.db_table)} "
            f"WHERE id IN ({_placeholders(len(chunk))})"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [when, history_type, user_id, *chunk])


__all__ = ["BatchOutcome", "BatchPayment", "payments_post_batch"]
