"""The loan book's services, as a partner or a collector would notice them."""

from datetime import UTC, date, datetime
from decimal import Decimal as D

import pytest
from django.core.exceptions import ValidationError

from loans import services
from loans.models import Allocation, Borrower, Installment, Loan, Payment
from loans.schedules import ExplicitInstallment
from tests.factories import BorrowerFactory, LoanProductFactory, make_loan, pay

pytestmark = pytest.mark.django_db

FEB, MAR, APR = date(2025, 2, 1), date(2025, 3, 1), date(2025, 4, 1)


def three_installments(**kwargs):
    """900.00 in three installments of 300 principal + 30 interest, due Feb, Mar and Apr 1."""
    schedule = [
        ExplicitInstallment(due_date=d, principal=D("300.00"), interest=D("30.00")) for d in (FEB, MAR, APR)
    ]
    return make_loan(principal="900.00", term=3, first_due_date=FEB, schedule=schedule, **kwargs)


def lines(loan):
    return sorted(
        (a.payment.external_ref, a.installment.number, a.principal, a.interest, a.fee, a.penalty)
        for a in Allocation.objects.filter(installment__loan=loan).select_related("payment", "installment")
    )


def paid(loan):
    return [
        (i.number, i.principal_paid, i.interest_paid)
        for i in Installment.objects.filter(loan=loan, superseded=False).order_by("number")
    ]


def assert_field_error(excinfo, field):
    assert field in excinfo.value.message_dict, excinfo.value.message_dict


class TestLoanCreate:
    def test_generates_the_schedule_and_the_starting_delinquency_state(self):
        loan = make_loan(principal="12000.00", annual_rate="0.12", term=12)
        rows = list(loan.installments.order_by("number"))
        assert len(rows) == 12
        assert sum(r.principal_due for r in rows) == D("12000.00")
        assert rows[0].principal_due + rows[0].interest_due == D("1066.19")
        assert rows[0].due_date == date(2025, 2, 1) and rows[-1].due_date == date(2026, 1, 1)
        assert loan.outstanding_principal == D("12000.00")
        assert loan.oldest_unpaid_due_date == date(2025, 2, 1)
        assert loan.history.count() == 1

    def test_rate_with_trailing_zeros_is_accepted(self):
        loan = make_loan(annual_rate="0.12000000")
        assert loan.annual_rate == D("0.12")

    def test_accepts_a_partner_schedule(self):
        loan = three_installments()
        assert [(i.due_date, i.principal_due) for i in loan.installments.order_by("number")] == [
            (FEB, D("300.00")),
            (MAR, D("300.00")),
            (APR, D("300.00")),
        ]

    @pytest.mark.parametrize(
        ("changes", "field"),
        [
            ({"principal": "-100.00"}, "principal"),
            ({"principal": "0"}, "principal"),
            ({"principal": "10.005"}, "principal"),
            ({"principal": "not money"}, "principal"),
            ({"annual_rate": "0.30"}, "annual_rate"),
            ({"annual_rate": "-0.01"}, "annual_rate"),
            ({"annual_rate": "0.1234567"}, "annual_rate"),
            ({"annual_rate": "NaN"}, "annual_rate"),
            ({"term": 0}, "term"),
            ({"currency": "USD"}, "currency"),
            ({"first_due_date": date(2024, 12, 1)}, "first_due_date"),
            ({"external_ref": "  "}, "external_ref"),
        ],
    )
    def test_bad_terms_name_the_field_and_write_nothing(self, changes, field):
        borrower, product = BorrowerFactory(), LoanProductFactory()
        args = dict(
            partner=borrower.partner,
            borrower=borrower,
            product=product,
            external_ref="L-BAD",
            principal="1000.00",
            annual_rate="0.12",
            term=12,
            start_date=date(2025, 1, 1),
            first_due_date=date(2025, 2, 1),
        )
        args.update(changes)
        with pytest.raises(ValidationError) as excinfo:
            services.loan_create(**args)
        assert_field_error(excinfo, field)
        assert Loan.objects.count() == 0 and Installment.objects.count() == 0

    def test_a_partner_schedule_that_does_not_sum_is_refused(self):
        schedule = [
            ExplicitInstallment(due_date=d, principal=D("300.00"), interest=D("30.00"))
            for d in (FEB, MAR, APR)
        ]
        with pytest.raises(ValidationError) as excinfo:
            make_loan(principal="1000.00", term=3, schedule=schedule)
        assert_field_error(excinfo, "schedule")
        assert "900.00" in str(excinfo.value) and "1000.00" in str(excinfo.value)
        assert Loan.objects.count() == 0

    def test_a_partner_schedule_with_dates_out_of_order_names_the_row(self):
        schedule = [
            ExplicitInstallment(due_date=MAR, principal=D("450.00"), interest=D("0")),
            ExplicitInstallment(due_date=FEB, principal=D("450.00"), interest=D("0")),
        ]
        with pytest.raises(ValidationError) as excinfo:
            make_loan(principal="900.00", term=2, first_due_date=MAR, schedule=schedule)
        assert_field_error(excinfo, "schedule[1].due_date")

    def test_duplicate_external_ref_is_refused_per_partner(self):
        loan = make_loan(external_ref="DUP-1")
        with pytest.raises(ValidationError) as excinfo:
            make_loan(borrower=loan.borrower, external_ref="DUP-1")
        assert_field_error(excinfo, "external_ref")
        assert Loan.objects.count() == 1
        make_loan(external_ref="DUP-1")  # another partner may use the same reference
        assert Loan.objects.filter(external_ref="DUP-1").count() == 2

    def test_duplicate_borrower_ref_is_refused(self):
        borrower = BorrowerFactory()
        with pytest.raises(ValidationError) as excinfo:
            services.borrower_create(
                partner=borrower.partner, external_ref=borrower.external_ref, full_name="张三"
            )
        assert_field_error(excinfo, "external_ref")
        assert Borrower.objects.count() == 1

    def test_unknown_time_zone_is_refused(self):
        borrower = BorrowerFactory()
        with pytest.raises(ValidationError) as excinfo:
            services.borrower_create(
                partner=borrower.partner, external_ref="X1", full_name="李四", time_zone="Mars/Olympus"
            )
        assert_field_error(excinfo, "time_zone")


