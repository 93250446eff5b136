"""``/api/v1/cases/``: who sees which cases, every filter, the detail's delinquency figures, holds,
promise and transitions, and a list whose query count does not grow with the page.

The helpers here (loans past due by a number of days as of today, a scan, team membership) are shared
by the other case-work test modules."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal as D
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from debt_collections import services
from debt_collections.models import Case, TeamMember
from debt_collections.scan import scan_run
from loans.models import ContactPoint
from tests.api.conftest import staff_client
from tests.factories import BorrowerFactory, make_loan, pay

pytestmark = pytest.mark.django_db

SHANGHAI = ZoneInfo("Asia/Shanghai")
URL = "/api/v1/cases/"


def today():
    return timezone.localdate()


def loan_late(partner, dpd: int, *, borrower=None, ref=None, **extra):
    """A monthly loan of ``partner`` whose first instalment fell due ``dpd`` days ago, unpaid."""
    first_due = today() - timedelta(days=dpd)
    borrower = borrower or BorrowerFactory(partner=partner)
    start = first_due - timedelta(days=31)
    return make_loan(borrower=borrower, external_ref=ref, start_date=start, first_due_date=first_due, **extra)


def scan():
    """Today's scan: opens a case for every late loan (call it once a test, after making the loans)."""
    scan_run(as_of=today())


def case_of(loan) -> Case:
    return Case.objects.get(loan=loan, status="open")


def late_case(partner, dpd: int = 10, **extra) -> Case:
    loan = loan_late(partner, dpd, **extra)
    scan()
    return case_of(loan)


def join_team(user, case: Case) -> None:
    TeamMember.objects.create(team=case.team, user=user)


def phone(borrower, value="13800138000", **extra) -> ContactPoint:
    return ContactPoint.objects.create(borrower=borrower, kind="phone", value=value, is_primary=True, **extra)


def shanghai(day, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=SHANGHAI)


def ids(response) -> set[int]:
    assert response.status_code == 200, response.content
    return {row["id"] for row in response.json()["results"]}


def assert_problem(response, status: int, slug: str | None = None) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status and body["title"] and body["detail"]
    if slug:
        assert body["type"] == f"/api/problems/{slug}"
    return body


# --- who sees what ---------------------------------------------------------------------------------


@pytest.fixture
def two_cases(partner, other_partner):
    mine, theirs = loan_late(partner, 10), loan_late(other_partner, 45)  # the call and notice teams'
    scan()
    return case_of(mine), case_of(theirs)


def test_a_partner_lists_its_own_cases_and_another_partners_case_is_not_found(api, two_cases):
    mine, theirs = two_cases
    assert ids(api.get(URL)) == {mine.pk}
    assert api.get(f"{URL}{mine.pk}/").status_code == 200
    assert_problem(api.get(f"{URL}{theirs.pk}/"), 404, "not-found")
    assert_problem(api.get(f"{URL}{theirs.pk}/contacts/"), 404)


def test_anonymous_is_401_and_a_key_without_cases_read_is_403(partner, client_for, two_cases):
    mine, _theirs = two_cases
    anonymous = APIClient(HTTP_ACCEPT_LANGUAGE="en")
    for url in (URL, f"{URL}{mine.pk}/"):
        body = assert_problem(anonymous.get(url), 401, "not-authenticated")
        assert body["detail"]
    loans_only = client_for(partner, scopes=["loans:read"])
    body = assert_problem(loans_only.get(URL), 403, "forbidden")
    assert "cases:read" in body["detail"]
    assert client_for(partner, scopes=["cases:read"]).get(URL).status_code == 200


def test_collectors_see_their_teams_cases_supervisors_and_compliance_every_case(two_cases):
    mine, theirs = two_cases
    outsider, member = staff_client("collector"), staff_client("collector")
    join_team(member.user, mine)
    assert ids(outsider.get(URL)) == set()
    assert_problem(outsider.get(f"{URL}{mine.pk}/"), 404)
    assert ids(member.get(URL)) == {mine.pk}
    assert member.get(f"{URL}{mine.pk}/").status_code == 200
    assigned = staff_client("collector")
    services.cases_reassign(
        cases=[theirs], assignee=assigned.user, actor=staff_client("supervisor").user, reason="cover"
    )
    assert ids(assigned.get(URL)) == {theirs.pk}
    for group in ("supervisor", "compliance_officer"):
        assert ids(staff_client(group).get(URL)) == {mine.pk, theirs.pk}


