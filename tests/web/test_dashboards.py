"""The dashboards: each selector against hand-built data with known answers, who may open the page and
the CSV downloads, scope by team, and a query count that does not grow with the rows."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, time, timedelta
from decimal import Decimal as D

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from compliance.models import AuditEvent, ContactAttempt
from debt_collections import dashboards as data
from debt_collections.models import Case, CaseContact, PromiseToPay, StageTransition, Team, TeamMember
from debt_collections.scan import scan_run
from loans import services
from loans.models import BucketSnapshot, Loan
from loans.snapshots import bucket_snapshot_take
from tests.api.test_cases import case_of, join_team, loan_late, scan
from tests.debt_collections.conftest import make_user
from tests.factories import BorrowerFactory, LoanProductFactory, PartnerFactory, make_loan, pay
from tests.web.conftest import page

# Sign-in and permissions 4, the filter's choices 3, the charts 11, a savepoint pair, PostgreSQL's SET.
QUERIES = 21

pytestmark = pytest.mark.django_db

URL = "/work/dashboards/"


def today() -> date:
    return timezone.localdate()


def flt(**overrides) -> data.DashboardFilter:
    values = {
        "start": today() - timedelta(days=29),
        "end": today(),
        "currency": "CNY",
        "several_currencies": True,
    }
    return data.DashboardFilter(**{**values, **overrides})


def team(code: str) -> Team:
    return Team.objects.get(code=code)


def noon(day: date) -> datetime:
    return datetime.combine(day, time(12), tzinfo=timezone.get_current_timezone())


def csv_rows(response) -> list[list[str]]:
    body = response.content.decode("utf-8")
    assert body.startswith("\ufeff")
    return list(csv.reader(io.StringIO(body[1:])))


# --- hand-built cases ------------------------------------------------------------------------------


def hand_case(*, stays, team_code="call-team", closed=None, assignee=None) -> Case:
    """A case with its transitions: ``stays`` is [(stage, entered on)], in order; ``closed`` is
    (reason, on) or None (still open)."""
    first_stage, opened_on = stays[0]
    last_stage, last_entered = stays[-1]
    case = Case.objects.create(
        loan=make_loan(),
        status="closed" if closed else "open",
        stage=last_stage,
        stage_entered_on=last_entered,
        opened_on=opened_on,
        closed_on=closed[1] if closed else None,
        close_reason=closed[0] if closed else "",
        team=team(team_code),
        assignee=assignee,
    )
    actor, _ = get_user_model().objects.get_or_create(username="mover")
    previous = ""
    for stage, entered in stays:
        StageTransition.objects.create(
            case=case,
            from_stage=previous,
            to_stage=stage,
            at=noon(entered),
            as_of=entered,
            actor=actor,
            reason="r",
        )
        previous = stage
    if closed:
        StageTransition.objects.create(
            case=case,
            from_stage=previous,
            to_stage="",
            close_reason=closed[0],
            at=noon(closed[1]),
            as_of=closed[1],
            actor=actor,
            reason="r",
        )
    return case


# --- 1. ageing --------------------------------------------------------------------------------------


@pytest.fixture
def book(partner):
    """Three late loans (10, 45 and 100 days: the call team, the notice team, the restructuring desk)
    and a current one, after today's scan."""
    loans = [loan_late(partner, dpd) for dpd in (10, 45, 100)]
    make_loan(
        borrower=BorrowerFactory(partner=partner),
        start_date=today() - timedelta(days=10),
        first_due_date=today() + timedelta(days=20),
    )
    scan()
    for loan in loans:
        loan.refresh_from_db()
    return loans


@pytest.mark.parametrize("several_currencies", [True, False])
def test_ageing_counts_loans_and_sums_the_overdue_amount_per_bucket(book, several_currencies):
    ten, forty_five, hundred = book
    rows = {
        r.bucket: r for r in data.arrears_ageing(flt(several_currencies=several_currencies), today=today())
    }

    assert list(rows) == ["1-30", "31-60", "61-90", "91-180", "180+"]
    assert (rows["1-30"].loans, rows["1-30"].overdue) == (1, ten.overdue_total)
    assert (rows["31-60"].loans, rows["31-60"].overdue) == (1, forty_five.overdue_total)
    assert (rows["91-180"].loans, rows["91-180"].overdue) == (1, hundred.overdue_total)
    assert (rows["61-90"].loans, rows["61-90"].overdue) == (0, D("0.00"))
    assert isinstance(rows["1-30"].overdue, D) and ten.overdue_total > 0


