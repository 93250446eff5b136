"""Bucket snapshots: today's copied from the loans, a past date's replayed from schedules and payments,
and ``manage.py snapshot_buckets``."""

from datetime import date, timedelta
from decimal import Decimal as D
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from loans import services
from loans.models import BucketSnapshot
from loans.schedules import ExplicitInstallment
from loans.snapshots import bucket_snapshot_take, month_end, month_ends
from tests.factories import LoanProductFactory, make_loan, pay

FEB, MAR, APR, MAY = date(2025, 2, 1), date(2025, 3, 1), date(2025, 4, 1), date(2025, 5, 1)
TODAY = date(2025, 6, 20)


def rows(as_of) -> dict[int, tuple]:
    return {
        s.loan_id: (s.bucket, s.days_past_due, s.overdue_total, s.outstanding_principal)
        for s in BucketSnapshot.objects.filter(as_of=as_of)
    }


def loan_of(*, dues=(FEB, MAR, APR, MAY), grace=0, penalty="0", principal="300.00", interest="30.00"):
    """A loan of len(dues) installments of ``principal`` + ``interest`` each, disbursed by 1 Jan 2025."""
    product = LoanProductFactory(grace_days=grace, penalty_rate=D(penalty))
    schedule = [ExplicitInstallment(due_date=d, principal=D(principal), interest=D(interest)) for d in dues]
    total = D(principal) * len(dues)
    return make_loan(
        product=product,
        principal=str(total),
        annual_rate="0.12",
        term=len(dues),
        schedule=schedule,
        start_date=min(dues[0] - timedelta(days=31), date(2025, 1, 1)),
        first_due_date=dues[0],
    )


# --- dates -----------------------------------------------------------------------------------------


def test_month_ends_are_the_last_n_on_or_before_a_date_oldest_first():
    assert month_end(date(2024, 2, 10)) == date(2024, 2, 29)
    assert month_ends(up_to=date(2025, 3, 15), count=3) == [
        date(2024, 12, 31),
        date(2025, 1, 31),
        date(2025, 2, 28),
    ]
    assert month_ends(up_to=date(2025, 3, 31), count=2) == [date(2025, 2, 28), date(2025, 3, 31)]
    assert month_ends(up_to=date(2025, 3, 31), count=0) == []


# --- today: copied from the loans ------------------------------------------------------------------


@pytest.mark.django_db
class TestToday:
    def test_copies_every_active_delinquent_loans_state_and_nothing_else(self):
        late = loan_of()
        current = loan_of(dues=(date(2025, 7, 1), date(2025, 8, 1)))
        paid_off = loan_of(dues=(FEB,))
        pay(paid_off, D("330.00"), FEB, as_of=TODAY)
        services.delinquency_refresh(as_of=TODAY)
        late.refresh_from_db()

        result = bucket_snapshot_take(as_of=TODAY, today=TODAY)

        assert (result.source, result.loans) == ("current", 1)
        assert rows(TODAY) == {late.pk: ("91-180", (TODAY - FEB).days, D("1320.00"), D("1200.00"))}
        assert late.bucket == "91-180" and late.overdue_total == D("1320.00")
        assert current.pk not in rows(TODAY) and paid_off.pk not in rows(TODAY)

    def test_a_rerun_replaces_the_dates_rows_and_leaves_other_dates_alone(self):
        loan = loan_of()
        services.delinquency_refresh(as_of=TODAY)
        bucket_snapshot_take(as_of=date(2025, 5, 31), today=TODAY)
        bucket_snapshot_take(as_of=TODAY, today=TODAY)
        pay(loan, D("1320.00"), TODAY, as_of=TODAY)  # the arrears paid: current now

        again = bucket_snapshot_take(as_of=TODAY, today=TODAY)

        assert again.loans == 0 and rows(TODAY) == {}
        assert BucketSnapshot.objects.filter(as_of=date(2025, 5, 31)).count() == 1

    def test_a_future_date_and_an_unknown_source_are_refused(self):
        with pytest.raises(ValueError, match="after the business date"):
            bucket_snapshot_take(as_of=TODAY + timedelta(days=1), today=TODAY)
        with pytest.raises(ValueError, match="source"):
            bucket_snapshot_take(as_of=TODAY, today=TODAY, source="guess")
        assert not BucketSnapshot.objects.exists()


