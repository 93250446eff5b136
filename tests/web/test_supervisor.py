"""The supervisor's pages: the approvals queue and its decisions (never one's own, a large waiver only
by a senior supervisor), the team workload and bulk reassignment (posted ids trusted only among the
supervisor's teams), override requests (asked from a case, granted or declined on the queue), who may
open each page, that a refusal writes nothing, and query counts that do not grow with the rows."""

from __future__ import annotations

import html
import re
from datetime import timedelta
from decimal import Decimal as D

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from compliance.contact import ContactDenied, contact_attempt_record
from compliance.models import AuditEvent, ContactAttempt, ContactOverride, OverrideRequest
from compliance.overrides import override_request_create
from debt_collections import services
from debt_collections.models import (
    Case,
    CaseContact,
    CollectionPolicy,
    Team,
    TeamMember,
)
from debt_collections.referrals import referral_request
from debt_collections.restructuring import restructuring_propose
from debt_collections.views import supervisor as views
from loans.models import ContactPoint
from tests.api.test_cases import case_of, loan_late, scan
from tests.compliance.test_override_requests import midday_zone
from tests.debt_collections.conftest import make_user
from tests.web.conftest import page

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}
APPROVALS, WORKLOAD, OVERRIDES = "/work/approvals/", "/work/workload/", "/work/overrides/"


def today():
    return views._today()


@pytest.fixture
def book(partner, collector, other_collector, supervisor, supervisor2):
    """Three cases of the call team (10, 12 and 15 days past due) and one of the notice team (45).
    Both collectors are call-team members; ``supervisor`` and ``supervisor2`` supervise the call team;
    ``sup3`` supervises the notice team only."""
    loans = {name: loan_late(partner, dpd) for name, dpd in (("a", 10), ("b", 12), ("c", 15), ("theirs", 45))}
    scan()
    cases = {name: case_of(loan) for name, loan in loans.items()}
    call_team, notice_team = cases["a"].team, cases["theirs"].team
    assert call_team.code == "call-team" and notice_team.code == "notice-team"
    for person in (collector, other_collector):
        TeamMember.objects.create(team=call_team, user=person)
    call_team.supervisors.add(supervisor, supervisor2)
    notice_team.supervisors.add(make_user("sup3", "supervisor"))
    TeamMember.objects.create(team=notice_team, user=make_user("noticer", "collector"))
    return cases


def sup3():
    return Team.objects.get(code="notice-team").supervisors.get()


def propose(case, actor, kind="term_extension", **terms):
    defaults = {"term_extension": {"new_term": 24}, "settlement": {"settlement_amount": D("6000.00")}}
    return restructuring_propose(
        case=case, kind=kind, actor=actor, reason="Lost his job in January; can pay about half.",
        first_due_date=today() + timedelta(days=20), **{**defaults[kind], **terms},
    )  # fmt: skip


def request_referral(case, actor):
    return referral_request(
        case=case, actor=actor, reason="No payment and no answer for weeks.",
        forbearance_considered="Offered a term extension on the phone; refused.",
    )  # fmt: skip


def text(response) -> str:
    """The page's visible text, tags dropped and spaces squeezed."""
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode())))


def count_queries(client, url) -> int:
    """Queries for one more request of a page (the session's first reads its preferences once)."""
    client.get(url)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200, response.content[:1000]
    return len(queries)


# --- who may open what ----------------------------------------------------------------------------

PAGES = [APPROVALS, WORKLOAD, OVERRIDES]


@pytest.mark.parametrize("url", PAGES)
def test_anonymous_is_sent_to_sign_in(url):
    response = page().get(url)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize("url", PAGES)
def test_collectors_compliance_officers_and_people_without_a_role_are_403(
    url, collector, compliance_officer, outsider
):
    for person in (collector, compliance_officer, outsider):
        assert page(person).get(url).status_code == 403, person


@pytest.mark.parametrize("url", PAGES)
def test_supervisors_and_senior_supervisors_open_every_page_in_both_languages(url, supervisor, senior):
    for person in (supervisor, senior):
        for language in ("en", "zh-hans"):
            response = page(person, language).get(url)
            assert response.status_code == 200 and f'lang="{language}"' in response.content.decode()


