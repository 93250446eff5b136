"""The database states the book's invariants itself: writes that bypass the services still fail."""

import threading
from datetime import date
from decimal import Decimal as D

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import F

from loans import services
from loans.models import Installment, Loan, Payment
from tests.factories import BorrowerFactory, LoanProductFactory, make_loan, pay

pytestmark = pytest.mark.django_db


def violates(fn):
    with pytest.raises(IntegrityError), transaction.atomic():
        fn()


def test_paid_never_above_due():
    loan = make_loan()
    for column in ("principal", "interest", "fee", "penalty"):
        violates(
            lambda c=column: Installment.objects.filter(loan=loan, number=1).update(
                **{f"{c}_paid": F(f"{c}_due") + D("0.01")}
            )
        )


def test_amounts_never_negative():
    loan = make_loan()
    violates(lambda: Installment.objects.filter(loan=loan, number=1).update(interest_due=D("-1")))
    violates(lambda: Loan.objects.filter(pk=loan.pk).update(principal=D("0")))
    violates(lambda: Loan.objects.filter(pk=loan.pk).update(overdue_principal=D("-0.01")))
    violates(lambda: Loan.objects.filter(pk=loan.pk).update(outstanding_principal=F("principal") + 1))


def test_payment_amount_positive_and_reversal_recorded():
    loan = make_loan()
    payment = pay(loan, "100.00", date(2025, 2, 1))
    violates(lambda: Payment.objects.filter(pk=payment.pk).update(amount=D("0")))
    violates(lambda: Payment.objects.filter(pk=payment.pk).update(status="reversed"))  # no date, no reason
    violates(lambda: Payment.objects.filter(pk=payment.pk).update(unapplied_amount=D("100.01")))


def test_external_refs_unique_per_partner():
    loan = make_loan(external_ref="L-1")
    violates(
        lambda: Loan.objects.create(
            partner=loan.partner,
            borrower=loan.borrower,
            product=loan.product,
            external_ref="L-1",
            currency="CNY",
            principal=D("1000"),
            annual_rate=D("0.1"),
            term=1,
            start_date=date(2025, 1, 1),
            first_due_date=date(2025, 2, 1),
        )
    )


def test_one_current_row_per_installment_number():
    loan = make_loan()
    first = loan.installments.get(number=1)
    violates(
        lambda: Installment.objects.create(loan=loan, schedule_version=2, number=1, due_date=first.due_date)
    )


def test_current_rows_of_two_schedule_versions_are_refused(on_postgres):
    loan = make_loan(term=3)
    loan.installments.filter(number=3).update(superseded=True)
    # Number 3 is free now, but a current v2 row beside current v1 rows is still not one schedule.
    violates(
        lambda: Installment.objects.create(loan=loan, schedule_version=2, number=3, due_date=date(2025, 4, 1))
    )


def test_money_records_are_protected():
    loan = make_loan()
    pay(loan, "100.00", date(2025, 2, 1))
    violates(lambda: Loan.objects.filter(pk=loan.pk).delete())


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_payments_with_one_reference_post_once(on_postgres):
    """Two processors posting the same payment reference at once: exactly one payment exists after."""
    borrower, product = BorrowerFactory(), LoanProductFactory()
    loan = services.loan_create(
        partner=borrower.partner,
        borrower=borrower,
        product=product,
        external_ref="RACE",
        principal="1200.00",
        annual_rate="0.12",
        term=12,
        start_date=date(2025, 1, 1),
        first_due_date=date(2025, 2, 1),
    )
    barrier = threading.Barrier(2)
    outcomes = []

    def post():
        try:
            barrier.wait()
            services.payment_post(
                loan=loan,
                external_ref="SAME",
                amount="50.00",
                currency="CNY",
                value_date=date(2025, 2, 1),
                as_of=date(2025, 2, 1),
            )
            outcomes.append("posted")
        except ValidationError as exc:
            outcomes.append(next(iter(exc.message_dict)))
        finally:
            connection.close()

    threads = [threading.Thread(target=post) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["external_ref", "posted"]
    assert Payment.objects.filter(external_ref="SAME").count() == 1
    assert sum(i.total_paid for i in Installment.objects.filter(loan=loan)) == D("50.00")


def test_records_stay_with_one_partner(on_postgres):
    """A loan cannot point at another partner's borrower, nor a payment at another partner's loan."""
    loan = make_loan()
    payment = pay(loan, "10.00", date(2025, 2, 1))
    other = BorrowerFactory()
    violates(lambda: Loan.objects.filter(pk=loan.pk).update(borrower=other))
    violates(lambda: Payment.objects.filter(pk=payment.pk).update(partner=other.partner))
