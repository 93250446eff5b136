"""Delinquency: DPD, buckets, penalty interest and the set-based refresh."""

import random
from datetime import date, timedelta
from decimal import Decimal as D

import pytest
from django.test import override_settings

from loans import delinquency, services
from loans.models import Installment, Loan
from loans.schedules import ExplicitInstallment
from tests.factories import LoanProductFactory, make_loan, pay

FEB, MAR, APR = date(2025, 2, 1), date(2025, 3, 1), date(2025, 4, 1)


@pytest.mark.parametrize(
    ("dpd", "grace", "bucket"),
    [
        (0, 0, "current"),
        (1, 0, "1-30"),
        (30, 0, "1-30"),
        (31, 0, "31-60"),
        (60, 0, "31-60"),
        (61, 0, "61-90"),
        (90, 0, "61-90"),
        (91, 0, "91-180"),
        (180, 0, "91-180"),
        (181, 0, "180+"),
        (3, 3, "current"),
        (4, 3, "1-30"),
    ],
)
def test_buckets_follow_the_industry_ladder_and_grace_delays_them(dpd, grace, bucket):
    assert delinquency.bucket_for(dpd, grace) == bucket


def test_days_past_due_is_derived_from_the_oldest_unpaid_due_date():
    assert delinquency.days_past_due(None, MAR) == 0
    assert delinquency.days_past_due(MAR, FEB) == 0
    assert delinquency.days_past_due(FEB, MAR) == 28


def test_penalty_rate_is_capped_by_the_annual_cost_cap():
    rate = delinquency.effective_penalty_rate
    assert rate(penalty_rate=D("0.0365"), contract_rate=D("0.12"), annual_cost_cap=D("0.24")) == D("0.0365")
    assert rate(penalty_rate=D("0.0365"), contract_rate=D("0.22"), annual_cost_cap=D("0.24")) == D("0.02")
    assert rate(penalty_rate=D("0.10"), contract_rate=D("0.30"), annual_cost_cap=D("0.24")) == D("0")


def _loan(*, grace=0, penalty="0.0365", rate="0.12"):
    product = LoanProductFactory(grace_days=grace, penalty_rate=D(penalty))
    schedule = [
        ExplicitInstallment(due_date=d, principal=D("300.00"), interest=D("30.00")) for d in (FEB, MAR, APR)
    ]
    return make_loan(product=product, principal="900.00", annual_rate=rate, term=3, schedule=schedule)