def test_posts_are_refused_to_collectors_and_compliance_officers_and_write_nothing(
    book, collector, compliance_officer, supervisor2
):
    proposal = propose(book["a"], supervisor2)
    for person in (collector, compliance_officer):
        client = page(person)
        assert client.post(f"{APPROVALS}restructurings/{proposal.pk}/decide/",
                           {"decision": "approve", "reason": "ok"}).status_code == 403  # fmt: skip
        assert client.post(f"{WORKLOAD}reassign/", {"cases": [book["a"].pk], "assignee": person.pk,
                                                    "reason": "x"}).status_code == 403  # fmt: skip
    proposal.refresh_from_db()
    assert proposal.status == "proposed"
    assert not Case.objects.filter(assignee__isnull=False).exists()


def test_the_decision_urls_take_posts_only(book, supervisor, supervisor2):
    proposal = propose(book["a"], supervisor2)
    client = page(supervisor)
    assert client.get(f"{APPROVALS}restructurings/{proposal.pk}/decide/").status_code == 405
    assert client.get(f"{WORKLOAD}reassign/").status_code == 405
    assert client.get(f"/work/cases/{book['a'].pk}/override-request/").status_code == 405


# --- the approvals queue --------------------------------------------------------------------------


def test_the_queue_shows_colleagues_proposals_with_buttons_and_ones_own_without(
    book, collector, supervisor, supervisor2
):
    theirs = propose(book["a"], collector)
    mine = propose(book["b"], supervisor)
    referral = request_referral(book["c"], supervisor2)
    response = page(supervisor).get(APPROVALS)
    assert response.status_code == 200
    html = response.content.decode()
    items = response.context["items"]
    assert [(i.kind, i.obj.pk) for i in items] == [
        ("restructuring", theirs.pk), ("restructuring", mine.pk), ("referral", referral.pk),
    ]  # oldest first  # fmt: skip
    assert f'hx-post="/work/approvals/restructurings/{theirs.pk}/decide/"' in html
    assert f'hx-post="/work/approvals/referrals/{referral.pk}/decide/"' in html
    assert f"/work/approvals/restructurings/{mine.pk}/decide/" not in html
    mine_row = re.search(rf'<tr id="approval-restructuring-{mine.pk}".*?</tr>', html, re.S).group(0)
    assert "yours: another supervisor decides" in mine_row and "<button" not in mine_row
    page_text = text(response)
    assert book["a"].loan.borrower.full_name in page_text and book["a"].loan.external_ref in page_text
    assert "Term extension" in page_text and "Legal referral" in page_text and "col" in page_text


def test_filtering_the_queue_by_kind(book, collector, supervisor, supervisor2):
    propose(book["a"], collector)
    request_referral(book["c"], supervisor2)
    client = page(supervisor)
    assert {i.kind for i in client.get(f"{APPROVALS}?kind=referral").context["items"]} == {"referral"}
    assert {i.kind for i in client.get(f"{APPROVALS}?kind=restructuring").context["items"]} == {
        "restructuring"
    }
    assert len(client.get(f"{APPROVALS}?kind=nonsense").context["items"]) == 2


def test_a_supervisor_of_another_team_neither_sees_nor_opens_nor_decides(book, collector, supervisor2):
    proposal = propose(book["a"], collector)
    referral = request_referral(book["c"], supervisor2)
    client = page(sup3())
    assert client.get(APPROVALS).context["items"] == []
    assert client.get(f"{APPROVALS}restructurings/{proposal.pk}/").status_code == 404
    assert client.get(f"{APPROVALS}referrals/{referral.pk}/").status_code == 404
    decide = {"decision": "approve", "reason": "ok"}
    assert client.post(f"{APPROVALS}restructurings/{proposal.pk}/decide/", decide).status_code == 404
    assert client.post(f"{APPROVALS}referrals/{referral.pk}/decide/", decide).status_code == 404
    proposal.refresh_from_db()
    referral.refresh_from_db()
    assert proposal.status == "proposed" and referral.status == "requested"