class TestPayments:
    def test_payment_is_allocated_penalty_fee_interest_principal_oldest_first(self):
        loan = three_installments()
        pay(loan, "100.00", FEB, ref="A")
        assert lines(loan) == [("A", 1, D("70.00"), D("30.00"), D("0.00"), D("0.00"))]
        loan.refresh_from_db()
        assert loan.outstanding_principal == D("830.00")

    def test_back_dated_payment_between_two_others_replays_the_loan(self):
        loan = three_installments()
        pay(loan, "330.00", FEB, ref="A")
        pay(loan, "200.00", date(2025, 3, 20), ref="C")
        # Arrives last but counts from March 1st, so it is applied before C.
        pay(loan, "100.00", MAR, ref="B", as_of=date(2025, 3, 20))
        assert lines(loan) == [
            ("A", 1, D("300.00"), D("30.00"), D("0.00"), D("0.00")),
            ("B", 2, D("70.00"), D("30.00"), D("0.00"), D("0.00")),
            ("C", 2, D("200.00"), D("0.00"), D("0.00"), D("0.00")),
        ]
        assert paid(loan) == [
            (1, D("300.00"), D("30.00")),
            (2, D("270.00"), D("30.00")),
            (3, D("0.00"), D("0.00")),
        ]

    def test_reversal_replays_the_loan_without_the_payment(self):
        loan = three_installments()
        a = pay(loan, "330.00", FEB, ref="A")
        pay(loan, "100.00", MAR, ref="B")
        pay(loan, "200.00", date(2025, 3, 20), ref="C")
        services.payment_reverse(payment=a, reason="bounced transfer", as_of=date(2025, 3, 20))
        assert lines(loan) == [
            ("B", 1, D("70.00"), D("30.00"), D("0.00"), D("0.00")),
            ("C", 1, D("200.00"), D("0.00"), D("0.00"), D("0.00")),
        ]
        a.refresh_from_db()
        assert a.status == Payment.Status.REVERSED and a.reversal_reason == "bounced transfer"
        loan.refresh_from_db()
        # As of March 20th: installment 1 is 30.00 principal short, installment 2 untouched.
        assert loan.oldest_unpaid_due_date == FEB
        assert loan.days_past_due(date(2025, 3, 20)) == 47
        assert loan.bucket == "31-60"
        assert (loan.overdue_principal, loan.overdue_interest) == (D("330.00"), D("30.00"))
        assert loan.outstanding_principal == D("630.00")

    def test_reversing_twice_is_refused(self):
        loan = three_installments()
        a = pay(loan, "10.00", FEB)
        services.payment_reverse(payment=a, reason="chargeback")
        with pytest.raises(ValidationError) as excinfo:
            services.payment_reverse(payment=a, reason="again")
        assert_field_error(excinfo, "payment")

    def test_paying_everything_closes_the_loan_and_a_reversal_reopens_it(self):
        loan = three_installments()
        last = pay(loan, "990.00", MAR)
        loan.refresh_from_db()
        assert loan.status == Loan.Status.PAID_OFF and loan.closed_on == MAR
        assert loan.outstanding_principal == D("0.00") and loan.oldest_unpaid_due_date is None
        services.payment_reverse(payment=last, reason="bounced")
        loan.refresh_from_db()
        assert loan.status == Loan.Status.ACTIVE and loan.closed_on is None

    def test_overpayment_prepays_future_principal_and_keeps_the_excess(self):
        loan = three_installments()
        p = pay(loan, "1000.00", FEB)
        # I1 in full (330), then the principal of I2 (next period: all components) ... see allocation tests:
        # I1 330 + I2 330 (current period) + I3 principal 300 = 960; 40.00 left over.
        assert p.unapplied_amount == D("40.00")
        assert paid(loan)[2] == (3, D("300.00"), D("0.00"))

    @pytest.mark.parametrize(
        ("changes", "field"),
        [
            ({"amount": "-5.00"}, "amount"),
            ({"amount": "0"}, "amount"),
            ({"amount": "1.001"}, "amount"),
            ({"currency": "USD"}, "currency"),
            ({"value_date": date(2024, 1, 1)}, "value_date"),
            ({"channel": "pigeon"}, "channel"),
        ],
    )
    def test_bad_payments_name_the_field_and_write_nothing(self, changes, field):
        loan = three_installments()
        args = dict(loan=loan, external_ref="P-BAD", amount="10.00", currency="CNY", value_date=FEB)
        args.update(changes)
        with pytest.raises(ValidationError) as excinfo:
            services.payment_post(**args)
        assert_field_error(excinfo, field)
        assert Payment.objects.count() == 0 and Allocation.objects.count() == 0

    def test_payment_on_a_closed_loan_is_refused(self):
        loan = three_installments()
        pay(loan, "990.00", MAR)
        with pytest.raises(ValidationError) as excinfo:
            pay(loan, "1.00", APR)
        assert_field_error(excinfo, "loan")
        assert Payment.objects.count() == 1

    def test_duplicate_payment_ref_is_refused_and_writes_nothing(self):
        loan = three_installments()
        pay(loan, "10.00", FEB, ref="SAME")
        with pytest.raises(ValidationError) as excinfo:
            pay(loan, "20.00", FEB, ref="SAME")
        assert_field_error(excinfo, "external_ref")
        assert list(Payment.objects.values_list("amount", flat=True)) == [D("10.00")]
        assert paid(loan)[0] == (1, D("0.00"), D("10.00"))