# --- a past date: replayed -------------------------------------------------------------------------


@pytest.mark.django_db
class TestReplay:
    def test_the_bucket_a_loan_had_then_before_and_after_a_later_payment(self):
        loan = loan_of()
        # On 31 March installments 1 (1 Feb) and 2 (1 Mar) are unpaid: 58 days, M2.
        expected_march = ("31-60", 58, D("660.00"), D("1200.00"))
        bucket_snapshot_take(as_of=date(2025, 3, 31), today=TODAY)
        assert rows(date(2025, 3, 31)) == {loan.pk: expected_march}

        # Paid on 10 April (after the month end): installments 1 and 2 and 100 towards the third.
        pay(loan, D("760.00"), date(2025, 4, 10), as_of=TODAY)
        bucket_snapshot_take(as_of=date(2025, 3, 31), today=TODAY)
        bucket_snapshot_take(as_of=date(2025, 4, 30), today=TODAY)

        assert rows(date(2025, 3, 31)) == {loan.pk: expected_march}  # the past is unchanged
        # 30 April: of 760, 330 + 330 for installments 1 and 2, then 30 interest and 70 principal of
        # the third (due 1 April): 230 of it unpaid, 29 days late; principal left 1200 - 670.
        assert rows(date(2025, 4, 30)) == {loan.pk: ("1-30", 29, D("230.00"), D("530.00"))}

    def test_a_reversed_payment_does_not_count(self):
        loan = loan_of()
        payment = pay(loan, D("660.00"), date(2025, 3, 15), as_of=TODAY)
        bucket_snapshot_take(as_of=date(2025, 3, 31), today=TODAY)
        assert rows(date(2025, 3, 31)) == {}  # both late installments paid on 15 March: current

        services.payment_reverse(payment=payment, reason="bounced", as_of=TODAY)
        bucket_snapshot_take(as_of=date(2025, 3, 31), today=TODAY)

        assert rows(date(2025, 3, 31)) == {loan.pk: ("31-60", 58, D("660.00"), D("1200.00"))}

    def test_a_loan_counts_from_disbursement_until_it_closed(self):
        early = loan_of(dues=(FEB,))
        pay(early, D("330.00"), date(2025, 4, 5), as_of=TODAY)  # paid off on 5 April
        early.refresh_from_db()
        assert early.status == "paid_off"

        bucket_snapshot_take(as_of=date(2025, 3, 31), today=TODAY)
        bucket_snapshot_take(as_of=date(2025, 4, 30), today=TODAY)
        bucket_snapshot_take(as_of=date(2024, 12, 31), today=TODAY)  # before it was disbursed

        assert rows(date(2025, 3, 31)) == {early.pk: ("31-60", 58, D("330.00"), D("300.00"))}
        assert rows(date(2025, 4, 30)) == {} and rows(date(2024, 12, 31)) == {}

    def test_grace_days_delay_the_bucket(self):
        loan = loan_of(grace=5)
        bucket_snapshot_take(as_of=date(2025, 2, 5), today=TODAY)  # 4 days late, inside grace
        bucket_snapshot_take(as_of=date(2025, 2, 7), today=TODAY)  # 6 days late
        assert rows(date(2025, 2, 5)) == {}
        assert rows(date(2025, 2, 7)) == {loan.pk: ("1-30", 6, D("330.00"), D("1200.00"))}

    def test_penalty_then_is_what_the_refresh_computed_on_that_day(self):
        loan = loan_of(penalty="0.0365", grace=3)
        day = date(2025, 3, 3)
        services.delinquency_refresh(as_of=day)
        bucket_snapshot_take(as_of=day, today=day)  # taken on the day, from the loan's columns
        on_the_day = rows(day)
        loan.refresh_from_db()
        assert on_the_day[loan.pk][2] == loan.overdue_total == D("660.90")  # 300 x 3.65% x 30/365 = 0.90

        services.delinquency_refresh(as_of=TODAY)  # penalty has grown since
        bucket_snapshot_take(as_of=day, today=TODAY)  # replayed

        assert rows(day) == on_the_day

    def test_the_replay_of_today_agrees_with_the_copy_of_todays_state(self):
        """Every kind of loan at once: penalty, grace, part paid, paid ahead, current, paid off."""
        loans = [
            loan_of(penalty="0.0365"),
            loan_of(penalty="0.10", grace=3),
            loan_of(dues=(date(2025, 6, 18), date(2025, 7, 18)), grace=3),
            loan_of(dues=(date(2025, 6, 10), date(2025, 7, 10)), penalty="0.05"),
            loan_of(dues=(date(2025, 7, 1),)),
            loan_of(dues=(FEB,)),
        ]
        pay(loans[0], D("500.00"), date(2025, 3, 20), as_of=TODAY)
        pay(loans[1], D("100.00"), date(2025, 6, 1), as_of=TODAY)
        pay(loans[3], D("30.00"), date(2025, 6, 12), as_of=TODAY)
        pay(loans[5], D("330.00"), date(2025, 2, 1), as_of=TODAY)
        services.delinquency_refresh(as_of=TODAY)

        copied = bucket_snapshot_take(as_of=TODAY, today=TODAY)
        copy = rows(TODAY)
        replayed = bucket_snapshot_take(as_of=TODAY, today=TODAY, source="replay")

        assert (copied.source, replayed.source) == ("current", "replay")
        assert rows(TODAY) == copy
        assert set(copy) == {loans[0].pk, loans[1].pk, loans[3].pk}
        assert copied.loans == replayed.loans == 3