def test_staff_without_a_case_role_are_403(two_cases):
    assert_problem(staff_client(None).get(URL), 403, "forbidden")


def test_nothing_but_get_on_cases(api, two_cases):
    mine, _theirs = two_cases
    assert_problem(api.post(URL, {}, format="json"), 405, "method-not-allowed")
    assert_problem(api.delete(f"{URL}{mine.pk}/"), 405)
    assert_problem(api.get(f"{URL}abc/"), 404)
    assert_problem(api.get(f"{URL}99999999999999999999999/"), 404)


# --- filters ---------------------------------------------------------------------------------------


@pytest.fixture
def book(partner):
    """Cases at 5, 20, 45 and 100 days past due (early warning, follow-up call, notice,
    restructuring), one of them assigned, and a closed one."""
    loans = {dpd: loan_late(partner, dpd, ref=f"L-{dpd}") for dpd in (5, 20, 45, 100)}
    cured = loan_late(partner, 12, ref="L-cured")
    pay(cured, "1066.19", today() - timedelta(days=12), as_of=today())
    scan()
    cases = {dpd: case_of(loan) for dpd, loan in loans.items()}
    return cases


def test_the_cases_open_with_the_stage_their_days_past_due_call_for(api, book):
    stages = {dpd: case.stage for dpd, case in book.items()}
    assert stages == {5: "early_warning", 20: "follow_up_call", 45: "notice", 100: "restructuring"}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("stage=follow_up_call", {20}),
        ("stage=restructuring", {100}),
        ("status=open", {5, 20, 45, 100}),
        ("status=closed", set()),
        ("bucket=1-30", {5, 20}),
        ("bucket=31-60", {45}),
        ("bucket=91-180", {100}),
        ("dpd_min=20", {20, 45, 100}),
        ("dpd_min=21", {45, 100}),
        ("dpd_max=20", {5, 20}),
        ("dpd_max=19", {5}),
        ("dpd_min=20&dpd_max=45", {20, 45}),
        ("dpd_min=0&dpd_max=0", set()),
        ("loan_ref=L-45", {45}),
        ("loan_ref=nope", set()),
        ("team=notice-team", {45}),
        ("stage=notice&bucket=1-30", set()),
    ],
)
def test_each_filter(api, book, query, expected):
    by_id = {case.pk: dpd for dpd, case in book.items()}
    assert {by_id[i] for i in ids(api.get(f"{URL}?{query}"))} == expected


def test_filter_by_loan_id_team_id_and_assignee_by_id_or_username(api, book):
    case = book[45]
    assert ids(api.get(f"{URL}?loan={case.loan_id}")) == {case.pk}
    assert ids(api.get(f"{URL}?team={case.team_id}")) == {case.pk}
    collector = staff_client("collector").user
    services.cases_reassign(
        cases=[case], assignee=collector, actor=staff_client("supervisor").user, reason="x"
    )
    assert ids(api.get(f"{URL}?assignee={collector.pk}")) == {case.pk}
    assert ids(api.get(f"{URL}?assignee={collector.username}")) == {case.pk}
    assert ids(api.get(f"{URL}?assignee=nobody")) == set()


def test_a_closed_case_is_listed_with_status_closed(api, partner):
    loan = loan_late(partner, 10)
    scan()
    case = case_of(loan)
    services.case_close(
        case=case, close_reason="settled", actor=staff_client("supervisor").user, reason="settled by phone"
    )
    assert ids(api.get(f"{URL}?status=closed")) == {case.pk}
    assert ids(api.get(f"{URL}?status=open")) == set()


@pytest.mark.parametrize(
    "query",
    [
        "stage=lawsuit", "status=maybe", "bucket=2-3", "dpd_min=-1", "dpd_max=ten", "dpd_min=1.5",
        "dpd_max=99999999999", "loan=0", "loan=abc", "loan=99999999999999999999999",
    ],
)  # fmt: skip
def test_a_bad_filter_is_400_not_a_500(api, book, query):
    body = assert_problem(api.get(f"{URL}?{query}"), 400, "invalid-input")
    assert query.split("=")[0] in body["errors"]


def test_pages_follow_the_cursor(api, book):
    first = api.get(f"{URL}?page_size=3").json()
    assert len(first["results"]) == 3 and first["next"]
    second = api.get(first["next"]).json()
    assert len(second["results"]) == 1 and second["next"] is None
    all_ids = [r["id"] for r in first["results"] + second["results"]]
    assert all_ids == sorted(all_ids) and set(all_ids) == {c.pk for c in book.values()}


