"""Promises to pay: recorded as one payment or a plan of instalments, decided by the scan (kept,
kept within the policy's tolerance, partly kept, broken), and what a failed one does to the case."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal as D

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse
from django.utils import timezone

from debt_collections import services, stages
from debt_collections.models import (
    Case,
    CollectionPolicy,
    OutboxEvent,
    PromiseInstalment,
    PromiseToPay,
    ScanChunk,
)
from debt_collections.scan import scan_run
from tests.debt_collections.conftest import make_user
from tests.factories import make_loan, pay

pytestmark = pytest.mark.django_db

FEB1 = date(2025, 2, 1)  # make_loan's first due date; each instalment of its loans is about 1066


def days(n: int) -> date:
    return FEB1 + timedelta(days=n)


@pytest.fixture
def case(db):
    loan = make_loan()
    scan_run(as_of=days(9))
    return Case.objects.get(loan=loan, status="open")


def promise(case, actor, *plan, as_of=None):
    return services.promise_record(
        case=case, actor=actor, instalments=[(days(n), amount) for n, amount in plan], as_of=as_of or days(9)
    )


def decided(p) -> tuple:
    p.refresh_from_db()
    return p.status, p.paid_amount, p.resolved_on


def set_tolerance(*, amount=None, days_=None):
    changes = {}
    if amount is not None:
        changes["promise_tolerance_amount"] = amount
    if days_ is not None:
        changes["promise_tolerance_days"] = days_
    CollectionPolicy.objects.filter(product__isnull=True).update(**changes)


def chunk_counts(as_of) -> tuple[int, int]:
    chunk = ScanChunk.objects.filter(run__as_of=as_of).get()
    return chunk.promises_kept, chunk.promises_broken


# --- the scan decides ----------------------------------------------------------------------------


def test_a_promise_paid_in_full_is_kept_as_soon_as_the_money_is_in(case, collector):
    p = promise(case, collector, (20, "500.00"))
    pay(case.loan, "500.00", days(11))
    scan_run(as_of=days(11))  # well before the date
    assert decided(p) == ("kept", D("500.00"), days(11))
    assert chunk_counts(days(11)) == (1, 0)
    case.refresh_from_db()
    assert case.broken_promises == 0
    assert not OutboxEvent.objects.filter(event_type="promise.broken").exists()
    assert p.history.latest("history_id").history_change_reason == "scan: promise kept"


def test_payments_before_the_promise_do_not_count(case, collector):
    pay(case.loan, "500.00", days(9))
    p = promise(case, collector, (20, "500.00"), as_of=days(10))
    scan_run(as_of=days(22))
    assert decided(p) == ("broken", D("0.00"), days(22))


def test_a_promise_short_by_no_more_than_the_tolerance_is_kept(case, collector):
    # The default policy forgives 1.00.
    p = promise(case, collector, (20, "1000.00"))
    pay(case.loan, "999.00", days(12))
    scan_run(as_of=days(12))
    assert decided(p) == ("kept", D("999.00"), days(12))


def test_short_by_more_than_the_tolerance_is_only_partly_kept(case, collector):
    p = promise(case, collector, (20, "1000.00"))
    pay(case.loan, "998.99", days(12))
    scan_run(as_of=days(12))
    assert decided(p)[0] == "open"
    scan_run(as_of=days(22))
    assert decided(p) == ("partly_kept", D("998.99"), days(22))


def test_a_partly_paid_promise_fails_as_partly_kept_and_counts_as_broken(case, collector):
    p = promise(case, collector, (20, "1000.00"))
    pay(case.loan, "300.00", days(15))
    scan_run(as_of=days(22))
    assert decided(p) == ("partly_kept", D("300.00"), days(22))
    assert chunk_counts(days(22)) == (0, 1)
    case.refresh_from_db()
    assert case.broken_promises == 1
    event = OutboxEvent.objects.get(event_type="promise.broken")
    assert event.subject_id == p.pk
    assert event.payload["status"] == "partly_kept"
    assert D(event.payload["paid_amount"]) == D("300.00")
    assert (event.payload["missed_instalment"], event.payload["missed_due_date"]) == (1, "2025-02-21")
    assert p.history.latest("history_id").history_change_reason == "scan: promise partly kept"


def test_nothing_paid_by_the_date_and_its_tolerance_is_broken(case, collector):
    p = promise(case, collector, (20, "500.00"))
    scan_run(as_of=days(21))  # the day after the date: within the default day of tolerance
    assert decided(p)[0] == "open"
    scan_run(as_of=days(22))
    assert decided(p) == ("broken", D("0.00"), days(22))
    assert OutboxEvent.objects.get(event_type="promise.broken").payload["status"] == "broken"


def test_the_tolerance_days_come_from_the_policy(case, collector):
    set_tolerance(days_=3)
    p = promise(case, collector, (20, "500.00"))
    scan_run(as_of=days(23))  # date + 3
    assert decided(p)[0] == "open"
    scan_run(as_of=days(24))
    assert decided(p)[0] == "broken"


def test_a_products_own_policy_tolerance_wins_over_the_default(collector):
    loan = make_loan()
    CollectionPolicy.objects.create(
        name="Generous", product=loan.product, promise_tolerance_amount="50.00", promise_tolerance_days=0
    )
    scan_run(as_of=days(9))
    case = Case.objects.get(loan=loan, status="open")
    p = promise(case, collector, (20, "500.00"))
    pay(loan, "460.00", days(12))
    scan_run(as_of=days(12))
    assert decided(p)[0] == "kept"


# --- instalment plans ----------------------------------------------------------------------------


def test_a_plan_whose_second_instalment_is_missed_fails_then(case, collector):
    p = promise(case, collector, (12, "300.00"), (20, "300.00"), (30, "400.00"))
    assert (p.amount, p.promised_date) == (D("1000.00"), days(30))
    pay(case.loan, "300.00", days(12))
    scan_run(as_of=days(14))  # the first is paid: open
    assert decided(p)[0] == "open"
    scan_run(as_of=days(22))  # the second's date and its day of tolerance passed, still 300 paid
    assert decided(p) == ("partly_kept", D("300.00"), days(22))
    event = OutboxEvent.objects.get(event_type="promise.broken")
    assert (event.payload["missed_instalment"], event.payload["missed_due_date"]) == (2, "2025-02-21")
    assert D(event.payload["due_by_then"]) == D("600.00")


def test_a_plan_paid_instalment_by_instalment_is_kept(case, collector):
    p = promise(case, collector, (12, "300.00"), (20, "300.00"))
    pay(case.loan, "300.00", days(12))
    scan_run(as_of=days(14))
    pay(case.loan, "300.00", days(20))
    scan_run(as_of=days(22))
    assert decided(p) == ("kept", D("600.00"), days(22))


def test_a_plan_fails_on_its_first_instalment_when_nothing_comes(case, collector):
    p = promise(case, collector, (12, "300.00"), (40, "300.00"))
    scan_run(as_of=days(14))
    assert decided(p) == ("broken", D("0.00"), days(14))


def test_an_instalment_paid_late_within_the_tolerance_days_is_on_time(case, collector):
    p = promise(case, collector, (12, "300.00"), (20, "300.00"))
    pay(case.loan, "300.00", days(13))
    scan_run(as_of=days(13))
    scan_run(as_of=days(14))
    assert decided(p)[0] == "open"


# --- escalation ----------------------------------------------------------------------------------


def test_an_open_promise_freezes_escalation_and_a_broken_one_resumes_it_in_the_same_scan(case, collector):
    assert case.stage == "follow_up_call"
    p = promise(case, collector, (20, "200.00"), (33, "300.00"))
    pay(case.loan, "200.00", days(20))
    scan_run(as_of=days(32))  # 32 DPD calls for notice; the promise is open
    case.refresh_from_db()
    assert case.stage == "follow_up_call"
    priority_before = case.priority
    scan_run(as_of=days(35))
    case.refresh_from_db()
    assert decided(p)[0] == "partly_kept"
    assert case.stage == "notice" and case.broken_promises == 1
    case.loan.refresh_from_db()
    assert case.priority == stages.priority_score(
        stage=stages.Stage.NOTICE, dpd=case.loan.days_past_due(days(35)), overdue=case.loan.overdue_total,
        broken_promises=1,
    )  # fmt: skip
    without_the_broken_promise = stages.priority_score(
        stage=stages.Stage.NOTICE, dpd=case.loan.days_past_due(days(35)), overdue=case.loan.overdue_total,
        broken_promises=0,
    )  # fmt: skip
    assert case.priority > without_the_broken_promise and case.priority > priority_before


# --- recording: bad input, rights ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("plan", "field"),
    [
        ([(20, "100"), (12, "100")], "instalments"),  # out of order
        ([(12, "100"), (12, "100")], "instalments"),  # the same date twice
        ([(5, "100")], "instalments"),  # before the day it is made
        ([(12, "0")], "instalments"),
        ([(12, "-5")], "instalments"),
        ([(12, "abc")], "instalments"),
        ([(12 + n, "10") for n in range(13)], "instalments"),
        ([], "instalments"),
        ([(9 + 181, "100")], "instalments"),  # beyond 180 days
    ],
    ids=["out-of-order", "same-date", "past", "zero", "negative", "not-a-number", "13", "none", "181-days"],
)
def test_bad_instalments_are_refused_and_nothing_is_written(case, collector, plan, field):
    with pytest.raises(ValidationError) as excinfo:
        promise(case, collector, *plan)
    assert field in excinfo.value.message_dict
    assert not PromiseToPay.objects.exists() and not PromiseInstalment.objects.exists()


def test_twelve_instalments_within_180_days_are_fine(case, collector):
    p = promise(case, collector, *[(9 + 15 * n, "10") for n in range(1, 13)])
    assert p.instalments.count() == 12 and p.amount == D("120.00") and p.promised_date == days(189)


def test_the_single_amount_and_date_form_still_works_and_is_checked(case, collector):
    for kwargs, field in [
        ({"amount": "0", "promised_date": days(20)}, "amount"),
        ({"amount": "100", "promised_date": days(8)}, "promised_date"),
        ({"amount": "100"}, "promised_date"),
        ({"amount": "100", "promised_date": days(20), "instalments": [(days(20), "100")]}, "instalments"),
    ]:
        with pytest.raises(ValidationError) as excinfo:
            services.promise_record(case=case, actor=collector, as_of=days(9), **kwargs)
        assert field in excinfo.value.message_dict
    p = services.promise_record(
        case=case, actor=collector, amount="250.555", promised_date=days(20), as_of=days(9)
    )
    assert p.amount == D("250.56")
    assert [(i.number, i.due_date, i.amount) for i in p.instalments.all()] == [(1, days(20), D("250.56"))]


def test_one_open_promise_per_case(case, collector):
    promise(case, collector, (20, "100"))
    with pytest.raises(ValidationError) as excinfo:
        promise(case, collector, (25, "100"))
    assert "case" in excinfo.value.message_dict
    assert PromiseToPay.objects.filter(case=case).count() == 1


def test_recording_a_promise_needs_the_right(case):
    with pytest.raises(PermissionDenied):
        promise(case, make_user("nobody"), (20, "100"))
    assert not PromiseToPay.objects.exists()


# --- the admin -----------------------------------------------------------------------------------


def test_the_admin_records_an_instalment_plan_through_the_service(client, case):
    staff = make_user("desk", "collector", is_staff=True)
    client.force_login(staff)
    url = reverse("admin:debt_collections_promisetopay_add")
    today = timezone.localdate()  # the admin records promises made today
    first, second = today + timedelta(days=10), today + timedelta(days=20)
    bad = client.post(url, {"case": case.pk, "instalments": f"{second} 100\n{first} 100"})
    assert bad.status_code == 200 and not PromiseToPay.objects.exists()
    assert "instalments" in bad.context["adminform"].form.errors
    garbled = client.post(url, {"case": case.pk, "instalments": "next Tuesday, a bit"})
    assert garbled.status_code == 200 and not PromiseToPay.objects.exists()
    good = client.post(url, {"case": case.pk, "instalments": f"{first} 300\n\n{second}  700.50\n"})
    assert good.status_code == 302, good.context["adminform"].form.errors
    p = PromiseToPay.objects.get(case=case)
    assert (p.amount, p.promised_date, p.created_by) == (D("1000.50"), second, staff)
    assert list(p.instalments.values_list("due_date", "amount")) == [
        (first, D("300.00")),
        (second, D("700.50")),
    ]
    page = client.get(reverse("admin:debt_collections_promisetopay_change", args=[p.pk]))
    assert page.status_code == 200 and "700.50" in page.content.decode()


def test_closing_the_case_settles_its_open_promise_kept_if_cured_else_cancelled(case, collector, supervisor):
    p = promise(case, collector, (20, "500.00"))
    pay(case.loan, "100.00", days(10))
    services.case_close(
        case=case, close_reason="written_off", actor=supervisor, reason="Uncollectable", as_of=days(10)
    )
    assert decided(p) == ("cancelled", D("100.00"), days(10))
    scan_run(as_of=days(40))  # the date passes: a promise on a closed case is not decided again
    assert decided(p) == ("cancelled", D("100.00"), days(10))
    assert not OutboxEvent.objects.filter(event_type="promise.broken").exists()

    cured = make_loan()
    scan_run(as_of=days(41))
    cured_case = Case.objects.get(loan=cured, status="open")
    kept = promise(cured_case, collector, (60, "100.00"), as_of=days(41))
    pay(cured, "20000.00", days(42))  # pays everything off: the scan closes the case
    scan_run(as_of=days(42))
    assert decided(kept) == ("kept", D("20000.00"), days(42))