@pytest.mark.django_db
class TestRefresh:
    def test_figures_penalty_and_grace_as_of_a_date(self):
        loan = _loan(grace=3)
        result = services.delinquency_refresh(as_of=date(2025, 3, 3), loan_ids=[loan.pk])
        loan.refresh_from_db()
        penalties = list(loan.installments.order_by("number").values_list("penalty_due", flat=True))
        # 300 x 3.65% x 30/365 on installment 1; installment 2 is 2 days late, inside the 3 grace days.
        assert penalties == [D("0.90"), D("0.00"), D("0.00")]
        assert result.installments_repriced == 1 and result.loans_changed == 1
        assert loan.oldest_unpaid_due_date == FEB
        assert (loan.overdue_principal, loan.overdue_interest, loan.overdue_penalty) == (
            D("600.00"),
            D("60.00"),
            D("0.90"),
        )
        assert loan.outstanding_principal == D("900.00")
        assert loan.bucket == "1-30"

    def test_grace_delays_the_bucket_not_the_dpd(self):
        loan = _loan(grace=3)
        services.delinquency_refresh(as_of=date(2025, 2, 3), loan_ids=[loan.pk])
        loan.refresh_from_db()
        assert loan.days_past_due(date(2025, 2, 3)) == 2
        assert loan.bucket == "current"
        assert loan.overdue_principal == D("300.00")

    def test_penalty_is_capped(self):
        loan = _loan(rate="0.22")
        services.delinquency_refresh(as_of=date(2025, 3, 3), loan_ids=[loan.pk])
        first = loan.installments.get(number=1)
        assert first.penalty_due == D("0.49")  # 300 x (24% - 22%) x 30/365

    @override_settings(PENALTY_ANNUAL_COST_CAP=D("0.10"))
    def test_no_penalty_when_the_contract_rate_reaches_the_cap(self):
        loan = _loan(rate="0.12")
        services.delinquency_refresh(as_of=date(2025, 3, 3), loan_ids=[loan.pk])
        assert not loan.installments.exclude(penalty_due=0).exists()

    def test_rerun_on_the_same_date_writes_nothing(self):
        loan = _loan()
        services.delinquency_refresh(as_of=date(2025, 5, 10))
        again = services.delinquency_refresh(as_of=date(2025, 5, 10))
        assert (again.installments_repriced, again.loans_changed) == (0, 0)
        loan.refresh_from_db()
        assert loan.bucket == "91-180"  # 98 days past Feb 1st

    def test_penalty_is_recomputed_not_incremented(self):
        loan = _loan()
        for _ in range(3):
            services.delinquency_refresh(as_of=date(2025, 3, 3))
        assert loan.installments.get(number=1).penalty_due == D("0.90")

    def test_a_subset_refresh_touches_only_those_loans(self):
        first, second = _loan(), _loan()
        services.delinquency_refresh(as_of=date(2025, 3, 3), loan_ids=[first.pk])
        first.refresh_from_db()
        second.refresh_from_db()
        assert first.bucket == "1-30" and second.bucket == "current"
        assert second.overdue_principal == 0

    def test_paying_the_arrears_cures_the_loan(self):
        loan = _loan()
        services.delinquency_refresh(as_of=date(2025, 3, 3))
        # 330 + 0.90 penalty on installment 1, 330 + 0.06 (300 x 3.65% x 2/365) on installment 2.
        pay(loan, "660.96", date(2025, 3, 3))
        loan.refresh_from_db()
        assert loan.bucket == "current"
        assert loan.oldest_unpaid_due_date == APR
        assert loan.overdue_total == 0

    def test_refresh_agrees_with_the_pure_python_rules(self):
        """Random loans and payments; the SQL refresh must match loans.delinquency row by row."""
        rng = random.Random(7)
        products = [
            LoanProductFactory(grace_days=g, penalty_rate=D(p)) for g, p in [(0, "0.0365"), (3, "0.18")]
        ]
        loans = []
        for _ in range(25):
            loan = make_loan(
                product=rng.choice(products),
                principal=f"{rng.randrange(1000, 20000)}.{rng.randrange(100):02d}",
                annual_rate=rng.choice(["0", "0.08", "0.12", "0.2399"]),
                term=rng.choice([3, 6, 12]),
            )
            for k in range(rng.randrange(0, 5)):
                pay(
                    loan,
                    f"{rng.randrange(50, 1500)}.00",
                    FEB + timedelta(days=30 * k + rng.randrange(0, 20)),
                    as_of=date(2025, 1, 15),
                )
            loans.append(loan)
        as_of = date(2025, 9, 17)
        services.delinquency_refresh(as_of=as_of)
        cap = D("0.24")
        for loan in Loan.objects.filter(pk__in=[x.pk for x in loans]).select_related("product"):
            rows = list(Installment.objects.filter(loan=loan, superseded=False))
            late = [r for r in rows if r.due_date < as_of]
            for r in late:
                expected = delinquency.penalty_due(
                    unpaid_principal=r.principal_due - r.principal_paid,
                    due_date=r.due_date,
                    as_of=as_of,
                    grace_days=loan.product.grace_days,
                    annual_rate=delinquency.effective_penalty_rate(
                        penalty_rate=loan.product.penalty_rate,
                        contract_rate=loan.annual_rate,
                        annual_cost_cap=cap,
                    ),
                )
                assert r.penalty_due == max(expected, r.penalty_paid), (loan, r.number)
            unpaid = [r.due_date for r in rows if r.outstanding > 0]
            oldest = min(unpaid) if unpaid else None
            assert loan.oldest_unpaid_due_date == oldest
            assert loan.overdue_principal == sum((r.principal_due - r.principal_paid for r in late), D(0))
            assert loan.overdue_interest == sum((r.interest_due - r.interest_paid for r in late), D(0))
            assert loan.overdue_penalty == sum((r.penalty_due - r.penalty_paid for r in late), D(0))
            assert loan.outstanding_principal == sum((r.principal_due - r.principal_paid for r in rows), D(0))
            assert loan.bucket == delinquency.bucket_for(
                delinquency.days_past_due(oldest, as_of), loan.product.grace_days
            )

    def test_whole_book_and_listed_loans_give_the_same_figures(self):
        """The whole-book refresh reads a precomputed aggregate on PostgreSQL; a listed one a CTE."""
        loans = [_loan(grace=g) for g in (0, 3, 0)]
        pay(loans[0], "200.00", date(2025, 3, 10), as_of=date(2025, 3, 10))
        fields = ["pk", "oldest_unpaid_due_date", "overdue_principal", "overdue_penalty", "bucket"]
        as_of = date(2025, 4, 20)
        services.delinquency_refresh(as_of=as_of, loan_ids=[x.pk for x in loans])
        listed = list(Loan.objects.order_by("pk").values_list(*fields))
        penalties = list(Installment.objects.order_by("pk").values_list("penalty_due", flat=True))
        Installment.objects.update(penalty_due=0)
        Loan.objects.update(bucket="current", overdue_principal=0, overdue_penalty=0)
        services.delinquency_refresh(as_of=as_of)
        assert list(Loan.objects.order_by("pk").values_list(*fields)) == listed
        assert list(Installment.objects.order_by("pk").values_list("penalty_due", flat=True)) == penalties
        assert any(p > 0 for p in penalties)
