"""The API's own writes: the loan book's services, each with its webhook event written to the outbox in
the same transaction (so an event is never sent for a payment that rolled back, nor lost for one that
committed: the dispatcher fans the outbox out to the subscriptions after commit)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from debt_collections.models import OutboxEvent
from loans import services as loan_services
from loans.batch import BatchOutcome, BatchPayment, payments_post_batch
from loans.models import Loan, Partner, Payment

PAYMENT_POSTED = "payment.posted"
PAYMENT_REVERSED = "payment.reversed"


def payment_payload(payment: Payment, loan: Loan) -> dict:
    """What a payment event tells the partner (amounts as two-decimal strings, as the API gives them)."""
    payload = {
        "payment": payment.pk,
        "external_ref": payment.external_ref,
        "loan": loan.pk,
        "loan_ref": loan.external_ref,
        "amount": f"{payment.amount:.2f}",
        "currency": payment.currency,
        "value_date": payment.value_date.isoformat(),
        "channel": payment.channel,
        "status": payment.status,
        "unapplied_amount": f"{payment.unapplied_amount:.2f}",
    }
    if payment.status == Payment.Status.REVERSED:
        payload["reversed_at"] = payment.reversed_at.isoformat()
        payload["reversal_reason"] = payment.reversal_reason
    return payload


def _event(event_type: str, payment: Payment, loan: Loan, now: datetime) -> OutboxEvent:
    return OutboxEvent(
        event_type=event_type,
        partner_id=loan.partner_id,
        subject_id=payment.pk,
        payload=payment_payload(payment, loan),
        created_at=now,
    )


@transaction.atomic
def payment_create(
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
    """Post a payment (``loans.services.payment_post``) and its ``payment.posted`` event."""
    payment = loan_services.payment_post(
        loan=loan, external_ref=external_ref, amount=amount, currency=currency, value_date=value_date,
        received_at=received_at, channel=channel, as_of=as_of,
    )  # fmt: skip
    _event(PAYMENT_POSTED, payment, loan, timezone.now()).save()
    return payment


@transaction.atomic
def payment_reversal(*, payment: Payment, reason: str, as_of: date | None = None) -> Payment:
    """Reverse a payment (``loans.services.payment_reverse``) and write its ``payment.reversed`` event."""
    payment = loan_services.payment_reverse(payment=payment, reason=reason, as_of=as_of)
    loan = Loan.objects.get(pk=payment.loan_id)
    _event(PAYMENT_REVERSED, payment, loan, timezone.now()).save()
    return payment


@dataclass(frozen=True)
class IngestItem:
    """One item of a batch as the API parsed it: the loan by id (``loan``) or reference (``loan_ref``)."""

    external_ref: str
    amount: object
    currency: str
    value_date: date
    loan: int | None = None
    loan_ref: str | None = None
    received_at: datetime | None = None
    channel: str = Payment.Channel.BANK_TRANSFER


@transaction.atomic
def payments_ingest(*, partner: Partner, items: Sequence[IngestItem], as_of: date | None = None) -> list:
    """Post a batch: the loans named by reference found (one query), the payments posted set-wise
    (``loans.batch.payments_post_batch``: each item accepted or refused on its own, the accepted ones
    in one transaction), and a ``payment.posted`` event for each accepted one (one insert).

    Returns a ``BatchOutcome`` per item, in order."""
    refs = {item.loan_ref for item in items if item.loan is None and item.loan_ref}
    loan_ids = dict(
        Loan.objects.filter(partner=partner, external_ref__in=refs).values_list("external_ref", "pk")
    )
    outcomes: list[BatchOutcome | None] = [None] * len(items)
    batch, positions = [], []
    for position, item in enumerate(items):
        loan_id = item.loan if item.loan is not None else loan_ids.get(item.loan_ref)
        if loan_id is None:
            outcomes[position] = BatchOutcome(errors={"loan_ref": [_("No such loan.")]})
            continue
        batch.append(
            BatchPayment(
                loan_id=loan_id,
                external_ref=item.external_ref,
                amount=item.amount,
                currency=item.currency,
                value_date=item.value_date,
                received_at=item.received_at,
                channel=item.channel,
            )  # fmt: skip
        )
        positions.append(position)
    posted = payments_post_batch(partner=partner, items=batch, as_of=as_of or timezone.localdate())
    for position, outcome in zip(positions, posted, strict=True):
        outcomes[position] = outcome
    now = timezone.now()
    OutboxEvent.objects.bulk_create(
        [_event(PAYMENT_POSTED, o.payment, o.payment.loan, now) for o in posted if o.accepted],
        batch_size=1000,
    )
    return outcomes


__all__ = ["IngestItem", "payment_create", "payment_payload", "payment_reversal", "payments_ingest"]
