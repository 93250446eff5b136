"""Batch posting gives what posting the same payments one by one gives.

Two partners hold identical loans; one gets the payments through ``payment_post`` one at a time,
the other through ``payments_post_batch`` at once, and their books must then be the same, item
outcome by item outcome, row by row.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal as D

import pytest
from django.db import transaction
from django.utils import translation
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loans import services
from loans.batch import BatchPayment, payments_post_batch
from loans.exceptions import ValidationError
from loans.models import Allocation, Installment, Loan, Payment
from loans.schedules import ExplicitInstallment
from tests.factories import BorrowerFactory, LoanProductFactory, PartnerFactory

pytestmark = pytest.mark.django_db

FEB, MAR, APR, MAY = date(2025, 2, 1), date(2025, 3, 1), date(2025, 4, 1), date(2025, 5, 1)
AS_OF = date(2025, 6, 15)
RECEIVED = datetime(2025, 6, 15, 9, 30, tzinfo=UTC)
_partners = iter(range(10**6))


def three_installments(borrower, product, ref):
    """900.00 in three installments of 300 principal + 30 interest, due Feb, Mar and Apr 1."""
    schedule = [
        ExplicitInstallment(due_date=d, principal=D("300.00"), interest=D("30.00")) for d in (FEB, MAR, APR)
    ]
    return services.loan_create(
        partner=borrower.partner, borrower=borrower, product=product, external_ref=ref, principal="900.00",
        annual_rate="0.12", term=3, start_date=date(2025, 1, 1), first_due_date=FEB, schedule=schedule,
    )  # fmt: skip


def twin_books(products):
    """Two partners with the same loans (refs L0, L1, ...: one per product), penalties priced as of
    AS_OF. Returns ``(partner, {ref: loan})`` for each."""
    books = []
    for _twin in range(2):
        partner = PartnerFactory(code=f"twin-{next(_partners)}")
        borrower = BorrowerFactory(partner=partner)
        loans = {}
        for n, product in enumerate(products):
            loans[f"L{n}"] = three_installments(borrower, product, f"L{n}")
        services.delinquency_refresh(as_of=AS_OF, loan_ids=[loan.pk for loan in loans.values()])
        books.append((partner, loans))
    return books


def as_items(specs, loans, other_loan=None):
    """Specs ``(loan ref, payment ref, amount, value_date, **changes)`` as batch items of a book."""
    items = []
    for loan_ref, ref, amount, value_date, *changes in specs:
        loan_id = other_loan.pk if loan_ref == "OTHER" else loans[loan_ref].pk
        fields = dict(
            loan_id=loan_id, external_ref=ref, amount=amount, currency="CNY", value_date=value_date,
            received_at=RECEIVED,
        )  # fmt: skip
        for change in changes:
            fields.update(change)
        items.append(BatchPayment(**fields))
    return items


def one_by_one(partner, items):
    """What ``payment_post`` says to each item in turn: the payment's reference, or the errors."""
    said = []
    for item in items:
        loan = Loan.objects.filter(partner=partner, pk=item.loan_id).first()
        if loan is None:
            said.append({"loan": ["No such loan."]})
            continue
        try:
            with transaction.atomic():
                payment = services.payment_post(
                    loan=loan, external_ref=item.external_ref, amount=item.amount, currency=item.currency,
                    value_date=item.value_date, received_at=item.received_at, channel=item.channel,
                    as_of=AS_OF,
                )  # fmt: skip
            said.append(payment.external_ref)
        except ValidationError as exc:
            said.append(exc.message_dict)
    return said


def in_batch(partner, items):
    outcomes = payments_post_batch(partner=partner, items=items, as_of=AS_OF)
    return [o.payment.external_ref if o.accepted else o.errors for o in outcomes]