def test_approving_from_the_queue_row_writes_the_decision_and_swaps_the_row(book, collector, supervisor):
    proposal = propose(book["a"], collector)
    response = page(supervisor).post(
        f"{APPROVALS}restructurings/{proposal.pk}/decide/",
        {"decision": "approve", "reason": "Affordable on his new salary."},
        **HTMX,
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert body.lstrip().startswith(f'<tr id="approval-restructuring-{proposal.pk}"')
    assert "approved" in body and "<form" not in body
    proposal.refresh_from_db()
    assert proposal.status == "approved" and proposal.decided_by == supervisor
    assert proposal.decision_reason == "Affordable on his new salary." and proposal.schedule_version == 2
    event = AuditEvent.objects.filter(event_type="approval").get()
    assert event.actor == supervisor and event.details["restructuring"] == proposal.pk


def test_rejecting_with_a_plain_form_returns_to_the_queue_with_a_message(book, collector, supervisor):
    proposal = propose(book["a"], collector)
    client = page(supervisor)
    response = client.post(
        f"{APPROVALS}restructurings/{proposal.pk}/decide/",
        {"decision": "reject", "reason": "He can pay more than this."},
    )
    assert response.status_code == 302 and response["Location"] == APPROVALS
    proposal.refresh_from_db()
    assert proposal.status == "rejected" and proposal.decision_reason == "He can pay more than this."
    followed = client.get(APPROVALS)
    assert f"Restructuring of case {book['a'].pk} rejected." in text(followed)
    assert followed.context["items"] == []


def test_deciding_ones_own_proposal_shows_the_services_refusal_and_changes_nothing(book, supervisor):
    proposal = propose(book["a"], supervisor)
    client = page(supervisor)
    url = f"{APPROVALS}restructurings/{proposal.pk}/decide/"
    response = client.post(url, {"decision": "approve", "reason": "looks fine"}, **HTMX)
    assert response.status_code == 422
    assert "The person who proposed a restructuring cannot decide it." in text(response)
    response = client.post(url, {"decision": "reject", "reason": "changed my mind"})
    assert response.status_code == 200  # the proposal's page again, with the refusal
    assert "The person who proposed a restructuring cannot decide it." in text(response)
    proposal.refresh_from_db()
    assert proposal.status == "proposed" and proposal.decided_by is None
    assert not AuditEvent.objects.filter(event_type="approval").exists()


def test_a_decision_needs_a_reason(book, collector, supervisor):
    proposal = propose(book["a"], collector)
    response = page(supervisor).post(
        f"{APPROVALS}restructurings/{proposal.pk}/decide/", {"decision": "approve", "reason": "  "}, **HTMX
    )
    assert response.status_code == 422 and "Give a reason." in text(response)
    response = page(supervisor).post(
        f"{APPROVALS}restructurings/{proposal.pk}/decide/", {"decision": "maybe", "reason": "x"}, **HTMX
    )
    assert response.status_code == 422
    proposal.refresh_from_db()
    assert proposal.status == "proposed"


def test_a_waiver_above_the_limit_is_refused_to_a_supervisor_and_approved_by_a_senior(
    book, collector, supervisor, senior
):
    book["a"].team.supervisors.add(senior)
    proposal = propose(book["a"], collector, "settlement")
    limit = CollectionPolicy.objects.get(product__isnull=True).supervisor_waiver_limit
    assert proposal.waived_amount > limit
    queue = page(supervisor).get(APPROVALS)
    assert "needs a senior supervisor" in text(queue)
    url = f"{APPROVALS}restructurings/{proposal.pk}/decide/"
    response = page(supervisor).post(url, {"decision": "approve", "reason": "fair"}, **HTMX)
    assert response.status_code == 422 and "needs a senior supervisor" in text(response)
    proposal.refresh_from_db()
    assert proposal.status == "proposed"
    response = page(senior).post(url, {"decision": "approve", "reason": "fair"})
    assert response.status_code == 302
    proposal.refresh_from_db()
    assert proposal.status == "approved" and proposal.decided_by == senior


def test_the_restructuring_page_compares_the_schedules_and_offers_the_decision(book, collector, supervisor):
    proposal = propose(book["a"], collector)
    response = page(supervisor).get(f"{APPROVALS}restructurings/{proposal.pk}/")
    assert response.status_code == 200
    before, after = response.context["before"], response.context["after"]
    assert len(after["rows"]) == proposal.proposed_summary["periods"] == 24
    assert len(before["rows"]) == proposal.current_summary["periods"]
    body = text(response)
    assert "As it stood" in body and "As proposed" in body and "Lost his job in January" in body
    html = response.content.decode()
    assert f'action="/work/approvals/restructurings/{proposal.pk}/decide/"' in html
    # the proposer's own view of it has no form
    mine = page(collector)
    assert mine.get(f"{APPROVALS}restructurings/{proposal.pk}/").status_code == 403  # collectors: no right


def test_a_decided_proposal_shows_its_decision_and_cannot_be_decided_again(
    book, collector, supervisor, supervisor2
):
    proposal = propose(book["a"], collector)
    page(supervisor).post(
        f"{APPROVALS}restructurings/{proposal.pk}/decide/", {"decision": "reject", "reason": "no"}
    )
    response = page(supervisor2).get(f"{APPROVALS}restructurings/{proposal.pk}/")
    assert "<textarea" not in response.content.decode() and "rejected" in text(response)
    response = page(supervisor2).post(
        f"{APPROVALS}restructurings/{proposal.pk}/decide/", {"decision": "approve", "reason": "yes"}, **HTMX
    )
    assert response.status_code == 422 and "decided or withdrawn already" in text(response)
    proposal.refresh_from_db()
    assert proposal.decided_by == supervisor


def test_a_legal_referral_is_approved_from_the_queue_and_the_case_goes_to_the_lawyers(
    book, supervisor, supervisor2
):
    referral = request_referral(book["c"], supervisor2)
    detail = page(supervisor).get(f"{APPROVALS}referrals/{referral.pk}/")
    assert detail.status_code == 200 and "Offered a term extension" in text(detail)
    response = page(supervisor).post(
        f"{APPROVALS}referrals/{referral.pk}/decide/",
        {"decision": "approve", "reason": "Evidence complete"},
        **HTMX,
    )
    assert response.status_code == 200 and "with the lawyers" in text(response)
    referral.refresh_from_db()
    assert referral.status == "referred" and referral.decided_by == supervisor and referral.evidence_sha256
    case = Case.objects.get(pk=book["c"].pk)
    assert case.stage == "legal_referral"


def test_the_requester_of_a_referral_cannot_decide_it_and_a_colleague_can_reject_it(
    book, supervisor, supervisor2
):
    referral = request_referral(book["c"], supervisor2)
    own = page(supervisor2)
    assert f"/work/approvals/referrals/{referral.pk}/decide/" not in own.get(APPROVALS).content.decode()
    response = own.post(
        f"{APPROVALS}referrals/{referral.pk}/decide/", {"decision": "reject", "reason": "no"}, **HTMX
    )
    assert response.status_code == 422 and "another supervisor must decide it" in text(response)
    referral.refresh_from_db()
    assert referral.status == "requested"
    response = page(supervisor).post(
        f"{APPROVALS}referrals/{referral.pk}/decide/",
        {"decision": "reject", "reason": "Try a restructuring first."},
    )
    assert response.status_code == 302
    referral.refresh_from_db()
    assert referral.status == "rejected" and Case.objects.get(pk=book["c"].pk).stage == "follow_up_call"


def test_the_approvals_queue_query_count_does_not_grow_with_its_rows(
    book, collector, other_collector, supervisor, supervisor2, django_assert_max_num_queries
):
    client = page(supervisor)
    propose(book["a"], collector)
    one = count_queries(client, APPROVALS)
    propose(book["b"], other_collector, "settlement")
    request_referral(book["c"], supervisor2)
    assert len(client.get(APPROVALS).context["items"]) == 3
    assert count_queries(client, APPROVALS) == one
    # session, user, permissions (2), the two queues (count and rows each), the waiver limits; +1 spare
    with django_assert_max_num_queries(10):
        client.get(APPROVALS)


# --- team workload --------------------------------------------------------------------------------


def share_of(response, team_code, username):
    load = next(load for load in response.context["loads"] if load.team.code == team_code)
    if username is None:
        return load.unassigned
    return next(share for share in load.people if share.user.get_username() == username)


def test_the_workload_counts_each_members_cases_money_promises_and_contacts(
    book, collector, other_collector, supervisor
):
    services.cases_reassign(
        cases=[book["a"], book["b"]], assignee=collector, actor=supervisor, reason="start"
    )
    services.promise_record(case=book["a"], actor=collector, amount="300.00", promised_date=today())
    attempt = ContactAttempt.objects.create(
        borrower=book["a"].loan.borrower, channel="call", direction="outbound", at=timezone.now(),
        connected=True, answered=True, right_party=True, actor=collector,
    )  # fmt: skip
    CaseContact.objects.create(case=book["a"], attempt=attempt, outcome="right_party", created_by=collector)
    response = page(supervisor).get(WORKLOAD)
    assert response.status_code == 200
    mine = share_of(response, "call-team", "col")
    overdue = book["a"].loan.overdue_total + book["b"].loan.overdue_total
    assert (mine.cases, mine.promises_due, mine.contacts, mine.right_party) == (2, 1, 1, 1)
    assert mine.overdue == {"CNY": overdue}
    assert share_of(response, "call-team", "col2").cases == 0
    assert share_of(response, "call-team", None).cases == 1  # case c
    load = response.context["loads"][0]
    assert [lo.team.code for lo in response.context["loads"]] == ["call-team"]  # only the teams supervised
    assert load.total.cases == 3 and load.total.promises_due == 1
    assert {case.pk for case in response.context["page"]} == {book[k].pk for k in "abc"}
    body = text(response)
    assert (
        "Call team" in body and "Promises due today" in body and book["theirs"].loan.external_ref not in body
    )


def test_filters_by_team_stage_and_assignee(book, collector, supervisor):
    services.cases_reassign(cases=[book["a"]], assignee=collector, actor=supervisor, reason="start")
    client = page(supervisor)

    def shown(query):
        return {case.pk for case in client.get(f"{WORKLOAD}?{query}").context["page"]}

    team = book["a"].team_id
    assert shown(f"team={team}") == {book[k].pk for k in "abc"}
    assert shown(f"assignee={collector.pk}") == {book["a"].pk}
    assert shown("assignee=none") == {book["b"].pk, book["c"].pk}
    assert shown("stage=notice") == set()
    assert shown(f"team={book['theirs'].team_id}") == {book[k].pk for k in "abc"}  # not theirs: ignored
    assert "Select a valid choice" in text(client.get(f"{WORKLOAD}?team={book['theirs'].team_id}"))


def test_cases_are_paged(book, supervisor, monkeypatch):
    monkeypatch.setattr(views, "PAGE_SIZE", 2)
    client = page(supervisor)
    first = client.get(WORKLOAD)
    assert len(first.context["page"]) == 2 and "Page 1 of 2" in text(first)
    second = client.get(f"{WORKLOAD}?page=2")
    assert len(second.context["page"]) == 1
    assert {c.pk for c in first.context["page"]} | {c.pk for c in second.context["page"]} == {
        book[k].pk for k in "abc"
    }


def test_bulk_reassign_moves_the_chosen_cases_and_is_audited(book, collector, other_collector, supervisor):
    client = page(supervisor)
    response = client.post(
        f"{WORKLOAD}reassign/",
        {"cases": [book["a"].pk, book["b"].pk], "assignee": other_collector.pk, "reason": "Col is on leave",
         "filters": "stage=follow_up_call"},
    )  # fmt: skip
    assert response.status_code == 302 and response["Location"] == f"{WORKLOAD}?stage=follow_up_call"
    assert set(Case.objects.filter(assignee=other_collector).values_list("pk", flat=True)) == {
        book["a"].pk, book["b"].pk,
    }  # fmt: skip
    event = AuditEvent.objects.get(event_type="reassignment")
    assert sorted(event.details["cases"]) == sorted([book["a"].pk, book["b"].pk])
    assert event.actor == supervisor and event.details["reason"] == "Col is on leave"
    assert "Reassigned to col2: 2 cases." in text(client.get(WORKLOAD))


def test_a_posted_case_of_another_team_refuses_the_whole_reassignment(book, collector, supervisor):
    response = page(supervisor).post(
        f"{WORKLOAD}reassign/",
        {"cases": [book["a"].pk, book["theirs"].pk], "assignee": collector.pk, "reason": "grab"},
    )
    assert response.status_code == 200
    assert f"Case {book['theirs'].pk} is not an open case of your teams" in text(response)
    assert "Nothing was reassigned." in text(response)
    assert not Case.objects.filter(assignee__isnull=False).exists()
    assert not AuditEvent.objects.filter(event_type="reassignment").exists()
    # the choices made stay ticked on the page shown again
    assert f'value="{book["a"].pk}" aria-label' in response.content.decode()
    assert re.search(rf'value="{book["a"].pk}"[^>]*checked', response.content.decode())


def test_the_assignee_must_be_an_active_member_of_the_cases_team(book, collector, supervisor):
    noticer = Team.objects.get(code="notice-team").members.get()
    response = page(supervisor).post(
        f"{WORKLOAD}reassign/", {"cases": [book["a"].pk], "assignee": noticer.pk, "reason": "x"}, **HTMX
    )
    assert response.status_code == 422 and "Choose an active member of your teams." in text(response)
    TeamMember.objects.filter(user=collector).update(is_active=False)  # on leave: takes no new cases
    response = page(supervisor).post(
        f"{WORKLOAD}reassign/", {"cases": [book["a"].pk], "assignee": collector.pk, "reason": "x"}, **HTMX
    )
    assert response.status_code == 422
    assert not Case.objects.filter(assignee__isnull=False).exists()


def test_reassign_needs_cases_an_assignee_and_a_reason(book, collector, supervisor):
    client = page(supervisor)
    for data in (
        {"assignee": collector.pk, "reason": "x"},
        {"cases": [book["a"].pk], "reason": "x"},
        {"cases": [book["a"].pk], "assignee": collector.pk, "reason": " "},
        {"cases": ["abc"], "assignee": collector.pk, "reason": "x"},
    ):
        assert client.post(f"{WORKLOAD}reassign/", data, **HTMX).status_code == 422, data
    assert not Case.objects.filter(assignee__isnull=False).exists()


def test_htmx_reassign_swaps_the_workload_in_place(book, collector, supervisor):
    response = page(supervisor).post(
        f"{WORKLOAD}reassign/", {"cases": [book["c"].pk], "assignee": collector.pk, "reason": "x"}, **HTMX
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert body.lstrip().startswith('<div id="workload-body">') and "<html" not in body
    assert "Reassigned to col: 1 cases." in text(response)
    assert share_of(response, "call-team", "col").cases == 1


def test_a_supervisor_of_no_team_sees_an_empty_workload(book):
    lonely = make_user("lonely", "supervisor")
    response = page(lonely).get(WORKLOAD)
    assert response.status_code == 200 and response.context["loads"] == []
    assert "You do not supervise any team yet." in text(response)
    response = page(lonely).post(
        f"{WORKLOAD}reassign/", {"cases": [book["a"].pk], "assignee": lonely.pk, "reason": "x"}
    )
    assert response.status_code == 200 and not Case.objects.filter(assignee__isnull=False).exists()


def test_the_workload_query_count_does_not_grow_with_people_or_cases(
    partner, book, collector, other_collector, supervisor, django_assert_max_num_queries
):
    client = page(supervisor)
    services.cases_reassign(cases=[book["a"]], assignee=collector, actor=supervisor, reason="x")
    before = count_queries(client, WORKLOAD)
    services.cases_reassign(cases=[book["b"]], assignee=other_collector, actor=supervisor, reason="x")
    services.promise_record(case=book["b"], actor=other_collector, amount="100.00", promised_date=today())
    TeamMember.objects.create(team=book["a"].team, user=make_user("col3", "collector"))
    book["theirs"].team.supervisors.add(supervisor)  # a second team
    assert count_queries(client, WORKLOAD) == before
    # session, user, permissions (2), teams, members, the three aggregates, the case count and page; +1
    with django_assert_max_num_queries(12):
        client.get(WORKLOAD)


# --- override requests ----------------------------------------------------------------------------


@pytest.fixture
def refused(book):
    """Case a's borrower is at midday and has had 3 answered calls today: a call is refused
    (daily_connected_cap) and may be asked for."""
    borrower = book["a"].loan.borrower
    borrower.time_zone, borrower.region = midday_zone(), "CN"
    borrower.save()
    mobile = ContactPoint.objects.create(
        borrower=borrower, kind="phone", value="13800138000", is_primary=True
    )
    now = timezone.now()
    for minute in (3, 2, 1):
        ContactAttempt.objects.create(
            borrower=borrower, contact_point=mobile, channel="call", direction="outbound",
            at=now - timedelta(minutes=minute), connected=True, answered=True, right_party=True,
        )  # fmt: skip
    return book["a"], mobile


def ask_data(mobile, **extra):
    return {
        "channel": "call",
        "contact_point": mobile.pk,
        "reasons": ["daily_connected_cap"],
        "note": "She asked us to call back at lunchtime.",
        **extra,
    }


def test_a_collector_asks_for_an_override_from_the_case(refused, collector):
    case, mobile = refused
    client = page(collector)
    response = client.post(f"/work/cases/{case.pk}/override-request/", ask_data(mobile), **HTMX)
    assert response.status_code == 200 and "Override request sent" in text(response)
    assert "answered calls a day reached" in text(response)
    request = OverrideRequest.objects.get()
    assert request.status == "pending" and request.requested_by == collector and request.loan == case.loan
    assert request.contact_point == mobile and request.reasons == ["daily_connected_cap"]
    # a plain form post returns to the case page with a message
    OverrideRequest.objects.all().delete()
    response = client.post(f"/work/cases/{case.pk}/override-request/", ask_data(mobile))
    assert response.status_code == 302 and response["Location"] == f"/work/cases/{case.pk}/"
    assert OverrideRequest.objects.count() == 1


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"reasons": ["quiet_hours"]}, "not refused for these reasons now"),
        ({"reasons": ["do_not_contact"]}, "cannot be overridden"),
        ({"note": ""}, "Say why the contact is needed."),
        ({"reasons": []}, "Name the denial reasons to override."),
        ({"channel": "pigeon"}, "Select a valid choice"),
    ],
)
def test_a_bad_override_request_comes_back_422_and_writes_nothing(refused, collector, change, message):
    case, mobile = refused
    response = page(collector).post(
        f"/work/cases/{case.pk}/override-request/", ask_data(mobile, **change), **HTMX
    )
    assert response.status_code == 422 and message in text(response)
    assert "The override request was not sent." in text(response)
    assert not OverrideRequest.objects.exists()