def test_ageing_in_a_team_scope_a_partner_and_another_currency(book, partner):
    ten = book[0]
    scoped = data.arrears_ageing(flt(team_ids=(team("call-team").pk,)), today=today())
    assert [(r.bucket, r.loans) for r in scoped if r.loans] == [("1-30", 1)]
    assert (
        data.arrears_ageing(flt(team_ids=(team("call-team").pk,)), today=today())[0].overdue
        == ten.overdue_total
    )
    other = PartnerFactory(code="other")
    assert sum(r.loans for r in data.arrears_ageing(flt(partner_id=other.pk), today=today())) == 0
    assert sum(r.loans for r in data.arrears_ageing(flt(partner_id=partner.pk), today=today())) == 3
    assert sum(r.loans for r in data.arrears_ageing(flt(currency="USD"), today=today())) == 0
    assert sum(r.loans for r in data.arrears_ageing(flt(team_ids=()), today=today())) == 0


# --- 2. snapshots: trend and roll rates ----------------------------------------------------------------


@pytest.fixture
def two_month_ends():
    """Snapshots at the last two month ends: A 1-30 -> 31-60, B 1-30 -> current, C 31-60 -> 31-60,
    D 31-60 -> paid off, E 180+ -> written off; F in 1-30 only at the second date."""
    first, second = data.month_ends(up_to=today(), count=2)
    loans = {name: make_loan() for name in "ABCDEF"}
    Loan.objects.filter(pk=loans["D"].pk).update(status="paid_off", closed_on=second - timedelta(days=3))
    Loan.objects.filter(pk=loans["E"].pk).update(status="written_off", closed_on=second)
    snap = [
        (first, "A", "1-30", "100.00"),
        (first, "B", "1-30", "50.00"),
        (first, "C", "31-60", "300.00"),
        (first, "D", "31-60", "200.00"),
        (first, "E", "180+", "900.00"),
        (second, "A", "31-60", "150.00"),
        (second, "C", "31-60", "330.00"),
        (second, "F", "1-30", "40.00"),
    ]
    BucketSnapshot.objects.bulk_create(
        BucketSnapshot(as_of=day, loan=loans[name], bucket=bucket, days_past_due=5, overdue_total=D(amount))
        for day, name, bucket, amount in snap
    )
    return first, second, loans


def test_the_ageing_trend_counts_and_sums_each_snapshot_date(two_month_ends):
    first, second, _loans = two_month_ends
    trend = [(r.as_of, r.bucket, r.loans, r.overdue) for r in data.arrears_trend(flt(months=2))]
    assert trend == [
        (first, "1-30", 2, D("150.00")),
        (first, "31-60", 2, D("500.00")),
        (first, "180+", 1, D("900.00")),
        (second, "1-30", 1, D("40.00")),
        (second, "31-60", 2, D("480.00")),
    ]
    # One month end: only the latest date; and so no pair for roll rates.
    assert {r.as_of for r in data.arrears_trend(flt(months=1))} == {second}
    assert data.roll_rates(flt(months=1)) == []


def test_roll_rates_between_two_snapshot_dates(two_month_ends):
    first, second, _loans = two_month_ends
    rows = data.roll_rates(flt(months=2))

    assert [(r.from_bucket, r.to_state, r.loans, r.share) for r in rows] == [
        ("1-30", "current", 1, D("0.5")),
        ("1-30", "31-60", 1, D("0.5")),
        ("31-60", "31-60", 1, D("0.5")),
        ("31-60", "paid_off", 1, D("0.5")),
        ("180+", "written_off", 1, D("1")),
    ]
    assert {(r.from_date, r.to_date) for r in rows} == {(first, second)}

    matrix = data.roll_matrix(rows)
    assert (matrix.from_date, matrix.to_date) == (first, second)
    assert matrix.rows["1-30"][0] == 2 and matrix.rows["1-30"][1]["31-60"] == (1, D("0.5"))
    assert matrix.rows["61-90"] == (0, dict.fromkeys(data.ROLL_STATES, (0, None)))

    forward = {r.bucket: (r.loans, r.rolled, r.rate) for r in data.roll_forward(rows)}
    assert forward == {"1-30": (2, 1, D("0.5")), "31-60": (2, 0, D("0")), "180+": (1, 1, D("1"))}


