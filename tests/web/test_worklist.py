"""The worklist (``/work/``): who sees which cases, the tabs, search, every filter, paging, the
"call now?" badge (and the batch contact check behind it, held to ``check_contact``), and a query
count that does not grow with the rows shown."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from compliance.contact import check_contact
from compliance.models import BorrowerFlag, ChannelOptOut, ContactAttempt
from debt_collections import selectors, services
from debt_collections.contacts import contact_log
from debt_collections.models import Case, CaseHold
from debt_collections.views import worklist as worklist_views
from loans.models import ContactPoint
from tests.api.test_cases import case_of, join_team, loan_late, phone, scan, shanghai
from tests.factories import BorrowerFactory, pay
from tests.web.conftest import page

pytestmark = pytest.mark.django_db

URL = "/work/"


def today():
    return selectors.business_date()


def rows(response) -> list[int]:
    """The case ids on the page, in order."""
    assert response.status_code == 200, response.content[:2000]
    return [case.pk for case in response.context["rows"]]


def assign(user, *cases) -> None:
    Case.objects.filter(pk__in=[c.pk for c in cases]).update(assignee=user)


def backdate(case: Case, days: int = 7) -> Case:
    """Open the case a week ago, so a contact logged yesterday falls inside it."""
    day = today() - timedelta(days=days)
    Case.objects.filter(pk=case.pk).update(opened_on=day, stage_entered_on=day)
    case.refresh_from_db()
    return case


def yesterday_at(hour: int) -> datetime:
    return shanghai(today() - timedelta(days=1), hour)


@pytest.fixture
def cases(partner, collector, other_collector, supervisor):
    """``team_case`` (in the call team: the collector is a member, the supervisor supervises it;
    unassigned), ``mine`` (assigned to the collector, in the notice team the collector is not in) and
    ``theirs`` (the notice team's, assigned to someone else)."""
    loans = loan_late(partner, 10), loan_late(partner, 40), loan_late(partner, 45)
    scan()
    team_case, mine, theirs = (case_of(loan) for loan in loans)
    join_team(collector, team_case)
    team_case.team.supervisors.add(supervisor)
    assign(collector, mine)
    assign(other_collector, theirs)
    return team_case, mine, theirs


# --- who sees what ---------------------------------------------------------------------------------


def test_anonymous_is_sent_to_sign_in(cases):
    response = page().get(URL)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/?next=/work/")


def test_someone_without_a_case_role_is_refused(outsider, cases):
    assert page(outsider).get(URL).status_code == 403


def test_a_collector_sees_their_own_cases_and_their_teams_but_never_another_teams(cases, collector):
    team_case, mine, theirs = cases
    client = page(collector)
    assert rows(client.get(URL)) == [mine.pk]  # "mine" first: a collector's own cases
    assert set(rows(client.get(URL, {"scope": "teams"}))) == {team_case.pk}
    # "all" is not a collector's tab: it falls back to their own cases.
    assert rows(client.get(URL, {"scope": "all"})) == [mine.pk]
    for scope in ("mine", "teams", "all"):
        assert theirs.pk not in rows(client.get(URL, {"scope": scope}))


def test_a_supervisor_starts_on_the_teams_they_supervise(cases, supervisor, supervisor2):
    team_case, _mine, _theirs = cases
    assert rows(page(supervisor).get(URL)) == [team_case.pk]
    assert rows(page(supervisor2).get(URL)) == []


def test_a_compliance_officer_reads_every_open_case_by_priority(cases, compliance_officer):
    response = page(compliance_officer).get(URL)
    expected = list(
        Case.objects.filter(status="open").order_by("-priority", "id").values_list("id", flat=True)
    )
    assert rows(response) == expected and len(expected) == 3
    assert response.context["scope"] == "all"
    assert b"Assignee" in response.content


def test_closed_cases_are_not_on_the_worklist(cases, collector):
    _team_case, mine, _theirs = cases
    Case.objects.filter(pk=mine.pk).update(status="closed", closed_on=today(), close_reason="settled")
    assert rows(page(collector).get(URL)) == []


def test_rows_link_to_the_case_and_the_table_takes_the_keyboard(cases, collector):
    _team_case, mine, _theirs = cases
    html = page(collector).get(URL).content.decode()
    assert "data-keyboard-rows" in html and "data-search" in html
    assert f'data-href="/work/cases/{mine.pk}/"' in html
    assert mine.loan.borrower.full_name in html and mine.loan.external_ref in html
    assert mine.loan.borrower.national_id not in html


# --- search ----------------------------------------------------------------------------------------


@pytest.fixture
def searchable(partner, collector):
    """Two cases of the collector's: Zhang San (phone 13800138000, e-mail) and Li Si."""
    zhang = BorrowerFactory(partner=partner, full_name="张三丰")
    li = BorrowerFactory(partner=partner, full_name="李四")
    loans = [loan_late(partner, 12, borrower=zhang, ref="REF-ZHANG-1"), loan_late(partner, 12, borrower=li)]
    scan()
    found = [case_of(loan) for loan in loans]
    assign(collector, *found)
    phone(zhang, "13800138000")
    ContactPoint.objects.create(borrower=zhang, kind="email", value="Zhang.San@Example.com", is_primary=True)
    # Li Si's reference contact has a number we must not find Li Si by (a third party's).
    ContactPoint.objects.create(
        borrower=li, kind="phone", value="13900139000", is_third_party=True, relationship="brother"
    )
    return found


@pytest.mark.parametrize(
    "term",
    [
        "张三",
        "张三丰",
        "+86 138 0013 8000",
        "13800138000",
        "138-0013-8000",
        "zhang.san@example.com",
        "REF-ZHANG-1",
    ],
)
def test_search_finds_the_case_by_name_prefix_phone_email_or_loan_ref(searchable, collector, term):
    zhang_case, _li_case = searchable
    assert rows(page(collector).get(URL, {"q": term})) == [zhang_case.pk]


@pytest.mark.parametrize(
    "term", ["三丰", "王", "13800138001", "nobody@example.com", "REF-ZHANG", "13900139000"]
)
def test_search_by_an_unknown_term_finds_nothing(searchable, collector, term):
    assert rows(page(collector).get(URL, {"q": term})) == []


def test_search_never_shows_another_teams_case(searchable, other_collector):
    assert rows(page(other_collector).get(URL, {"q": "张三", "scope": "teams"})) == []


def test_the_phone_search_goes_through_the_hash_index_not_the_numbers(searchable, collector):
    condition = selectors.search_filter("+86 138 0013 8000")
    sql = str(Case.objects.filter(condition).query)
    assert "value_hash" in sql and "13800138000" not in sql


# --- filters ---------------------------------------------------------------------------------------


def test_filter_by_stage_and_by_bucket(partner, collector):
    loans = [loan_late(partner, 10), loan_late(partner, 40), loan_late(partner, 70)]
    scan()
    call, notice, restructuring = (case_of(loan) for loan in loans)
    assign(collector, call, notice, restructuring)
    client = page(collector)
    assert rows(client.get(URL, {"stage": "notice"})) == [notice.pk]
    assert rows(client.get(URL, {"bucket": "61-90"})) == [restructuring.pk]
    assert rows(client.get(URL, {"bucket": "1-30", "stage": "follow_up_call"})) == [call.pk]
    assert rows(client.get(URL, {"bucket": "1-30", "stage": "notice"})) == []


def test_an_unknown_filter_value_is_shown_as_an_error_and_left_out(team_case, collector):
    assign(collector, team_case)
    response = page(collector).get(URL, {"stage": "bogus", "bucket": "1-30"})
    assert rows(response) == [team_case.pk]
    assert response.context["form"].errors["stage"]
    assert b"errorlist" in response.content


def test_promise_due_today_lists_promises_with_an_instalment_due_today_not_yet_paid(partner, collector):
    loans = [loan_late(partner, 10) for _ in range(4)]
    scan()
    due, paid, later, none = (case_of(loan) for loan in loans)
    assign(collector, due, paid, later, none)
    services.promise_record(
        case=due, actor=collector, instalments=[(today(), "300.00"), (today() + timedelta(days=7), "300.00")]
    )
    services.promise_record(case=paid, actor=collector, amount="300.00", promised_date=today())
    pay(paid.loan, Decimal("300.00"), today())
    services.promise_record(
        case=later, actor=collector, amount="300.00", promised_date=today() + timedelta(days=3)
    )

    client = page(collector)
    assert rows(client.get(URL, {"promise_due": "on"})) == [due.pk]
    response = client.get(URL)
    by_id = {case.pk: case for case in response.context["rows"]}
    assert by_id[due.pk].promise_due.due_date == today() and by_id[due.pk].promise_due.state == "today"
    assert by_id[due.pk].promise_due.amount == Decimal("300.00") and by_id[due.pk].promise_due.count == 2
    # The paid instalment is covered: nothing more is due on that promise.
    assert by_id[paid.pk].promise_due is None
    assert by_id[later.pk].promise_due.state == "later"
    assert by_id[none.pk].promise_due is None


def test_a_part_paid_promise_shows_what_is_left_of_the_instalment(team_case, collector):
    assign(collector, team_case)
    services.promise_record(case=team_case, actor=collector, amount="500.00", promised_date=today())
    pay(team_case.loan, Decimal("200.00"), today())
    assert rows(page(collector).get(URL, {"promise_due": "on"})) == [team_case.pk]
    row = selectors.worklist_rows([team_case.pk], as_of=today(), at=timezone.now())[0]
    assert row.promise_due.amount == Decimal("300.00")


def log(case, actor, outcome, hour, **extra):
    return contact_log(
        case=case,
        channel="call",
        outcome=outcome,
        actor=actor,
        contact_point=case.loan.borrower.contact_points.get(kind="phone"),
        occurred_at=yesterday_at(hour),
        **extra,
    )


def test_callback_due_lists_cases_whose_last_contact_asked_for_a_call_back_by_today(partner, collector):
    loans = [loan_late(partner, 10) for _ in range(4)]
    scan()
    due, future, called_back, quiet = (backdate(case_of(loan)) for loan in loans)
    assign(collector, due, future, called_back, quiet)
    for case in (due, future, called_back, quiet):
        phone(case.loan.borrower)
    log(due, collector, "callback_requested", 10, callback_on=today())
    log(future, collector, "callback_requested", 10, callback_on=today() + timedelta(days=2))
    log(called_back, collector, "callback_requested", 10, callback_on=today())
    log(called_back, collector, "no_answer", 11)  # the call back was made
    log(quiet, collector, "right_party", 10)

    client = page(collector)
    assert rows(client.get(URL, {"callback": "on"})) == [due.pk]
    by_id = {case.pk: case for case in client.get(URL).context["rows"]}
    assert by_id[due.pk].callback and by_id[future.pk].callback
    assert not by_id[called_back.pk].callback and not by_id[quiet.pk].callback


def test_holds_in_force_show_on_the_row(team_case, collector, supervisor):
    assign(collector, team_case)
    services.case_hold_add(
        case=team_case, reason=CaseHold.Reason.DISPUTE, note="borrower disputes", actor=supervisor
    )
    response = page(collector).get(URL)
    (row,) = response.context["rows"]
    assert [hold.reason for hold in row.active_holds] == ["dispute"]
    assert b"borrower disputes" in response.content


def test_filters_survive_paging_and_the_htmx_partial_is_the_table_alone(partner, collector, monkeypatch):
    monkeypatch.setattr(selectors, "WORKLIST_PAGE_SIZE", 2)
    loans = [loan_late(partner, 10 + i) for i in range(5)]
    scan()
    found = [case_of(loan) for loan in loans]
    assign(collector, *found)
    client = page(collector)
    first = client.get(URL, {"stage": "follow_up_call"})
    expected = list(
        Case.objects.filter(pk__in=[c.pk for c in found])
        .order_by("-priority", "id")
        .values_list("id", flat=True)
    )
    assert rows(first) == expected[:2]
    html = first.content.decode()
    assert re.search(r'href="/work/\?stage=follow_up_call&amp;page=2"', html), html
    second = client.get(URL, {"stage": "follow_up_call", "page": "2"})
    assert rows(second) == expected[2:4]
    assert rows(client.get(URL, {"stage": "follow_up_call", "page": "99"})) == expected[4:]
    assert rows(client.get(URL, {"page": "x"})) == expected[:2]

    partial = client.get(
        URL,
        {"stage": "follow_up_call", "page": "2"},
        HTTP_HX_REQUEST="true",
        HTTP_HX_TARGET="worklist-results",
    )
    assert rows(partial) == expected[2:4]
    assert b"<html" not in partial.content and b"data-keyboard-rows" in partial.content


# --- "call now?" -----------------------------------------------------------------------------------


def badge(response, case) -> selectors.CallBadge:
    (row,) = [r for r in response.context["rows"] if r.pk == case.pk]
    return row.call


def test_the_badge_says_allowed_at_ten_and_not_until_eight_at_eleven_at_night(
    team_case, collector, monkeypatch
):
    assign(collector, team_case)
    client = page(collector)
    monkeypatch.setattr(worklist_views, "clock", lambda: shanghai(today(), 10))
    response = client.get(URL)
    assert badge(response, team_case).allowed
    assert b"call-allowed" in response.content

    monkeypatch.setattr(worklist_views, "clock", lambda: shanghai(today(), 23))
    response = client.get(URL)
    call = badge(response, team_case)
    assert not call.allowed and call.reason == "quiet_hours"
    assert call.next_allowed_at == shanghai(today() + timedelta(days=1), 8)
    html = response.content.decode()
    assert "call-denied" in html and "not until" in html and "quiet hours" in html


def test_the_badge_for_a_borrower_without_a_phone(partner, collector):
    loan = loan_late(partner, 10)
    scan()
    assign(collector, case_of(loan))
    (row,) = page(collector).get(URL).context["rows"]
    assert row.call.no_phone and not row.call.allowed


def scenario_borrowers(partner, supervisor):
    """Borrowers the contact rules treat differently, each with their own phone (one without)."""
    now = timezone.now()
    day = today()
    made = {}

    def borrower(name, *, phone_extra=None, **fields):
        person = BorrowerFactory(partner=partner, full_name=name, **fields)
        point = phone(person, **(phone_extra or {}))
        made[name] = (person, point)
        return person, point

    borrower("plain")
    person, point = borrower("three answered calls today")
    for hour in (8, 9, 9):
        ContactAttempt.objects.create(
            borrower=person, contact_point=point, channel="call", direction="outbound",
            at=shanghai(day, hour, 30), connected=True, answered=True,
        )  # fmt: skip
    person, _point = borrower("disputed")
    BorrowerFlag.objects.create(borrower=person, kind="dispute", reason="x", set_by=supervisor, set_at=now)
    person, _point = borrower("expired flag")
    BorrowerFlag.objects.create(
        borrower=person, kind="do_not_contact", reason="x", set_by=supervisor, set_at=now,
        until=day - timedelta(days=2),
    )  # fmt: skip
    person, _point = borrower("released flag")
    BorrowerFlag.objects.create(
        borrower=person, kind="deceased", reason="x", set_by=supervisor, set_at=now, released_at=now,
        released_by=supervisor,
    )  # fmt: skip
    person, _point = borrower("opted out everywhere")
    ChannelOptOut.objects.create(borrower=person, channel="call", at=now)
    person, point = borrower("opted out at this number")
    ChannelOptOut.objects.create(borrower=person, channel="call", contact_point=point, at=now)
    person, _point = borrower("sms opt-out only")
    ChannelOptOut.objects.create(borrower=person, channel="sms", at=now)
    borrower("point opted out", phone_extra={"opted_out": True, "opted_out_at": now})
    borrower("no consent", phone_extra={"consent_given": False})
    borrower("invalid number", phone_extra={"is_valid": False})
    borrower("no time zone", time_zone="")
    borrower("no region", region="")
    borrower("unknown region", region="ZZ")
    borrower("bad zone", time_zone="Mars/Olympus")
    person, point = borrower("us, spoken to yesterday", region="US-NY", time_zone="America/New_York")
    ContactAttempt.objects.create(
        borrower=person, contact_point=point, channel="call", direction="outbound",
        at=now - timedelta(days=1), connected=True, answered=True, right_party=True,
    )  # fmt: skip
    person, point = borrower("us, seven calls", region="US", time_zone="America/Chicago")
    for n in range(7):
        ContactAttempt.objects.create(
            borrower=person, contact_point=point, channel="call", direction="outbound",
            at=now - timedelta(days=6, hours=-n), connected=True,
        )  # fmt: skip
    borrower("uk", region="GB-SCT", time_zone="Europe/London")
    person = BorrowerFactory(partner=partner, full_name="no phone")
    made["no phone"] = (person, None)
    return made


@pytest.mark.parametrize("hour", [0, 8, 10, 21, 23])
def test_the_batch_check_decides_exactly_as_check_contact(
    partner, supervisor, hour, django_assert_num_queries
):
    made = scenario_borrowers(partner, supervisor)
    at = shanghai(today(), hour)
    with django_assert_num_queries(5):
        decisions = selectors.call_decisions({p.pk: (p, point) for p, point in made.values()}, at=at)
    for name, (person, point) in made.items():
        if point is None:
            assert decisions[person.pk] is None, name
            continue
        expected = check_contact(borrower=person, channel="call", at=at, contact_point=point)
        assert decisions[person.pk] == expected, name
    # The scenarios do reach the rules they are named after.
    if hour == 10:
        reasons = {name: decisions[p.pk].reasons for name, (p, _pt) in made.items() if decisions[p.pk]}
        assert reasons["plain"] == () and reasons["expired flag"] == () and reasons["released flag"] == ()
        assert reasons["three answered calls today"] == ("daily_connected_cap",)
        assert "dispute_hold" in reasons["disputed"]
        assert "channel_opt_out" in reasons["opted out everywhere"]
        assert "channel_opt_out" in reasons["opted out at this number"]
        assert reasons["sms opt-out only"] == ()
        assert "no_consent" in reasons["no consent"] and "invalid_contact_point" in reasons["invalid number"]
        assert reasons["no time zone"] == ("missing_timezone",) and reasons["no region"] == (
            "missing_region",
        )
        assert reasons["unknown region"] == ("unknown_region",) and reasons["bad zone"] == (
            "missing_timezone",
        )
        assert "post_conversation_cooldown" in reasons["us, spoken to yesterday"]


def test_the_batch_check_asks_only_about_the_borrowers_own_phone(partner):
    person = BorrowerFactory(partner=partner)
    other = ContactPoint.objects.create(
        borrower=person, kind="phone", value="13700000000", is_third_party=True, relationship="friend"
    )
    with pytest.raises(ValueError):
        selectors.call_decisions({person.pk: (person, other)}, at=timezone.now())
    own = phone(person)
    with pytest.raises(ValueError):
        selectors.call_decisions({person.pk: (person, own)}, at=datetime(2026, 1, 1, 10))


# --- queries ---------------------------------------------------------------------------------------


def busy_worklist(partner, collector, supervisor, n: int) -> list[Case]:
    """``n`` of the collector's cases, each borrower with a phone, calls, a flag, a hold and a promise
    here and there: everything a row shows."""
    loans = [loan_late(partner, 10 + i) for i in range(n)]
    scan()
    found = [case_of(loan) for loan in loans]
    assign(collector, *found)
    now = timezone.now()
    for i, case in enumerate(found):
        borrower = case.loan.borrower
        point = phone(borrower, f"1380000{i:04d}")
        ContactPoint.objects.create(borrower=borrower, kind="email", value=f"b{i}@example.com")
        ContactAttempt.objects.create(
            borrower=borrower, contact_point=point, channel="call", direction="outbound",
            at=now - timedelta(hours=30), connected=True, answered=True,
        )  # fmt: skip
        if i % 2:
            services.case_hold_add(case=case, reason="other", note="checking", actor=supervisor)
            BorrowerFlag.objects.create(
                borrower=borrower, kind="vulnerable", reason="x", set_by=supervisor, set_at=now
            )
        if i % 3 == 0:
            services.promise_record(case=case, actor=collector, amount="100.00", promised_date=today())
    return found


def test_the_page_costs_the_same_queries_for_three_rows_as_for_thirty(
    partner, collector, supervisor, django_assert_max_num_queries
):
    busy_worklist(partner, collector, supervisor, 30)
    client = page(collector)
    client.get(URL)  # the session's first request reads the user's preferences once

    def count(**params):
        with CaptureQueriesContext(connection) as queries:
            response = client.get(URL, params)
        assert response.status_code == 200
        return len(queries), len(response.context["rows"])

    many, shown = count()
    assert shown == 30
    one, shown_one = count(q="13800000003")  # a hold, a flag and a promise on it
    some, shown_some = count(stage="notice")
    assert (shown_one, shown_some) == (1, 9)
    assert many == one == some, (many, one, some)
    with django_assert_max_num_queries(16):
        assert rows(client.get(URL, {"stage": "follow_up_call", "promise_due": "on", "callback": "on"})) == []
    with django_assert_max_num_queries(16):
        assert len(rows(client.get(URL))) == 30


def test_a_page_is_never_longer_than_fifty(partner, collector, supervisor, compliance_officer):
    loans = [loan_late(partner, 10) for _ in range(53)]
    scan()
    response = page(compliance_officer).get(URL)
    assert len(rows(response)) == 50 and response.context["page"].paginator.count == 53
    assert len(rows(page(compliance_officer).get(URL, {"page": 2}))) == 3
    assert len(loans) == 53


def test_the_worklist_in_chinese(team_case, collector):
    assign(collector, team_case)
    html = page(collector, "zh-hans").get(URL).content.decode()
    assert '<html lang="zh-hans">' in html and "电话跟进" in html  # the stage, in Chinese