def test_no_override_request_on_a_closed_case(refused, collector, supervisor):
    case, mobile = refused
    services.case_close(case=case, close_reason="settled", actor=supervisor, reason="Settled in full.")
    response = page(collector).post(f"/work/cases/{case.pk}/override-request/", ask_data(mobile), **HTMX)
    assert response.status_code == 422 and "The case is closed." in text(response)
    assert not OverrideRequest.objects.exists()


def test_an_override_request_for_another_borrowers_number_or_another_teams_case_is_refused(
    refused, book, collector, compliance_officer
):
    case, mobile = refused
    stranger = ContactPoint.objects.create(
        borrower=book["theirs"].loan.borrower, kind="phone", value="13900000000"
    )
    client = page(collector)
    response = client.post(f"/work/cases/{case.pk}/override-request/", ask_data(stranger), **HTMX)
    assert response.status_code == 422 and "Choose one of the borrower's numbers or addresses." in text(
        response
    )
    assert (
        client.post(f"/work/cases/{book['theirs'].pk}/override-request/", ask_data(mobile)).status_code == 404
    )
    assert (
        page(compliance_officer)
        .post(f"/work/cases/{case.pk}/override-request/", ask_data(mobile))
        .status_code
        == 403
    )
    response = client.post(f"/work/cases/{case.pk}/override-request/", ask_data(mobile, note=""))
    assert response.status_code == 302  # a plain post: back to the case, the error as a message
    assert not OverrideRequest.objects.exists()