def test_roll_rates_in_a_team_scope_follow_the_case_open_at_the_first_date(two_month_ends):
    first, _second, loans = two_month_ends
    Case.objects.create(
        loan=loans["A"], stage="follow_up_call", stage_entered_on=first - timedelta(days=5),
        opened_on=first - timedelta(days=5), team=team("call-team"),
    )  # fmt: skip
    Case.objects.create(  # opened after the first date: not the team's then
        loan=loans["C"], stage="follow_up_call", stage_entered_on=first + timedelta(days=1),
        opened_on=first + timedelta(days=1), team=team("call-team"),
    )  # fmt: skip
    rows = data.roll_rates(flt(months=2, team_ids=(team("call-team").pk,)))
    assert [(r.from_bucket, r.to_state, r.loans) for r in rows] == [("1-30", "31-60", 1)]
    assert data.arrears_trend(flt(months=2, team_ids=(team("notice-team").pk,))) == []


# --- 3. cure rates ---------------------------------------------------------------------------------


@pytest.fixture
def stays():
    start, end = today() - timedelta(days=29), today()
    fuc, notice = "follow_up_call", "notice"
    hand_case(stays=[(fuc, start - timedelta(10))], closed=("cured", start + timedelta(5)))
    hand_case(stays=[(fuc, start + timedelta(2))], closed=("paid_off", start + timedelta(10)))
    hand_case(
        stays=[(fuc, start + timedelta(1)), (notice, start + timedelta(5))],
        closed=("settled", start + timedelta(8)),
        team_code="notice-team",
    )
    hand_case(stays=[(fuc, start - timedelta(5))])  # still open
    hand_case(  # closed before the period
        stays=[(fuc, start - timedelta(40)), (notice, start - timedelta(35))],
        closed=("cured", start - timedelta(30)),
        team_code="notice-team",
    )
    hand_case(  # left the call stage before the period, cured from notice within it
        stays=[(fuc, start - timedelta(20)), (notice, start - timedelta(3))],
        closed=("cured", start + timedelta(3)),
        team_code="notice-team",
    )
    hand_case(stays=[(fuc, start + timedelta(1))], closed=("restructured_performing", end))
    hand_case(stays=[(fuc, start + timedelta(1))], closed=("written_off", end))
    hand_case(stays=[(fuc, end - timedelta(1))], closed=("cured", end + timedelta(1)))  # cured after it


def test_cure_rate_by_stage_counts_cases_in_the_stage_and_cures_straight_from_it(stays):
    rows = {r.stage: (r.cases, r.cured, r.rate) for r in data.cure_rates(flt())}
    # Call stage: cured, paid off, settled-after-notice, open, restructured-performing, written off,
    # cured after the period: 7 cases, 3 cured from it.
    assert rows["follow_up_call"] == (7, 3, D("0.4286"))
    assert rows["notice"] == (2, 1, D("0.5"))
    assert rows["early_warning"] == (0, 0, None)
    assert list(rows) == ["early_warning", "follow_up_call", "notice", "restructuring", "legal_referral"]


def test_cure_rate_in_a_team_scope_covers_the_stages_it_works_and_the_cases_it_holds(stays):
    call = team("call-team")
    rows = {
        r.stage: (r.cases, r.cured)
        for r in data.cure_rates(flt(team_ids=(call.pk,)), team_stages=("follow_up_call",))
    }
    assert rows["follow_up_call"] == (7, 3)
    assert rows["notice"] == (0, 0)  # the notice stays are the notice team's cases
    notice = team("notice-team")
    rows = {
        r.stage: (r.cases, r.cured)
        for r in data.cure_rates(flt(team_ids=(notice.pk,)), team_stages=("notice",))
    }
    assert rows["notice"] == (2, 1)
    assert rows["follow_up_call"] == (1, 0)  # the settled case, which the notice team holds now