# --- what a case says ------------------------------------------------------------------------------


def test_list_rows_carry_the_loan_and_its_days_past_due(api, partner, book):
    case = book[45]
    row = next(r for r in api.get(URL).json()["results"] if r["id"] == case.pk)
    assert row["loan"] == case.loan_id and row["loan_ref"] == "L-45" and row["partner"] == partner.code
    assert row["dpd"] == 45 and row["bucket"] == "31-60" and row["stage"] == "notice"
    assert row["currency"] == "CNY" and row["status"] == "open"
    assert isinstance(row["overdue_total"], str) and D(row["overdue_total"]) > 0
    assert row["team"]["code"] == "notice-team" and row["assignee"] is None


def test_the_detail_has_the_delinquency_figures_as_strings(api, partner):
    case = late_case(partner, 45)
    loan = case.loan
    loan.refresh_from_db()
    body = api.get(f"{URL}{case.pk}/").json()
    figures = body["delinquency"]
    assert figures["as_of"] == today().isoformat() and figures["dpd"] == 45
    assert figures["bucket"] == "31-60" and figures["currency"] == "CNY"
    assert figures["oldest_unpaid_due_date"] == (today() - timedelta(days=45)).isoformat()
    overdue = figures["overdue"]
    assert overdue["principal"] == str(loan.overdue_principal)
    assert overdue["interest"] == str(loan.overdue_interest)
    assert D(overdue["total"]) == loan.overdue_total and overdue["total"].count(".") == 1
    assert figures["outstanding_principal"] == str(loan.outstanding_principal)
    assert body["borrower_ref"] == loan.borrower.external_ref
    assert body["holds"] == [] and body["open_promise"] is None
    opened = body["transitions"][0]
    assert opened["from_stage"] == "" and opened["to_stage"] == "notice" and opened["by"] is None


def test_the_detail_shows_holds_in_force_the_open_promise_and_a_persons_move(api, partner):
    case = late_case(partner, 10)
    supervisor = staff_client("supervisor").user
    services.case_hold_add(case=case, reason="dispute", note="Disputes the fee.", actor=supervisor)
    released = services.case_hold_add(case=case, reason="other", note="Travelling.", actor=supervisor)
    services.case_hold_release(hold=released, actor=supervisor)
    plan = [(today() + timedelta(days=3), "300.00"), (today() + timedelta(days=10), "200.50")]
    services.promise_record(case=case, actor=supervisor, instalments=plan)
    services.case_move(case=case, to_stage="notice", actor=supervisor, reason="letter needed")
    body = api.get(f"{URL}{case.pk}/").json()
    assert [h["reason"] for h in body["holds"]] == ["dispute"]
    assert "note" not in body["holds"][0]
    promise = body["open_promise"]
    assert promise["amount"] == "500.50" and promise["status"] == "open"
    assert [(i["number"], i["amount"]) for i in promise["instalments"]] == [(1, "300.00"), (2, "200.50")]
    latest = body["transitions"][0]
    assert (latest["from_stage"], latest["to_stage"], latest["by"]) == (
        "follow_up_call", "notice", supervisor.username,
    )  # fmt: skip
    assert body["stage"] == "notice"


# --- cost --------------------------------------------------------------------------------------------


def queries_for(client, url) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


def test_the_list_costs_the_same_few_queries_for_2_or_30_cases(
    partner, client_for, django_assert_max_num_queries
):
    for _ in range(30):
        loan_late(partner, 10)
    scan()
    client = client_for(partner, scopes=["cases:read"])
    client.get(URL)  # the key's last use is recorded at most once a minute: not on the measured requests
    two = queries_for(client, f"{URL}?page_size=2&stage=follow_up_call")
    assert two <= 3  # the key, the page (and at most a savepoint)
    with django_assert_max_num_queries(two):
        response = client.get(f"{URL}?page_size=30&stage=follow_up_call&dpd_min=5&bucket=1-30")
    assert len(response.json()["results"]) == 30


def test_a_staff_list_is_bounded_too(partner, django_assert_max_num_queries):
    for _ in range(12):
        loan_late(partner, 10)
    scan()
    member = staff_client("collector")
    join_team(member.user, Case.objects.first())
    member.get(URL)
    with django_assert_max_num_queries(6):
        assert len(member.get(URL).json()["results"]) == 12