def ask(case, mobile, actor):
    return override_request_create(
        borrower=case.loan.borrower, loan=case.loan, channel="call", contact_point=mobile,
        reasons=["daily_connected_cap"], note="She asked us to call back at lunchtime.", actor=actor,
    )  # fmt: skip


def test_the_overrides_queue_lists_the_request_and_a_grant_lets_the_call_through(
    refused, collector, supervisor
):
    case, mobile = refused
    request = ask(case, mobile, collector)
    client = page(supervisor)
    response = client.get(OVERRIDES)
    assert [row.request.pk for row in response.context["rows"]] == [request.pk]
    body = text(response)
    assert "answered calls a day reached" in body and "She asked us to call back at lunchtime." in body
    assert "138****8000" in body and "13800138000" not in response.content.decode()  # masked
    assert f'href="/work/cases/{case.pk}/"' in response.content.decode()
    response = client.post(
        f"{OVERRIDES}{request.pk}/decide/",
        {"decision": "grant", "reason": "Borrower's own request", "hours": "6"},
        **HTMX,
    )
    assert response.status_code == 200 and "Override granted" in text(response)
    request.refresh_from_db()
    override = request.override
    assert request.status == "granted" and request.decided_by == supervisor
    assert override.valid_until - override.granted_at == timedelta(hours=6)
    attempt = contact_attempt_record(
        borrower=case.loan.borrower, channel="call", at=timezone.now(), contact_point=mobile,
        connected=True, answered=True, right_party=True, actor=collector,
    )  # fmt: skip
    assert attempt.override == override
    steps = list(AuditEvent.objects.filter(event_type="override").values_list("details__step", flat=True))
    assert steps == ["requested", None, "granted"]
    decided = client.get(OVERRIDES)
    assert decided.context["rows"] == [] and [r.request.pk for r in decided.context["decided"]] == [
        request.pk
    ]
    assert "used" in text(decided)