# --- 4. promises -----------------------------------------------------------------------------------


def test_promise_kept_rate_by_week_of_the_pay_by_date(collector):
    early, late = today() - timedelta(days=20), today() - timedelta(days=6)

    def promise(status, due, amount="100.00"):
        case = hand_case(stays=[("follow_up_call", due - timedelta(days=30))])
        PromiseToPay.objects.create(
            case=case, amount=D(amount), promised_date=due, made_on=due - timedelta(days=7), status=status,
            resolved_on=None if status == "open" else due, created_by=collector,
        )  # fmt: skip

    for status in ("kept", "kept", "broken", "open"):
        promise(status, early)
    promise("partly_kept", late, "250.00")
    promise("cancelled", late)
    promise("kept", today() - timedelta(days=40))  # due before the period

    weeks = data.promise_outcomes(flt())

    monday = lambda day: day - timedelta(days=day.weekday())  # noqa: E731
    assert [w.week for w in weeks] == [monday(early), monday(late)]
    assert weeks[0].counts == {"kept": 2, "partly_kept": 0, "broken": 1, "open": 1, "cancelled": 0}
    assert (weeks[0].promised, weeks[0].kept_rate) == (D("400.00"), D("0.6667"))
    assert weeks[1].counts["partly_kept"] == 1 and weeks[1].counts["cancelled"] == 1
    assert (weeks[1].promised, weeks[1].kept_rate) == (D("350.00"), D("0"))
    assert data.promise_outcomes(flt(team_ids=(team("notice-team").pk,))) == []


# --- 5. collected and 6. productivity ----------------------------------------------------------------


@pytest.fixture
def collections(partner, collector, other_collector, team_case):
    """The team case (opened 15 days ago, assigned to ``collector``) with 150.00 + 50.00 paid 5 days
    ago, a reversed 70.00 the same day, 30.00 paid before the case opened; a loan with no case paid
    the same day too. ``collector`` logged three contacts and a promise; ``other_collector`` is in the
    team and did nothing."""
    opened = today() - timedelta(days=15)
    Case.objects.filter(pk=team_case.pk).update(opened_on=opened, stage_entered_on=opened, assignee=collector)
    join_team(other_collector, team_case)
    loan, day = team_case.loan, today() - timedelta(days=5)
    pay(loan, D("150.00"), day, as_of=today())
    pay(loan, D("50.00"), day, as_of=today())
    bounced = pay(loan, D("70.00"), day, as_of=today())
    services.payment_reverse(payment=bounced, reason="bounced", as_of=today())
    pay(loan, D("30.00"), today() - timedelta(days=20), as_of=today())
    no_case = loan_late(partner, 3)  # made after the scan: no case
    pay(no_case, D("999.00"), day, as_of=today())
    for outcome, right_party in (("right_party", True), ("no_answer", False), ("promise_to_pay", True)):
        attempt = ContactAttempt.objects.create(
            borrower=loan.borrower, loan=loan, channel="call", direction="outbound", at=timezone.now(),
            connected=True, answered=right_party, right_party=right_party,
        )  # fmt: skip
        CaseContact.objects.create(case=team_case, attempt=attempt, outcome=outcome, created_by=collector)
    old = ContactAttempt.objects.create(
        borrower=loan.borrower, loan=loan, channel="call", direction="outbound", at=timezone.now()
    )
    CaseContact.objects.create(case=team_case, attempt=old, outcome="busy", created_by=collector)
    CaseContact.objects.filter(attempt=old).update(created_at=timezone.now() - timedelta(days=45))
    PromiseToPay.objects.create(
        case=team_case, amount=D("500.00"), promised_date=today() + timedelta(days=3), made_on=today(),
        created_by=collector,
    )  # fmt: skip
    return team_case, day