def book(partner):
    """Everything a partner's payments touch, keyed by references (ids differ between the twins)."""
    loans = {
        loan.external_ref: (
            loan.status,
            loan.closed_on,
            loan.oldest_unpaid_due_date,
            loan.overdue_principal,
            loan.overdue_interest,
            loan.overdue_fee,
            loan.overdue_penalty,
            loan.outstanding_principal,
            loan.bucket,
        )  # fmt: skip
        for loan in Loan.objects.filter(partner=partner)
    }
    installments = sorted(
        (
            i.loan.external_ref,
            i.number,
            i.penalty_due,
            i.principal_paid,
            i.interest_paid,
            i.fee_paid,
            i.penalty_paid,
        )
        for i in Installment.objects.filter(loan__partner=partner, superseded=False).select_related("loan")
    )
    payments = sorted(
        (
            p.external_ref,
            p.loan.external_ref,
            p.amount,
            p.value_date,
            p.received_at,
            p.channel,
            p.status,
            p.unapplied_amount,
        )  # fmt: skip
        for p in Payment.objects.filter(partner=partner).select_related("loan")
    )
    allocations = sorted(
        (a.payment.external_ref, a.installment.number, a.principal, a.interest, a.fee, a.penalty)
        for a in Allocation.objects.filter(payment__partner=partner).select_related("payment", "installment")
    )
    return loans, installments, payments, allocations


def assert_same(products, specs, *, other=False):
    (single, single_loans), (batch, batch_loans) = twin_books(products)
    other_loan = three_installments(BorrowerFactory(), products[0], "THEIRS") if other else None
    expected = one_by_one(single, as_items(specs, single_loans, other_loan))
    got = in_batch(batch, as_items(specs, batch_loans, other_loan))
    assert got == expected
    assert book(batch) == book(single)
    return got


@pytest.fixture(autouse=True)
def english():
    with translation.override("en"):
        yield


@pytest.fixture
def plain():
    return LoanProductFactory(penalty_rate=D("0"))


@pytest.fixture
def penalised():
    """Penalty interest after 3 days' grace; the waterfall pays principal first, so a payment lowers
    the penalty the next one meets (only a refresh between the two shows it)."""
    return LoanProductFactory(
        penalty_rate=D("0.10"), grace_days=3, allocation_order="principal,interest,fee,penalty"
    )


class TestSameAsOneByOne:
    def test_one_payment_per_loan(self, plain, penalised):
        got = assert_same(
            [plain, penalised, plain],
            [("L0", "P1", "330.00", FEB), ("L1", "P2", "100.00", MAR), ("L2", "P3", "1.00", AS_OF)],
        )
        assert got == ["P1", "P2", "P3"]

    def test_back_dated_and_several_payments_on_one_loan(self, plain, penalised):
        specs = [
            ("L0", "A", "330.00", FEB),
            ("L1", "B", "200.00", date(2025, 3, 20)),
            ("L0", "C", "200.00", date(2025, 3, 20)),
            ("L1", "D", "100.00", MAR),  # back-dated before B: the loan is replayed
            ("L0", "E", "100.00", MAR),
            ("L1", "F", "50.00", FEB),
        ]
        assert assert_same([plain, penalised], specs) == ["A", "B", "C", "D", "E", "F"]

    def test_penalty_moves_between_two_payments_of_one_loan(self, penalised):
        specs = [("L0", "A", "400.00", MAR), ("L0", "B", "50.00", APR)]
        assert assert_same([penalised], specs) == ["A", "B"]
        assert Installment.objects.filter(penalty_due__gt=0).exists()

    def test_overpayment_pays_off_the_loan_and_later_items_are_refused(self, plain, penalised):
        specs = [
            ("L0", "A", "1000.00", APR),  # 990.00 clears the schedule; 10.00 unapplied
            ("L1", "B", "2000.00", MAR),
            ("L0", "C", "5.00", APR),  # the loan is paid off by now
            ("L0", "D", "5.00", APR, {"currency": "USD"}),  # its status is the first thing said
            ("L1", "E", "1.00", MAY),
        ]
        got = assert_same([plain, penalised], specs)
        assert got[:2] == ["A", "B"]
        assert got[2] == {"loan": ["Loan L0 is paid_off; it takes no payments."]}
        assert got[3] == {"loan": ["Loan L0 is paid_off; it takes no payments."]}

    def test_bad_items_are_refused_with_payment_posts_messages(self, plain):
        specs = [
            ("L0", "A", "-5.00", FEB),
            ("L0", "B", "0", FEB),
            ("L0", "C", "1.001", FEB),
            ("L0", "D", "10.00", FEB, {"currency": "USD"}),
            ("L0", "E", "10.00", date(2024, 1, 1)),
            ("L0", "F", "10.00", FEB, {"channel": "pigeon"}),
            ("L0", "  ", "10.00", FEB),
            ("L0", "G", "10.00", FEB),
            ("OTHER", "H", "10.00", FEB),  # another partner's loan
        ]
        got = assert_same([plain], specs, other=True)
        assert [sorted(g) if isinstance(g, dict) else g for g in got] == [
            ["amount"], ["amount"], ["amount"], ["currency"], ["value_date"], ["channel"], ["external_ref"],
            "G", ["loan"],
        ]  # fmt: skip

    def test_duplicate_references_in_the_batch_and_in_the_book(self, plain):
        (single, single_loans), (batch, batch_loans) = twin_books([plain, plain])
        for _partner, loans in ((single, single_loans), (batch, batch_loans)):
            services.payment_post(
                loan=loans["L1"],
                external_ref="OLD",
                amount="1.00",
                currency="CNY",
                value_date=FEB,
                received_at=RECEIVED,
                as_of=AS_OF,
            )
        specs = [
            ("L0", "X", "10.00", FEB, {"currency": "USD"}),  # refused: X is still free
            ("L0", "X", "20.00", FEB),  # posted
            ("L1", "X", "30.00", FEB),  # duplicate of the one just posted
            ("L1", "OLD", "40.00", FEB),  # duplicate of one in the book
            ("L1", " Y ", "50.00", FEB),
            ("L0", "Y", "60.00", FEB),  # the same reference once stripped
        ]
        expected = one_by_one(single, as_items(specs, single_loans))
        got = in_batch(batch, as_items(specs, batch_loans))
        assert got == expected
        assert got[1] == "X" and got[4] == "Y"
        assert (
            got[2]
            == got[3]
            == got[5]
            == {"external_ref": ["This partner already has a payment with this reference."]}
        )
        assert book(batch) == book(single)