def test_a_grant_is_valid_24_hours_unless_chosen_and_never_more_than_72(refused, collector, supervisor):
    case, mobile = refused
    request = ask(case, mobile, collector)
    client = page(supervisor)
    url = f"{OVERRIDES}{request.pk}/decide/"
    response = client.post(url, {"decision": "grant", "reason": "ok", "hours": "73"}, **HTMX)
    assert response.status_code == 422 and not ContactOverride.objects.exists()
    response = client.post(url, {"decision": "grant", "reason": "ok", "hours": "0"})
    assert response.status_code == 200 and "Ensure this value is greater than or equal to 1." in text(
        response
    )
    assert not ContactOverride.objects.exists()
    response = client.post(url, {"decision": "grant", "reason": "ok", "hours": ""})
    assert response.status_code == 302
    override = ContactOverride.objects.get()
    assert override.valid_until - override.granted_at == timedelta(hours=24)


def test_declining_with_a_plain_form(refused, collector, supervisor):
    case, mobile = refused
    request = ask(case, mobile, collector)
    client = page(supervisor)
    response = client.post(
        f"{OVERRIDES}{request.pk}/decide/", {"decision": "decline", "reason": "Enough for today."}
    )
    assert response.status_code == 302 and response["Location"] == OVERRIDES
    request.refresh_from_db()
    assert request.status == "declined" and request.decision_reason == "Enough for today."
    assert not ContactOverride.objects.exists()
    with pytest.raises(ContactDenied):
        contact_attempt_record(
            borrower=case.loan.borrower,
            channel="call",
            at=timezone.now(),
            contact_point=mobile,
            actor=collector,
        )
    assert "declined" in text(client.get(OVERRIDES))