def test_collected_by_day_counts_posted_payments_on_loans_with_an_open_case(collections):
    case, day = collections
    rows = {r.day: (r.payments, r.amount) for r in data.collected_by_day(flt())}

    assert len(rows) == 30 and min(rows) == today() - timedelta(days=29) and max(rows) == today()
    assert rows[day] == (2, D("200.00"))  # 150 + 50; the reversed 70 and the loan with no case left out
    assert rows[today() - timedelta(days=20)] == (0, D("0.00"))  # before the case opened
    assert sum(amount for _n, amount in rows.values()) == D("200.00")
    assert data.collected_by_day(flt(team_ids=(team("notice-team").pk,)))[24].amount == D("0.00")
    assert data.collected_by_day(flt(team_ids=(case.team_id,)))[24] == data.CollectedDay(day, 2, D("200.00"))
    assert data.collected_by_day(flt(currency="USD"))[24].amount == D("0.00")
    assert data.collected_by_day(flt(partner_id=PartnerFactory(code="x").pk))[24].amount == D("0.00")


def test_collector_productivity(collections, collector, other_collector, supervisor):
    case, _day = collections
    rows = {r.name: r for r in data.collector_productivity(flt(team_ids=(case.team_id,)))}

    assert set(rows) == {"col", "col2"}  # the team's members; the supervisor did nothing
    mine = rows["col"]
    assert (mine.attempts, mine.right_party, mine.promises) == (3, 2, 1)  # the 45-day-old contact is out
    assert (mine.promised, mine.collected, mine.right_party_rate) == (D("500.00"), D("200.00"), D("0.6667"))
    theirs = rows["col2"]
    assert (theirs.attempts, theirs.promises, theirs.collected, theirs.right_party_rate) == (
        0,
        0,
        D("0.00"),
        None,
    )
    assert [r.name for r in data.collector_productivity(flt(team_ids=(case.team_id,)))] == ["col", "col2"]
    assert data.collector_productivity(flt(team_ids=())) == []


# --- the page: who may open it -----------------------------------------------------------------------


def test_anonymous_is_sent_to_sign_in(db):
    for url in (URL, "/work/dashboards/ageing.csv"):
        response = page().get(url)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize("role", ["collector", "outsider"])
def test_collectors_and_people_without_a_role_are_refused(request, role, team_case):
    user = request.getfixturevalue(role)
    for url in (URL, "/work/dashboards/ageing.csv", "/work/dashboards/productivity.csv"):
        assert page(user).get(url).status_code == 403
    assert not AuditEvent.objects.filter(event_type="export").exists()


@pytest.mark.parametrize("role", ["supervisor", "senior", "compliance_officer"])
def test_supervisors_and_compliance_officers_open_it(request, role, book):
    response = page(request.getfixturevalue(role)).get(URL)
    assert response.status_code == 200
    content = response.content.decode()
    for title in ("Arrears ageing by bucket", "Roll rates month over month", "Cure rate by stage",
                  "Promise kept rate", "Amount collected by day", "Collector productivity"):  # fmt: skip
        assert title in content
    assert "vendor/chart.umd.min.js" in content and "site/charts.js" in content
    for canvas in ("chart-ageing-0", "chart-cure_rates-0", "chart-collected-0"):  # with their data
        assert f'data-chart="{canvas}"' in content and f'id="{canvas}" type="application/json"' in content


def test_a_supervisor_sees_only_the_teams_they_supervise(book, supervisor, supervisor2, compliance_officer):
    call = team("call-team")
    call.supervisors.add(supervisor)

    mine = page(supervisor).get(URL)
    assert [row.loans for _label, row in mine.context["charts"][0].context["now"]] == [1, 0, 0, 0, 0]
    assert [(t.pk, t.name) for t in mine.context["scope"].teams] == [(call.pk, call.name)]
    # Another team's figures cannot be asked for: the choice is refused, nothing is shown.
    refused = page(supervisor).get(URL, {"team": team("notice-team").pk})
    assert refused.status_code == 200 and refused.context["charts"] is None
    assert "Select a valid choice" in refused.content.decode()
    assert (
        page(supervisor).get("/work/dashboards/ageing.csv", {"team": team("notice-team").pk}).status_code
        == 200
    )
    assert not AuditEvent.objects.filter(event_type="export").exists()

    nobody = page(supervisor2).get(URL)
    assert "You supervise no team yet" in nobody.content.decode()
    assert sum(row.loans for _label, row in nobody.context["charts"][0].context["now"]) == 0

    everything = page(compliance_officer).get(URL)
    assert sum(row.loans for _label, row in everything.context["charts"][0].context["now"]) == 3