class TestBatch:
    def test_an_empty_batch_posts_nothing(self):
        assert payments_post_batch(partner=PartnerFactory(), items=[], as_of=AS_OF) == []

    def test_history_rows_as_payment_post_writes_them(self, plain):
        (single, single_loans), (batch, batch_loans) = twin_books([plain])
        specs = [("L0", "A", "330.00", MAR), ("L0", "B", "100.00", FEB)]  # B is back-dated: A's rows move
        one_by_one(single, as_items(specs, single_loans))
        in_batch(batch, as_items(specs, batch_loans))

        def history(partner):
            return (
                sorted(Payment.history.filter(partner=partner).values_list("external_ref", "history_type")),
                sorted(
                    Allocation.history.filter(payment__partner=partner).values_list(
                        "payment__external_ref",
                        "installment__number",
                        "principal",
                        "interest",
                        "history_type",
                    )
                ),
            )

        assert history(batch) == history(single)
        assert ("A", 1, D("300.00"), D("30.00"), "-") in history(batch)[1]

    def test_paid_off_loan_has_its_history_row(self, plain):
        (_single, _loans), (batch, loans) = twin_books([plain])
        in_batch(batch, as_items([("L0", "A", "990.00", MAR)], loans))
        loan = Loan.objects.get(pk=loans["L0"].pk)
        assert loan.status == Loan.Status.PAID_OFF and loan.closed_on == MAR
        assert loan.history.first().status == Loan.Status.PAID_OFF

    def test_outcome_is_the_payment_after_the_batch(self, plain):
        (_single, _loans), (batch, loans) = twin_books([plain])
        outcomes = payments_post_batch(
            partner=batch, items=as_items([("L0", "A", "1000.00", FEB)], loans), as_of=AS_OF
        )
        assert outcomes[0].accepted and outcomes[0].payment.unapplied_amount == D("40.00")
        assert outcomes[0].payment.loan.external_ref == "L0"


# --- property: any batch, both ways ------------------------------------------------------------------

amounts = st.integers(min_value=-100, max_value=120_000).map(lambda cents: f"{D(cents) / 100:.2f}")
days = st.integers(min_value=-40, max_value=170).map(lambda n: date(2025, 1, 1) + timedelta(days=n))
specs = st.lists(
    st.tuples(
        st.sampled_from(["L0", "L1", "L2"]),
        st.sampled_from(["R1", "R2", "R3", "R4", "R5", "R6"]),
        amounts,
        days,
    ),
    max_size=12,
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(specs=specs)
def test_any_batch_gives_what_one_by_one_gives(specs, plain, penalised):
    assert_same([plain, penalised, penalised], specs)