def test_the_requester_cannot_decide_and_a_decided_request_cannot_be_decided_again(
    refused, supervisor, supervisor2
):
    case, mobile = refused
    request = ask(case, mobile, supervisor)
    client = page(supervisor)
    listing = client.get(OVERRIDES)
    row = re.search(rf'<tr id="override-request-{request.pk}".*?</tr>', listing.content.decode(), re.S).group(
        0
    )
    assert "yours: another supervisor decides" in row and "<button" not in row
    response = client.post(
        f"{OVERRIDES}{request.pk}/decide/", {"decision": "grant", "reason": "mine"}, **HTMX
    )
    assert response.status_code == 422 and "another supervisor must decide it" in text(response)
    request.refresh_from_db()
    assert request.status == "pending" and not ContactOverride.objects.exists()
    declined = page(supervisor2).post(
        f"{OVERRIDES}{request.pk}/decide/", {"decision": "decline", "reason": "no"}
    )
    assert declined.status_code == 302
    response = page(supervisor2).post(
        f"{OVERRIDES}{request.pk}/decide/", {"decision": "grant", "reason": "yes"}, **HTMX
    )
    assert response.status_code == 422 and "decided already" in text(response)
    request.refresh_from_db()
    assert request.status == "declined" and not ContactOverride.objects.exists()


