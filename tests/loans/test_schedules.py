"""Repayment schedules: generated (every method and frequency) and partner-supplied.

Pure domain maths: no database, no Django. numpy-financial is the independent reference for the
annuity split; floats appear only here, for that comparison.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction

import numpy as np
import numpy_financial as npf
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loans.money import MINOR_UNITS
from loans.schedules import (
    PERIODS_PER_YEAR,
    ExplicitInstallment,
    Frequency,
    RepaymentMethod,
    ScheduledInstallment,
    ScheduleError,
    due_dates,
    generate_schedule,
    validate_explicit_schedule,
)

CENT = Decimal("0.01")
# numpy-financial works in binary floating point; allow for its own error on top of the one
# minor unit the schedule may differ from the exact figures.
FLOAT_SLACK = 1e-6
D = Decimal


def annuity(principal, rate, term, frequency=Frequency.MONTHLY, first=date(2024, 1, 15), **kw):
    return generate_schedule(
        principal=D(principal),
        annual_rate=D(rate),
        term=term,
        method=RepaymentMethod.ANNUITY,
        frequency=frequency,
        first_due_date=first,
        **kw,
    )


def decimal_places(amount: Decimal) -> int:
    return max(0, -amount.as_tuple().exponent)


def assert_well_formed(rows: list[ScheduledInstallment], principal: Decimal, currency: str = "CNY") -> None:
    assert sum(r.principal for r in rows) == principal
    assert [r.number for r in rows] == list(range(1, len(rows) + 1))
    for r in rows:
        for amount in (r.principal, r.interest, r.fee):
            assert isinstance(amount, Decimal)
            assert amount >= 0
            assert decimal_places(amount) <= MINOR_UNITS[currency]
        assert r.total == r.principal + r.interest + r.fee
    assert all(a.due_date < b.due_date for a, b in zip(rows, rows[1:], strict=False))


# --------------------------------------------------------------------------------------------
# Strategies
# --------------------------------------------------------------------------------------------

principals = st.integers(min_value=1, max_value=1_000_000_000).map(lambda cents: D(cents).scaleb(-2))
rates = st.integers(min_value=0, max_value=3600).map(lambda bp: D(bp).scaleb(-4))  # 0 .. 36 %
terms = st.integers(min_value=1, max_value=360)
frequencies = st.sampled_from(list(Frequency))
methods = st.sampled_from(list(RepaymentMethod))
first_dates = st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 12, 31))


# --------------------------------------------------------------------------------------------
# Annuity against numpy-financial
# --------------------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(principal=principals, rate=rates, term=terms, frequency=frequencies, first=first_dates)
def test_annuity_matches_numpy_financial(principal, rate, term, frequency, first):
    rows = annuity(principal, rate, term, frequency, first)

    assert len(rows) == term
    assert_well_formed(rows, principal)
    assert rows[0].due_date == first

    totals = [r.principal + r.interest for r in rows]
    assert max(totals[:-1], default=CENT) - min(totals[:-1], default=CENT) <= CENT

    periodic = float(rate) / PERIODS_PER_YEAR[frequency]
    periods = np.arange(1, term + 1)
    with np.errstate(divide="ignore", invalid="ignore"):  # npf evaluates the rate-0 branch too
        payment = -float(npf.pmt(periodic, term, float(principal)))
        ppmt = -npf.ppmt(periodic, periods, term, float(principal))
        ipmt = -npf.ipmt(periodic, periods, term, float(principal))
    for r, p_ref, i_ref in zip(rows, ppmt, ipmt, strict=True):
        assert abs(float(r.principal) - p_ref) <= 0.01 + FLOAT_SLACK, (r, p_ref)
        assert abs(float(r.interest) - i_ref) <= 0.01 + FLOAT_SLACK, (r, i_ref)
        assert abs(float(r.principal + r.interest) - payment) <= 0.01 + FLOAT_SLACK, (r, payment)


def test_annuity_twelve_thousand_at_twelve_percent():
    rows = annuity("12000.00", "0.12", 12)

    # Independent: A = P r / (1 - (1 + r)^-n) in exact rational arithmetic, r = 1 % a month.
    r = Fraction(1, 100)
    exact = Fraction(12000) * r / (1 - (1 + r) ** -12)
    assert Fraction("1066.185") < exact < Fraction("1066.19")  # so the payment rounds to 1066.19
    assert [row.total for row in rows[:-1]] == [D("1066.19")] * 11
    assert (rows[0].principal, rows[0].interest) == (D("946.19"), D("120.00"))  # 1 % of 12,000
    assert (rows[-1].principal, rows[-1].interest) == (D("1055.62"), D("10.56"))
    assert sum(row.principal for row in rows) == D("12000.00")
    assert rows[-1].due_date == date(2024, 12, 15)

    # Rounding the cumulative principal alone would give period 2 principal 955.64, so interest
    # 1066.19 - 955.64 = 110.55 against an exact 110.538...: more than a minor unit off.
    balance = Fraction(12000) - (exact - Fraction(12000) * r)
    assert abs(Fraction("110.55") - balance * r) > Fraction(1, 100)
    assert abs(Fraction(str(rows[1].interest)) - balance * r) <= Fraction(1, 100)


def test_annuity_total_steps_a_minor_unit_only_when_it_must():
    # A fixed q(payment) here would put some interest 0.0149 from the exact figure.
    principal, rate, term = D("7479409.00"), D("0.2084"), 120
    rows = annuity(principal, rate, term)
    periodic = float(rate) / 12
    payment = -float(npf.pmt(periodic, term, float(principal)))
    assert round(payment, 2) == 148733.60
    totals = [r.principal + r.interest for r in rows[:-1]]
    assert set(totals) == {D("148733.60"), D("148733.61")}
    assert totals.count(D("148733.60")) > 100
    interest = -npf.ipmt(periodic, np.arange(1, term + 1), term, float(principal))
    assert all(abs(float(r.interest) - i) <= 0.01 for r, i in zip(rows, interest, strict=True))


def test_annuity_at_zero_rate_splits_principal_without_negative_interest():
    rows = annuity("1000.00", "0", 3)
    # The odd cent goes to the last installment, so the others all pay q(1000 / 3).
    assert [r.principal for r in rows] == [D("333.33"), D("333.33"), D("333.34")]
    assert all(r.interest == 0 for r in rows)

    # With a fixed q(P/n) payment this case gave interest of -0.01 in periods 2, 4, 7, ...
    rows = annuity("796408.70", "0", 16)
    assert_well_formed(rows, D("796408.70"))
    assert all(r.interest == 0 for r in rows)
    assert {r.principal for r in rows} <= {D("49775.54"), D("49775.55")}


def test_annuity_single_period():
    (row,) = annuity("500.00", "0.24", 1)
    assert (row.principal, row.interest) == (D("500.00"), D("10.00"))


# --------------------------------------------------------------------------------------------
# Every method and frequency
# --------------------------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(
    principal=principals,
    rate=st.one_of(rates, st.integers(min_value=0, max_value=99_999).map(lambda bp: D(bp).scaleb(-4))),
    term=st.integers(min_value=1, max_value=600),
    method=methods,
    frequency=frequencies,
    first=first_dates,
    fee=st.integers(min_value=0, max_value=10_000).map(lambda cents: D(cents).scaleb(-2)),
)
def test_every_method_is_well_formed(principal, rate, term, method, frequency, first, fee):
    rows = generate_schedule(
        principal=principal,
        annual_rate=rate,
        term=term,
        method=method,
        frequency=frequency,
        first_due_date=first,
        fee_per_installment=fee,
    )
    assert_well_formed(rows, principal)
    assert all(r.fee == fee for r in rows)
    dates = due_dates(first_due_date=first, frequency=frequency, count=term)
    if method is RepaymentMethod.BULLET:
        assert len(rows) == 1
        assert rows[0].due_date == dates[-1]
    else:
        assert len(rows) == term
        assert [r.due_date for r in rows] == dates
    if method is RepaymentMethod.ANNUITY:
        totals = [r.principal + r.interest for r in rows[:-1]]
        assert max(totals, default=CENT) - min(totals, default=CENT) <= CENT


@settings(max_examples=60, deadline=None)
@given(
    units=st.integers(min_value=1, max_value=10**9),
    rate=rates,
    term=terms,
    method=methods,
    frequency=frequencies,
)
def test_whole_unit_currency(units, rate, term, method, frequency):
    rows = generate_schedule(
        principal=D(units),
        annual_rate=rate,
        term=term,
        method=method,
        frequency=frequency,
        first_due_date=date(2024, 3, 1),
        currency="JPY",
    )
    assert_well_formed(rows, D(units), currency="JPY")


@settings(max_examples=100, deadline=None)
@given(principal=principals, rate=rates, term=terms, frequency=frequencies)
def test_equal_principal_parts_and_interest_on_balance(principal, rate, term, frequency):
    rows = generate_schedule(
        principal=principal,
        annual_rate=rate,
        term=term,
        method=RepaymentMethod.EQUAL_PRINCIPAL,
        frequency=frequency,
        first_due_date=date(2024, 1, 1),
    )
    parts = [r.principal for r in rows]
    assert max(parts) - min(parts) <= CENT
    periodic = float(rate) / PERIODS_PER_YEAR[frequency]
    outstanding = principal
    for r in rows:
        assert abs(float(r.interest) - float(outstanding) * periodic) <= 0.005 + FLOAT_SLACK
        outstanding -= r.principal
    assert outstanding == 0


@settings(max_examples=100, deadline=None)
@given(principal=principals, rate=rates, term=terms, frequency=frequencies)
def test_interest_only_and_bullet(principal, rate, term, frequency):
    common = dict(
        principal=principal, annual_rate=rate, term=term, frequency=frequency, first_due_date=date(2024, 1, 1)
    )
    periodic = float(rate) / PERIODS_PER_YEAR[frequency]

    rows = generate_schedule(method=RepaymentMethod.INTEREST_ONLY, **common)
    assert [r.principal for r in rows] == [D("0.00")] * (term - 1) + [principal]
    assert len({r.interest for r in rows}) == 1
    assert abs(float(rows[0].interest) - float(principal) * periodic) <= 0.005 + FLOAT_SLACK

    (row,) = generate_schedule(method=RepaymentMethod.BULLET, **common)
    assert row.principal == principal
    assert abs(float(row.interest) - float(principal) * periodic * term) <= 0.005 + FLOAT_SLACK


def test_equal_principal_by_hand():
    rows = generate_schedule(
        principal=D("1200.00"),
        annual_rate=D("0.12"),
        term=12,
        method=RepaymentMethod.EQUAL_PRINCIPAL,
        frequency=Frequency.MONTHLY,
        first_due_date=date(2024, 2, 1),
    )
    assert [r.principal for r in rows] == [D("100.00")] * 12
    # 1 % a month on 1200, 1100, ..., 100.
    assert [r.interest for r in rows] == [D(n) for n in range(12, 0, -1)]


def test_interest_only_and_bullet_by_hand():
    common = dict(
        principal=D("10000.00"),
        annual_rate=D("0.12"),
        term=6,
        frequency=Frequency.MONTHLY,
        first_due_date=date(2024, 1, 31),
    )
    rows = generate_schedule(method=RepaymentMethod.INTEREST_ONLY, **common)
    assert [(r.principal, r.interest) for r in rows] == [(D("0"), D("100"))] * 5 + [(D("10000"), D("100"))]

    (row,) = generate_schedule(method=RepaymentMethod.BULLET, **common)
    assert (row.number, row.due_date) == (1, date(2024, 6, 30))
    assert (row.principal, row.interest) == (D("10000"), D("600"))


def test_fee_is_quantised_onto_every_installment():
    rows = annuity("3000.00", "0.10", 3, fee_per_installment=D("5.005"))
    assert [r.fee for r in rows] == [D("5.01")] * 3
    assert str(rows[0].fee) == "5.01"
    assert rows[0].total == rows[0].principal + rows[0].interest + D("5.01")


def test_method_and_frequency_accept_their_string_values():
    rows = generate_schedule(
        principal=D("100.00"),
        annual_rate=D("0.05"),
        term=2,
        method="equal_principal",
        frequency="weekly",
        first_due_date=date(2024, 1, 1),
    )
    assert [r.due_date for r in rows] == [date(2024, 1, 1), date(2024, 1, 8)]


# --------------------------------------------------------------------------------------------
# Due dates
# --------------------------------------------------------------------------------------------


def test_month_end_anchor():
    assert due_dates(first_due_date=date(2024, 1, 31), frequency=Frequency.MONTHLY, count=4) == [
        date(2024, 1, 31),
        date(2024, 2, 29),
        date(2024, 3, 31),
        date(2024, 4, 30),
    ]
    assert due_dates(first_due_date=date(2023, 1, 31), frequency="monthly", count=3) == [
        date(2023, 1, 31),
        date(2023, 2, 28),
        date(2023, 3, 31),
    ]


def test_weekly_and_biweekly_steps():
    start = date(2024, 12, 25)
    assert due_dates(first_due_date=start, frequency=Frequency.WEEKLY, count=3) == [
        start,
        start + timedelta(days=7),
        start + timedelta(days=14),
    ]
    assert due_dates(first_due_date=start, frequency=Frequency.BIWEEKLY, count=2) == [
        start,
        date(2025, 1, 8),
    ]
    assert due_dates(first_due_date=start, frequency=Frequency.WEEKLY, count=0) == []


@given(first=first_dates, frequency=frequencies, count=st.integers(min_value=1, max_value=600))
def test_due_dates_strictly_increase(first, frequency, count):
    dates = due_dates(first_due_date=first, frequency=frequency, count=count)
    assert len(dates) == count
    assert dates[0] == first
    assert all(a < b for a, b in zip(dates, dates[1:], strict=False))


def test_schedule_past_the_calendar_is_refused():
    with pytest.raises(ScheduleError) as exc:
        annuity("100.00", "0.1", 600, first=date(9990, 1, 1))
    assert exc.value.field == "first_due_date"


# --------------------------------------------------------------------------------------------
# Input validation for generated schedules
# --------------------------------------------------------------------------------------------

VALID = dict(
    principal=D("1000.00"),
    annual_rate=D("0.18"),
    term=12,
    method=RepaymentMethod.ANNUITY,
    frequency=Frequency.MONTHLY,
    first_due_date=date(2024, 1, 1),
)


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"principal": D("0")}, "principal"),
        ({"principal": D("-5.00")}, "principal"),
        ({"principal": D("10.001")}, "principal"),
        ({"principal": 1000.0}, "principal"),
        ({"principal": D("NaN")}, "principal"),
        ({"annual_rate": D("-0.01")}, "annual_rate"),
        ({"annual_rate": D("10")}, "annual_rate"),
        ({"annual_rate": 0.18}, "annual_rate"),
        ({"term": 0}, "term"),
        ({"term": 601}, "term"),
        ({"term": 12.0}, "term"),
        ({"fee_per_installment": D("-0.01")}, "fee_per_installment"),
        ({"method": "balloon"}, "method"),
        ({"frequency": "daily"}, "frequency"),
        ({"first_due_date": "2024-01-01"}, "first_due_date"),
        ({"currency": "XXX"}, "currency"),
        ({"currency": "JPY", "principal": D("1000.50")}, "principal"),
    ],
)
def test_generate_schedule_rejects_bad_input(override, field):
    with pytest.raises(ScheduleError) as exc:
        generate_schedule(**{**VALID, **override})
    assert exc.value.field == field
    assert isinstance(exc.value, ValueError)


def test_generate_schedule_boundaries_are_accepted():
    assert len(generate_schedule(**{**VALID, "term": 600})) == 600
    assert len(generate_schedule(**{**VALID, "term": 1})) == 1
    assert generate_schedule(**{**VALID, "annual_rate": D("9.9999")})
    assert generate_schedule(**{**VALID, "principal": D("0.01")})


# --------------------------------------------------------------------------------------------
# Explicit (partner) schedules
# --------------------------------------------------------------------------------------------

START = date(2024, 1, 1)


def explicit(*rows):
    return [ExplicitInstallment(*row) for row in rows]


def test_explicit_schedule_is_numbered_and_quantised():
    rows = validate_explicit_schedule(
        principal=D("300"),
        start_date=START,
        installments=explicit(
            (date(2024, 2, 1), D("100"), D("3.5")),
            (date(2024, 3, 1), D("100.00"), D("2"), D("1.25")),
            (date(2024, 4, 1), D("100.0"), D("1.00")),
        ),
    )
    assert rows == [
        ScheduledInstallment(1, date(2024, 2, 1), D("100.00"), D("3.50"), D("0.00")),
        ScheduledInstallment(2, date(2024, 3, 1), D("100.00"), D("2.00"), D("1.25")),
        ScheduledInstallment(3, date(2024, 4, 1), D("100.00"), D("1.00"), D("0.00")),
    ]
    assert [str(r.principal) for r in rows] == ["100.00"] * 3


def test_explicit_schedule_round_trips_a_generated_one():
    generated = annuity("12000.00", "0.12", 12, first=date(2024, 2, 1))
    rows = validate_explicit_schedule(
        principal=D("12000.00"),
        start_date=START,
        installments=[ExplicitInstallment(r.due_date, r.principal, r.interest, r.fee) for r in generated],
    )
    assert rows == generated


GOOD = [
    (date(2024, 2, 1), D("500.00"), D("10.00")),
    (date(2024, 3, 1), D("500.00"), D("5.00")),
]


def with_change(index, **change):
    rows = explicit(*GOOD)
    row = rows[index]
    rows[index] = ExplicitInstallment(
        change.get("due_date", row.due_date),
        change.get("principal", row.principal),
        change.get("interest", row.interest),
        change.get("fee", row.fee),
    )
    return rows


@pytest.mark.parametrize(
    ("installments", "field"),
    [
        ([], "installments"),
        (with_change(0, due_date=START), "installments[0].due_date"),
        (with_change(0, due_date=date(2023, 12, 31)), "installments[0].due_date"),
        (with_change(1, due_date=date(2024, 2, 1)), "installments[1].due_date"),
        (with_change(1, due_date=date(2024, 1, 15)), "installments[1].due_date"),
        (with_change(1, principal=D("-1.00")), "installments[1].principal"),
        (with_change(0, interest=D("-0.01")), "installments[0].interest"),
        (with_change(1, fee=D("-2")), "installments[1].fee"),
        (with_change(0, principal=D("499.995")), "installments[0].principal"),
        (with_change(1, interest=D("5.001")), "installments[1].interest"),
        (with_change(1, fee=D("0.125")), "installments[1].fee"),
        (with_change(0, interest=10.0), "installments[0].interest"),
        (with_change(1, principal=D("499.99")), "installments"),
        (with_change(1, principal=D("500.01")), "installments"),
    ],
)
def test_explicit_schedule_errors_name_the_field(installments, field):
    with pytest.raises(ScheduleError) as exc:
        validate_explicit_schedule(principal=D("1000.00"), start_date=START, installments=installments)
    assert exc.value.field == field


def test_explicit_schedule_sum_error_gives_both_figures():
    with pytest.raises(ScheduleError) as exc:
        validate_explicit_schedule(
            principal=D("1000.00"), start_date=START, installments=with_change(1, principal=D("499.99"))
        )
    assert exc.value.field == "installments"
    assert "999.99" in exc.value.message
    assert "1000.00" in exc.value.message


def test_explicit_schedule_respects_the_currency():
    rows = validate_explicit_schedule(
        principal=D("1000"),
        start_date=START,
        installments=explicit((date(2024, 2, 1), D("1000"), D("15"))),
        currency="JPY",
    )
    assert rows[0].interest == D("15")
    with pytest.raises(ScheduleError) as exc:
        validate_explicit_schedule(
            principal=D("1000"),
            start_date=START,
            installments=explicit((date(2024, 2, 1), D("1000"), D("15.50"))),
            currency="JPY",
        )
    assert exc.value.field == "installments[0].interest"
