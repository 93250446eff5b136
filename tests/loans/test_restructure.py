"""Restructuring on the loan book side: the pure plan (every kind) and the schedule version writer."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal as D

import pytest

from loans import delinquency, restructure
from loans.models import Allocation, Installment, Loan
from loans.restructure import Change, RestructureError, Row, Terms, plan_restructuring
from loans.schedules import generate_schedule
from loans.services import delinquency_refresh
from tests.factories import LoanProductFactory, make_loan, pay

TERMS = Terms(currency="CNY", annual_rate=D("0.12"), method="annuity", frequency="monthly")
AS_OF = date(2025, 5, 15)  # Apr 1 and May 1 are late


def schedule(paid_rows: int = 2, penalty: D = D("0")) -> list[Row]:
    """12000 over 12 months at 12%: the first ``paid_rows`` paid, two late rows carrying ``penalty``."""
    rows = []
    for g in generate_schedule(
        principal=D("12000.00"), annual_rate=D("0.12"), term=12, method="annuity", frequency="monthly",
        first_due_date=date(2025, 2, 1),
    ):  # fmt: skip
        paid = g.number <= paid_rows
        late = not paid and g.due_date < AS_OF
        rows.append(
            Row(
                number=g.number,
                due_date=g.due_date,
                principal_due=g.principal,
                interest_due=g.interest,
                penalty_due=penalty if late else D("0"),
                principal_paid=g.principal if paid else D("0"),
                interest_paid=g.interest if paid else D("0"),
            )
        )
    return rows


def fresh(plan):
    return [r for r in plan.rows if r.outstanding > 0]


def unpaid_principal(rows):
    return sum((r.principal_due - r.principal_paid for r in rows), D(0))


KINDS = [
    Change(kind="term_extension", as_of=AS_OF, first_due_date=date(2025, 6, 1), new_term=24),
    Change(kind="rate_reduction", as_of=AS_OF, first_due_date=date(2025, 6, 1), new_annual_rate=D("0.06")),
    Change(kind="payment_holiday", as_of=AS_OF, first_due_date=date(2025, 6, 1), holiday_periods=3),
    Change(kind="penalty_waiver", as_of=AS_OF),
]


@pytest.mark.parametrize("change", KINDS, ids=lambda c: c.kind)
def test_principal_is_conserved_and_numbers_run_from_one(change):
    rows = schedule(penalty=D("12.34"))
    plan = plan_restructuring(rows=rows, terms=TERMS, change=change)
    assert unpaid_principal(plan.rows) == unpaid_principal(rows) == D(plan.current["unpaid_principal"])
    assert sum((r.principal_due for r in plan.rows), D(0)) == D("12000.00")
    assert [r.number for r in plan.rows] == list(range(1, len(plan.rows) + 1))
    # Settled rows first: every new row falls after the restructuring date.
    assert all(r.due_date > AS_OF for r in fresh(plan)) or change.kind == "penalty_waiver"


def test_term_extension_spreads_the_arrears_and_carries_the_penalty():
    rows = schedule(penalty=D("10.00"))  # two late rows, 10.00 penalty each
    plan = plan_restructuring(rows=rows, terms=TERMS, change=KINDS[0])
    new = fresh(plan)
    assert len(new) == 24 and new[0].due_date == date(2025, 6, 1) and new[-1].due_date == date(2027, 5, 1)
    # The two settled rows keep what was paid of them.
    assert [(r.number, r.principal_due) for r in plan.rows[:2]] == [
        (1, rows[0].principal_due),
        (2, rows[1].principal_due),
    ]
    late_interest = rows[2].interest_due + rows[3].interest_due
    generated = generate_schedule(
        principal=unpaid_principal(rows), annual_rate=D("0.12"), term=24, method="annuity",
        frequency="monthly", first_due_date=date(2025, 6, 1),
    )  # fmt: skip
    assert (
        sum((r.interest_due for r in new), D(0)) == sum((g.interest for g in generated), D(0)) + late_interest
    )
    assert sum((r.penalty_carried for r in new), D(0)) == D("20.00")
    assert all(r.penalty_due == r.penalty_carried for r in new)
    assert plan.waived_amount == 0 and plan.annual_rate is None
    # The summaries: the next instalment, the total still to pay, the end date, the rows.
    assert plan.current["end_date"] == "2026-01-01" and plan.proposed["end_date"] == "2027-05-01"
    assert D(plan.proposed["installment"]) < D(plan.current["installment"])
    assert D(plan.proposed["total_cost"]) == sum((r.total_due for r in new), D(0))
    assert D(plan.current["total_cost"]) == sum((r.outstanding for r in rows), D(0))
    assert len(plan.proposed["rows"]) == 24 and plan.proposed["rows"][0]["due_date"] == "2025-06-01"


def test_a_term_extension_must_end_later():
    with pytest.raises(RestructureError) as exc:
        plan_restructuring(rows=schedule(), terms=TERMS, change=replace(KINDS[0], new_term=3))
    assert exc.value.field == "new_term" and exc.value.code == "not_longer"


def test_rate_reduction_keeps_the_remaining_count_at_the_lower_rate():
    rows = schedule()
    plan = plan_restructuring(rows=rows, terms=TERMS, change=KINDS[1])
    assert plan.annual_rate == D("0.06") and len(fresh(plan)) == 10
    assert D(plan.proposed["total_cost"]) < D(plan.current["total_cost"])


@pytest.mark.parametrize("rate", ["0.12", "0.18"])
def test_a_rate_reduction_to_a_rate_not_lower_is_refused(rate):
    with pytest.raises(RestructureError) as exc:
        plan_restructuring(rows=schedule(), terms=TERMS, change=replace(KINDS[1], new_annual_rate=D(rate)))
    assert exc.value.field == "new_annual_rate"


def test_payment_holiday_starts_later_and_charges_the_holiday_interest_as_interest():
    rows = schedule()
    plan = plan_restructuring(rows=rows, terms=TERMS, change=KINDS[2])
    new = fresh(plan)
    assert new[0].due_date == date(2025, 9, 1) and len(new) == 10
    principal = unpaid_principal(rows)
    generated = generate_schedule(
        principal=principal, annual_rate=D("0.12"), term=10, method="annuity", frequency="monthly",
        first_due_date=date(2025, 9, 1),
    )  # fmt: skip
    holiday_interest = (principal * D("0.01") * 3).quantize(D("0.01"))
    late_interest = rows[2].interest_due + rows[3].interest_due
    expected = sum((g.interest for g in generated), D(0)) + holiday_interest + late_interest
    assert sum((r.interest_due for r in new), D(0)) == expected


def test_penalty_waiver_leaves_the_rows_and_waives_the_unpaid_penalty():
    rows = schedule(penalty=D("7.50"))
    rows[2] = replace(rows[2], penalty_paid=D("2.50"))
    plan = plan_restructuring(rows=rows, terms=TERMS, change=KINDS[3])
    assert plan.waived_amount == D("12.50")
    assert [(r.due_date, r.principal_due, r.interest_due) for r in plan.rows] == [
        (r.due_date, r.principal_due, r.interest_due) for r in rows
    ]
    assert [r.penalty_waived for r in plan.rows][2:4] == [D("5.00"), D("7.50")]
    assert all(r.penalty_due == r.penalty_paid for r in plan.rows)


def test_nothing_to_waive_is_refused():
    with pytest.raises(RestructureError) as exc:
        plan_restructuring(rows=schedule(), terms=TERMS, change=KINDS[3])
    assert exc.value.code == "no_penalty"


def test_settlement_is_one_installment_and_waives_the_rest_of_the_payoff():
    rows = schedule(penalty=D("5.00"))
    payoff = unpaid_principal(rows) + rows[2].interest_due + rows[3].interest_due + D("10.00")
    change = Change(
        kind="settlement", as_of=AS_OF, first_due_date=date(2025, 6, 1), settlement_amount=D("9000")
    )
    plan = plan_restructuring(rows=rows, terms=TERMS, change=change)
    (row,) = fresh(plan)
    assert row.due_date == date(2025, 6, 1) and row.total_due == D("9000.00")
    assert row.principal_due == D("9000.00") and row.interest_due == 0
    assert plan.waived_amount == payoff - D("9000")


@pytest.mark.parametrize("amount", ["0", "-1", "payoff", "99999"])
def test_a_settlement_not_below_the_payoff_is_refused(amount):
    rows = schedule()
    payoff = unpaid_principal(rows) + rows[2].interest_due + rows[3].interest_due
    value = payoff if amount == "payoff" else D(amount)
    change = Change(kind="settlement", as_of=AS_OF, first_due_date=date(2025, 6, 1), settlement_amount=value)
    with pytest.raises(RestructureError) as exc:
        plan_restructuring(rows=rows, terms=TERMS, change=change)
    assert exc.value.field == "settlement_amount"


def test_the_new_schedule_must_start_after_the_date():
    with pytest.raises(RestructureError) as exc:
        plan_restructuring(rows=schedule(), terms=TERMS, change=replace(KINDS[0], first_due_date=AS_OF))
    assert exc.value.field == "first_due_date"


def test_a_prepaid_future_row_is_settled_on_the_date_before_the_new_rows():
    rows = schedule()
    rows[8] = replace(rows[8], principal_paid=D("100.00"))  # prepaid principal of Oct 1
    plan = plan_restructuring(rows=rows, terms=TERMS, change=KINDS[0])
    settled = [r for r in plan.rows if r.outstanding == 0]
    assert [r.due_date for r in settled] == [date(2025, 2, 1), date(2025, 3, 1), AS_OF]
    assert settled[-1].principal_due == D("100.00")
    assert unpaid_principal(plan.rows) == unpaid_principal(rows)


def test_penalty_is_taken_as_of_the_date():
    terms = replace(TERMS, penalty_rate=D("0.0365"))
    row = Row(number=1, due_date=date(2025, 4, 1), principal_due=D("1000.00"), penalty_carried=D("3.00"),
              penalty_waived=D("1.00"))  # fmt: skip
    # 44 days at 3.65% on 1000 = 4.40; plus 3.00 carried, less 1.00 waived.
    assert restructure.installment_penalty(row, terms=terms, as_of=AS_OF) == D("6.40")


def test_pure_penalty_rule():
    rule = delinquency.installment_penalty_due
    assert rule(accrued=D("4"), penalty_paid=D("0"), penalty_carried=D("3"), penalty_waived=D("1")) == D("6")
    assert rule(accrued=D("1"), penalty_paid=D("0"), penalty_waived=D("5")) == 0
    assert rule(accrued=D("1"), penalty_paid=D("2"), penalty_waived=D("5")) == D("2")


# --- with the database ------------------------------------------------------------------------


def _allocations(loan):
    return sorted(
        (a.payment_id, a.principal, a.interest, a.fee, a.penalty)
        for a in Allocation.objects.filter(installment__loan=loan)
    )


@pytest.mark.django_db
class TestWriter:
    def _loan(self, **kw):
        product = LoanProductFactory(penalty_rate=D("0.0365"), **kw)
        loan = make_loan(product=product)
        pay(loan, "1066.19", date(2025, 1, 20), as_of=AS_OF)  # the Feb instalment, early
        pay(loan, "1200.00", date(2025, 3, 5), as_of=AS_OF)  # Mar, and a bit of Apr
        return Loan.objects.get(pk=loan.pk)

    def test_a_new_version_supersedes_the_old_and_payments_allocate_as_before(self):
        loan = self._loan()
        before = _allocations(loan)
        rows = restructure.rows_of(loan)
        plan = plan_restructuring(
            rows=rows,
            terms=restructure.terms_of(loan, annual_cost_cap=D("0.24")),
            change=Change(kind="rate_reduction", as_of=AS_OF, first_due_date=date(2025, 6, 1),
                          new_annual_rate=D("0.06")),
        )  # fmt: skip
        loan = restructure.schedule_version_write(
            loan=loan, rows=plan.rows, annual_rate=plan.annual_rate, as_of=AS_OF
        )
        assert loan.schedule_version == 2 and loan.annual_rate == D("0.06")
        assert loan.history.first().annual_rate == D("0.06")  # the change is in the loan's history
        assert Installment.objects.filter(loan=loan, superseded=True, schedule_version=1).count() == 12
        current = Installment.objects.filter(loan=loan, superseded=False)
        assert set(current.values_list("schedule_version", flat=True)) == {2}
        assert _allocations(loan) == before
        # Nothing is late any more; what remains is the unpaid principal.
        assert loan.oldest_unpaid_due_date == date(2025, 6, 1) and loan.bucket == "current"
        assert loan.outstanding_principal == unpaid_principal(rows)
        assert sum((i.principal_due for i in current), D(0)) == D("12000.00")

    def test_the_refresh_keeps_carried_and_waived_penalty(self):
        loan = self._loan()
        rows = restructure.rows_of(loan)
        terms = restructure.terms_of(loan, annual_cost_cap=D("0.24"))
        plan = plan_restructuring(rows=rows, terms=terms, change=Change(kind="penalty_waiver", as_of=AS_OF))
        assert plan.waived_amount > 0
        restructure.schedule_version_write(loan=loan, rows=plan.rows, as_of=AS_OF)
        loan.refresh_from_db()
        assert loan.overdue_penalty == 0
        delinquency_refresh(as_of=AS_OF, loan_ids=[loan.pk])
        loan.refresh_from_db()
        assert loan.overdue_penalty == 0  # the waiver survives the refresh
        later = date(2025, 6, 15)
        delinquency_refresh(as_of=later, loan_ids=[loan.pk])
        # Penalty accruing after the waiver is due again; SQL and the pure rule agree row by row.
        for inst in Installment.objects.filter(loan=loan, superseded=False, due_date__lt=later):
            expected = restructure.installment_penalty(
                Row(**{f: getattr(inst, f) for f in restructure._ROW_FIELDS}, number=inst.number,
                    due_date=inst.due_date),
                terms=terms, as_of=later,
            )  # fmt: skip
            assert inst.penalty_due == expected
        loan.refresh_from_db()
        assert loan.overdue_penalty > 0