def test_other_teams_supervisors_and_collectors_cannot_see_or_decide_requests(refused, collector):
    case, mobile = refused
    request = ask(case, mobile, collector)
    outsider = page(sup3())
    assert outsider.get(OVERRIDES).context["rows"] == []
    decide = {"decision": "grant", "reason": "ok"}
    assert outsider.post(f"{OVERRIDES}{request.pk}/decide/", decide).status_code == 404
    assert page(collector).post(f"{OVERRIDES}{request.pk}/decide/", decide).status_code == 403
    request.refresh_from_db()
    assert request.status == "pending"


def test_the_overrides_query_count_does_not_grow_with_its_rows(
    refused, collector, other_collector, supervisor, django_assert_max_num_queries
):
    case, mobile = refused
    client = page(supervisor)
    first = ask(case, mobile, collector)
    one = count_queries(client, OVERRIDES)
    work = ContactPoint.objects.create(
        borrower=case.loan.borrower, kind="phone", label="work", value="13700000000"
    )
    second = ask(case, work, other_collector)  # the daily cap counts every number of the borrower
    client.post(f"{OVERRIDES}{first.pk}/decide/", {"decision": "decline", "reason": "no"})
    third = ask(case, mobile, other_collector)
    response = client.get(OVERRIDES)
    assert [r.request.pk for r in response.context["rows"]] == [second.pk, third.pk]
    assert [r.request.pk for r in response.context["decided"]] == [first.pk]
    assert count_queries(client, OVERRIDES) == one
    # session, user, permissions (2), waiting rows and count, recent decisions; +1 spare
    with django_assert_max_num_queries(8):
        client.get(OVERRIDES)