def test_filters_are_validated(book, compliance_officer):
    client = page(compliance_officer)
    for params, message in (
        ({"start": "2025-13-01"}, "Enter a valid date"),
        (
            {"start": today().isoformat(), "end": (today() - timedelta(days=1)).isoformat()},
            "must end on or after",
        ),
        ({"start": "2020-01-01"}, "at most 366 days"),
        ({"end": (today() + timedelta(days=1)).isoformat()}, "cannot end after today"),
        ({"months": "0"}, "greater than or equal to 1"),
        ({"currency": "XXX"}, "Select a valid choice"),
    ):
        response = client.get(URL, params)
        assert response.status_code == 200 and response.context["charts"] is None, params
        assert message in response.content.decode(), params
    partial = client.get(URL, {"months": "99"}, HTTP_HX_REQUEST="true")
    assert partial.status_code == 422 and b"<html" not in partial.content
    assert b"less than or equal to 24" in partial.content


def test_an_htmx_request_gets_the_charts_only(book, compliance_officer):
    response = page(compliance_officer).get(URL, {"months": "3"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    content = response.content.decode()
    assert "<html" not in content and 'id="dashboard-charts"' in content
    assert "months=3" in content  # the CSV links keep the filters
    assert response["Vary"] and "HX-Request" in response["Vary"]


# --- CSV -------------------------------------------------------------------------------------------


def test_the_collected_csv_has_the_same_rows_headers_and_a_bom_and_is_audited(
    collections, compliance_officer
):
    _case, day = collections
    response = page(compliance_officer).get("/work/dashboards/collected.csv")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    start = today() - timedelta(days=29)
    assert response["Content-Disposition"] == f'attachment; filename="collected_{start}_{today()}.csv"'
    rows = csv_rows(response)
    assert rows[0] == ["Value date", "Payments", "Amount collected", "Currency"]
    assert len(rows) == 31
    assert [day.isoformat(), "2", "200.00", "CNY"] in rows
    assert [start.isoformat(), "0", "0.00", "CNY"] == rows[1]
    event = AuditEvent.objects.get(event_type="export")
    assert (event.actor_id, event.subject_type, event.subject_id) == (
        compliance_officer.pk,
        "dashboard",
        "collected",
    )


def test_each_chart_has_a_csv(collections, two_month_ends, stays, compliance_officer):
    client = page(compliance_officer)
    expected_headers = {
        "ageing": ["Date", "Source", "Bucket", "Loans", "Amount overdue", "Currency"],
        "roll_rates": [
            "From snapshot",
            "To snapshot",
            "Bucket then",
            "State at the next snapshot",
            "Loans",
            "Share (%)",
        ],
        "cure_rates": ["Stage", "Cases in the stage", "Cured from the stage", "Cure rate (%)"],
        "promises": [
            "Week from",
            "kept",
            "partly kept",
            "broken",
            "open",
            "cancelled with the case",
            "Amount promised",
            "Currency",
            "Kept rate (%)",
        ],  # fmt: skip
        "collected": ["Value date", "Payments", "Amount collected", "Currency"],
        "productivity": [
            "Collector",
            "Attempts",
            "Right-party contacts",
            "Right-party rate (%)",
            "Promises",
            "Amount promised",
            "Collected",
            "Currency",
        ],  # fmt: skip
    }
    bodies = {}
    for chart, headers in expected_headers.items():
        response = client.get(f"/work/dashboards/{chart}.csv", {"months": "2"})
        assert response.status_code == 200, chart
        bodies[chart] = csv_rows(response)
        assert bodies[chart][0] == headers, chart
    # The seven hand-built call-stage stays and the team case (opened in the call stage by the scan).
    assert ["follow-up call", "8", "3", "37.50"] in bodies["cure_rates"]
    first, second, _ = two_month_ends
    assert [
        first.isoformat(),
        second.isoformat(),
        "over 180 days (M6+)",
        "written off",
        "1",
        "100.00",
    ] in bodies["roll_rates"]
    assert [today().isoformat(), "today", "1-30 days (M1)"] in [r[:3] for r in bodies["ageing"]]
    assert [first.isoformat(), "snapshot", "over 180 days (M6+)", "1", "900.00", "CNY"] in bodies["ageing"]
    assert ["col", "3", "2", "66.67", "1", "500.00", "200.00", "CNY"] in bodies["productivity"]
    assert AuditEvent.objects.filter(event_type="export").count() == 6
    assert client.get("/work/dashboards/nothing.csv").status_code == 404


def test_csv_in_chinese_keeps_the_bom_and_translated_headers(collections, compliance_officer):
    response = page(compliance_officer, language="zh-hans").get("/work/dashboards/collected.csv")
    assert response.status_code == 200
    rows = csv_rows(response)
    assert len(rows) == 31 and rows[0][3] in ("Currency", "币种")


# --- queries ---------------------------------------------------------------------------------------


def test_the_page_runs_a_bounded_number_of_queries(
    partner, compliance_officer, django_assert_max_num_queries
):
    """Every chart has rows (two currencies in the book, so the currency join is taken too), and
    three times as many rows cost no more queries."""

    def grow(n: int) -> None:
        loans = [loan_late(partner, dpd) for dpd in (12, 40, 75)[:n]]
        scan_run(as_of=today(), force=True)
        for loan in loans:
            case = case_of(loan)
            collector = make_user(f"c{case.pk}", "collector")
            TeamMember.objects.create(team=case.team, user=collector)
            Case.objects.filter(pk=case.pk).update(
                opened_on=today() - timedelta(days=20),
                stage_entered_on=today() - timedelta(days=20),
                assignee=collector,
            )
            pay(loan, D("10.00"), today() - timedelta(days=2), as_of=today())
            PromiseToPay.objects.create(
                case=case, amount=D("90.00"), promised_date=today() - timedelta(days=1),
                made_on=today() - timedelta(days=8), status="broken", resolved_on=today(),
                created_by=collector,
            )  # fmt: skip
        for as_of in data.month_ends(up_to=today(), count=2):
            bucket_snapshot_take(as_of=as_of, source="replay")

    make_loan(borrower=BorrowerFactory(partner=partner), product=LoanProductFactory(currency="USD"))
    grow(1)
    client = page(compliance_officer)
    client.get(URL)  # the session and permission caches
    with django_assert_max_num_queries(QUERIES) as first:
        assert client.get(URL).status_code == 200
    grow(3)
    with django_assert_max_num_queries(QUERIES) as second:
        response = client.get(URL)
    assert response.status_code == 200
    assert len(second.captured_queries) == len(first.captured_queries)
    rows = response.context["charts"][5].context["rows"]
    assert len(rows) == 4 and all(row.collected == D("10.00") for row in rows)


def test_the_csv_runs_a_bounded_number_of_queries(
    collections, compliance_officer, django_assert_max_num_queries
):
    client = page(compliance_officer)
    client.get(URL)
    # Sign-in and permissions 4, the filter's choices 3, the chart 4, the audit event 2, savepoints 4;
    # on PostgreSQL also the session settings and the audit chain's advisory lock.
    with django_assert_max_num_queries(19):
        assert client.get("/work/dashboards/productivity.csv").status_code == 200


def test_a_name_that_looks_like_a_formula_is_written_as_text(collections, collector, compliance_officer):
    collector.first_name, collector.last_name = '=HYPERLINK("http://x")', ""
    collector.save()
    rows = csv_rows(page(compliance_officer).get("/work/dashboards/productivity.csv"))
    assert ['\'=HYPERLINK("http://x")', "3", "2", "66.67"] in [row[:4] for row in rows]