# --- the command -----------------------------------------------------------------------------------


@pytest.mark.django_db
class TestCommand:
    def test_as_of_a_past_date_and_back_filling_month_ends(self):
        loan = loan_of()
        out = StringIO()
        call_command("snapshot_buckets", "--as-of", "2025-03-31", stdout=out)
        assert "2025-03-31: 1 delinquent loans (replayed)" in out.getvalue()
        assert rows(date(2025, 3, 31)) == {loan.pk: ("31-60", 58, D("660.00"), D("1200.00"))}

        out = StringIO()
        call_command("snapshot_buckets", "--as-of", "2025-04-15", "--months", "3", stdout=out)
        assert out.getvalue().splitlines() == [
            "2025-01-31: 0 delinquent loans (replayed).",  # nothing was due yet
            "2025-02-28: 1 delinquent loans (replayed).",
            "2025-03-31: 1 delinquent loans (replayed).",
        ]
        assert not BucketSnapshot.objects.filter(as_of=date(2025, 4, 15)).exists()
        assert rows(date(2025, 2, 28))[loan.pk][:2] == ("1-30", 27)

    def test_today_copies_the_current_state(self):
        loan = loan_of(dues=(timezone.localdate() - timedelta(days=40),))
        services.delinquency_refresh(as_of=timezone.localdate())
        out = StringIO()
        call_command("snapshot_buckets", stdout=out)
        assert "(copied)" in out.getvalue()
        assert rows(timezone.localdate())[loan.pk][:2] == ("31-60", 40)

    @pytest.mark.parametrize(
        ("args", "message"),
        [
            (["--as-of", "31/03/2025"], "YYYY-MM-DD"),
            (["--as-of", "2999-01-31"], "in the future"),
            (["--months", "0"], "between 1 and 120"),
        ],
    )
    def test_bad_arguments_are_refused_and_write_nothing(self, args, message):
        loan_of()
        with pytest.raises(CommandError, match=message):
            call_command("snapshot_buckets", *args, stdout=StringIO())
        assert not BucketSnapshot.objects.exists()