class TestHistory:
    def test_allocation_history_shows_each_replay(self):
        loan = three_installments()
        pay(loan, "330.00", FEB, ref="A")
        pay(loan, "100.00", date(2025, 1, 20), ref="EARLY")  # back-dated: the loan is replayed
        history = Allocation.history.all()
        kinds = sorted(history.values_list("history_type", flat=True))
        # A's first line created (+) and deleted on replay (-); the replay writes EARLY -> I1 and,
        # I1 now part-paid, A -> I1 and A -> I2 (+ + +).
        assert kinds == ["+", "+", "+", "+", "-"]
        assert lines(loan) == [
            ("A", 1, D("230.00"), D("0.00"), D("0.00"), D("0.00")),
            ("A", 2, D("70.00"), D("30.00"), D("0.00"), D("0.00")),
            ("EARLY", 1, D("70.00"), D("30.00"), D("0.00"), D("0.00")),
        ]

    def test_a_payment_in_date_order_adds_allocations_and_rewrites_none(self):
        loan = three_installments()
        pay(loan, "330.00", FEB, ref="A")
        pay(loan, "330.00", MAR, ref="B")
        assert sorted(Allocation.history.values_list("history_type", flat=True)) == ["+", "+"]
        assert lines(loan) == [
            ("A", 1, D("300.00"), D("30.00"), D("0.00"), D("0.00")),
            ("B", 2, D("300.00"), D("30.00"), D("0.00"), D("0.00")),
        ]

    def test_opting_out_is_recorded_with_its_time(self):
        borrower = BorrowerFactory()
        point = services.contact_point_add(
            borrower=borrower,
            point=services.ContactPointIn(kind="phone", value="13900000000", is_primary=True),
        )
        at = datetime(2025, 3, 1, 10, 30, tzinfo=UTC)
        services.contact_point_opt_out(contact_point=point, at=at)
        point.refresh_from_db()
        assert point.opted_out and point.opted_out_at == at
        assert point.history.count() == 2

    def test_people_and_partner_edits_are_historised_but_derived_figures_are_not(self):
        loan = three_installments()
        pay(loan, "100.00", FEB)
        services.delinquency_refresh(as_of=date(2025, 6, 1))
        assert loan.history.count() == 1  # created; payments and the refresh changed only derived figures
        assert Loan.history.model._meta.get_field("product")
        assert "bucket" not in {f.name for f in Loan.history.model._meta.get_fields()}
