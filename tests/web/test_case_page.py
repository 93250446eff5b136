"""The case page (``/work/cases/<pk>/``): who may open it, everything it shows (masked), the audited
reveal of one masked value, and a query count that does not grow with the borrower's history."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from compliance.models import AuditEvent, BorrowerFlag, ContactAttempt
from debt_collections import selectors, services
from debt_collections.contacts import contact_log
from debt_collections.models import Case, LegalReferral, Notice, Restructuring
from loans.masking import mask_email, mask_national_id, mask_phone
from loans.models import ContactPoint, Payment
from loans.services import payment_reverse
from tests.api.test_cases import case_of, join_team, loan_late, phone, scan, shanghai
from tests.factories import BorrowerFactory, pay
from tests.web.conftest import page

pytestmark = pytest.mark.django_db

NATIONAL_ID = "110101199003077777"
PHONE = "13800138000"
EMAIL = "zhangsan@example.com"
HTMX = {"HTTP_HX_REQUEST": "true"}


def url(case) -> str:
    return f"/work/cases/{case.pk}/"


def reveal_url(case) -> str:
    return f"/work/cases/{case.pk}/reveal/"


def today():
    return selectors.business_date()


def reveals() -> int:
    return AuditEvent.objects.filter(event_type="pii_reveal").count()


@pytest.fixture
def borrower(partner):
    return BorrowerFactory(partner=partner, full_name="张三", national_id=NATIONAL_ID)


@pytest.fixture
def case(partner, borrower, collector, supervisor):
    """The borrower's first loan's case in the call team (the collector is a member, the supervisor
    supervises it); a second loan of theirs is in the notice team, which neither belongs to."""
    first = loan_late(partner, 10, borrower=borrower, ref="LOAN-ONE")
    second = loan_late(partner, 40, borrower=borrower, ref="LOAN-TWO")
    scan()
    found = case_of(first)
    join_team(collector, found)
    found.team.supervisors.add(supervisor)
    found.other_case = case_of(second)
    phone(borrower, PHONE)
    ContactPoint.objects.create(borrower=borrower, kind="email", value=EMAIL, is_primary=True)
    return found


def enrich(case, collector, supervisor) -> None:
    """Payments (one reversed), contacts with notes, a promise, notices, a restructuring, a legal
    referral, a hold and a flag: a case with a history."""
    borrower = case.loan.borrower
    day = today() - timedelta(days=7)
    Case.objects.filter(pk=case.pk).update(opened_on=day, stage_entered_on=day)
    case.refresh_from_db()
    pay(case.loan, Decimal("120.00"), today() - timedelta(days=3))
    bounced = pay(case.loan, Decimal("80.00"), today() - timedelta(days=2))
    payment_reverse(payment=bounced, reason="transfer bounced")
    pay(case.other_case.loan, Decimal("50.00"), today() - timedelta(days=1))
    point = borrower.contact_points.get(kind="phone")
    yesterday = today() - timedelta(days=1)
    for hour, outcome in ((9, "no_answer"), (10, "right_party")):
        contact_log(
            case=case, channel="call", outcome=outcome, actor=collector, contact_point=point,
            occurred_at=shanghai(yesterday, hour), notes=f"note at {hour}",
        )  # fmt: skip
    services.promise_record(
        case=case,
        actor=collector,
        instalments=[(today() + timedelta(days=2), "200.00"), (today() + timedelta(days=9), "300.00")],
    )
    now = timezone.now()
    for channel, status, codes in (("sms", "refused", ["quiet_hours"]), ("letter", "queued", [])):
        Notice.objects.create(
            case=case, stage=case.stage, channel=channel, queued_on=today(), status=status,
            reason_codes=codes, created_by=collector,
        )  # fmt: skip
    Restructuring.objects.create(
        case=case, loan=case.loan, kind="penalty_waiver", first_due_date=today() + timedelta(days=30),
        waived_amount=Decimal("15.00"), reason="hardship after job loss", current_summary={},
        proposed_summary={}, proposed_by=collector, proposed_at=now,
    )  # fmt: skip
    LegalReferral.objects.create(
        case=case, reason="no payment in months", forbearance_considered="offered a holiday",
        requested_by=collector, requested_at=now,
    )  # fmt: skip
    services.case_hold_add(case=case, reason="other", note="checking the address", actor=supervisor)
    BorrowerFlag.objects.create(
        borrower=borrower, kind="vulnerable", reason="illness", set_by=supervisor, set_at=now
    )


# --- who may open it -------------------------------------------------------------------------------


def test_anonymous_is_sent_to_sign_in(case):
    response = page().get(url(case))
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_someone_without_a_case_role_is_refused(case, outsider):
    assert page(outsider).get(url(case)).status_code == 403


def test_another_teams_case_is_not_found(case, other_collector, supervisor2, collector):
    assert page(other_collector).get(url(case)).status_code == 404
    assert page(supervisor2).get(url(case)).status_code == 404
    assert page(collector).get(url(case.other_case)).status_code == 404
    assert page(collector).get("/work/cases/999999/").status_code == 404


@pytest.mark.parametrize("who", ["collector", "supervisor", "compliance_officer"])
def test_the_team_its_supervisor_and_compliance_open_the_case(case, who, request):
    response = page(request.getfixturevalue(who)).get(url(case))
    assert response.status_code == 200
    assert response.context["case"] == case


def test_only_get_opens_the_page(case, collector):
    assert page(collector).post(url(case)).status_code == 405


# --- what it shows ---------------------------------------------------------------------------------


def test_the_page_shows_the_borrower_masked_and_every_loan_with_schedule_and_payments(
    case, collector, supervisor
):
    enrich(case, collector, supervisor)
    response = page(collector).get(url(case))
    html = response.content.decode()
    # Personal data: masked, never in clear.
    assert mask_national_id(NATIONAL_ID) in html and NATIONAL_ID not in html
    assert mask_phone(PHONE) in html and PHONE not in html
    assert mask_email(EMAIL) in html and EMAIL not in html
    # Both loans, the case's own first; schedules of the current version; payments with their status.
    loans = response.context["loans"]
    assert [loan.external_ref for loan in loans] == ["LOAN-ONE", "LOAN-TWO"]
    assert len(loans[0].schedule) == loans[0].term
    assert {row.schedule_version for row in loans[0].schedule} == {loans[0].schedule_version}
    assert [p.status for p in loans[0].payment_list] == ["reversed", "posted"]
    assert "transfer bounced" in html and "LOAN-TWO" in html
    assert any(row.state == "overdue" for row in loans[0].schedule)
    # The other loan's case is in a team the collector cannot see: no link to it.
    assert f"/work/cases/{case.other_case.pk}/" not in html
    # Delinquency figures, history, promise, notices, restructuring, referral, hold, flag.
    loan = loans[0]
    for figure in (loan.overdue_principal, loan.outstanding_principal):
        assert f"{figure:,.2f}" in html
    assert "note at 9" in html and "note at 10" in html
    assert len(response.context["history"]) == 2
    assert "300.00" in html and "Promises to pay" in html
    assert "quiet hours" in html  # the refused notice's reason
    assert "hardship after job loss" in html and "no payment in months" in html
    assert "checking the address" in html and "illness" in html
    assert "Opened in" in html  # the scan opened the case: the timeline's first step


def test_a_supervisor_sees_the_link_to_the_borrowers_other_case_when_it_is_theirs(case, supervisor):
    case.other_case.team.supervisors.add(supervisor)
    html = page(supervisor).get(url(case)).content.decode()
    assert f"/work/cases/{case.other_case.pk}/" in html


def test_the_contact_history_takes_every_loan_of_the_borrower_and_the_latest_first(case, collector):
    borrower = case.loan.borrower
    now = timezone.now()
    for hours in (1, 5, 3):
        ContactAttempt.objects.create(
            borrower=borrower,
            loan=case.other_case.loan,
            channel="sms",
            direction="outbound",
            at=now - timedelta(hours=hours),
        )
    history = page(collector).get(url(case)).context["history"]
    assert [round((now - a.at).total_seconds() / 3600) for a in history] == [1, 3, 5]
    assert {a.loan_id for a in history} == {case.other_case.loan_id}


def test_a_long_history_is_cut_to_the_latest(case, collector, monkeypatch):
    monkeypatch.setattr(selectors, "HISTORY_LIMIT", 3)
    now = timezone.now()
    for minutes in range(5):
        ContactAttempt.objects.create(
            borrower=case.loan.borrower,
            channel="sms",
            direction="outbound",
            at=now - timedelta(minutes=minutes),
        )
    response = page(collector).get(url(case))
    assert len(response.context["history"]) == 3 and response.context["history_truncated"]
    assert b"Showing the 3 most recent" in response.content


def test_the_side_column_has_the_actions_for_a_collector_and_none_for_compliance(
    case, collector, compliance_officer
):
    assert b'class="card case-actions"' in page(collector).get(url(case)).content
    assert b'class="card case-actions"' not in page(compliance_officer).get(url(case)).content


def test_the_reveal_button_shows_only_to_those_who_may_reveal(
    case, collector, supervisor, compliance_officer
):
    for user in (collector, supervisor):
        assert b"/reveal/" not in page(user).get(url(case)).content
    html = page(compliance_officer).get(url(case)).content.decode()
    assert html.count(f'action="/work/cases/{case.pk}/reveal/"') == 3  # national ID, phone, e-mail


def test_the_case_page_in_chinese(case, collector):
    html = page(collector, "zh-hans").get(url(case)).content.decode()
    assert '<html lang="zh-hans">' in html and "电话跟进" in html


# --- reveal ----------------------------------------------------------------------------------------


def test_a_compliance_officer_reveals_the_national_id_with_a_reason_and_it_is_audited(
    case, compliance_officer
):
    before = reveals()
    response = page(compliance_officer).post(
        reveal_url(case), {"field": "national_id", "reason": "borrower called to verify identity"}, **HTMX
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert NATIONAL_ID in html and 'id="pii-national-id"' in html and "<html" not in html
    assert "no-store" in response["Cache-Control"]
    assert reveals() == before + 1
    event = AuditEvent.objects.filter(event_type="pii_reveal").latest("id")
    assert event.actor == compliance_officer and event.subject_id == str(case.loan.borrower_id)
    assert event.details["field"] == "national_id"
    assert event.details["reason"] == "borrower called to verify identity"
    assert NATIONAL_ID not in str(event.details)


def test_a_phone_number_is_revealed_on_a_page_of_its_own_without_htmx(case, compliance_officer):
    point = case.loan.borrower.contact_points.get(kind="phone")
    response = page(compliance_officer).post(
        reveal_url(case), {"field": f"contact_point:{point.pk}", "reason": "dispute review"}
    )
    assert response.status_code == 200
    assert PHONE in response.content.decode() and b"<html" in response.content
    assert AuditEvent.objects.filter(event_type="pii_reveal").latest("id").details["kind"] == "phone"


@pytest.mark.parametrize("reason", ["", "   "])
def test_without_a_reason_the_form_comes_back_with_an_error_and_nothing_is_revealed(
    case, compliance_officer, reason
):
    before = reveals()
    client = page(compliance_officer)
    response = client.post(reveal_url(case), {"field": "national_id", "reason": reason}, **HTMX)
    assert response.status_code == 422
    html = response.content.decode()
    assert NATIONAL_ID not in html and mask_national_id(NATIONAL_ID) in html
    assert "errorlist" in html and "This field is required." in html
    plain = client.post(reveal_url(case), {"field": "national_id", "reason": reason})
    assert plain.status_code == 200 and b"This field is required." in plain.content
    assert NATIONAL_ID not in plain.content.decode()
    assert reveals() == before


def test_a_too_long_reason_is_refused(case, compliance_officer):
    before = reveals()
    response = page(compliance_officer).post(
        reveal_url(case), {"field": "national_id", "reason": "x" * 501}, **HTMX
    )
    assert response.status_code == 422 and reveals() == before


def test_another_borrowers_contact_point_cannot_be_revealed_through_this_case(
    case, compliance_officer, partner
):
    stranger = BorrowerFactory(partner=partner)
    theirs = phone(stranger, "13911112222")
    before = reveals()
    for field in (f"contact_point:{theirs.pk}", "contact_point:abc", "date_of_birth"):
        response = page(compliance_officer).post(
            reveal_url(case), {"field": field, "reason": "curious"}, **HTMX
        )
        assert response.status_code == 422, field
        assert b"13911112222" not in response.content
    assert reveals() == before


def test_a_collector_may_not_reveal_and_nothing_is_written(case, collector, supervisor):
    before = reveals()
    for user in (collector, supervisor):
        response = page(user).post(
            reveal_url(case), {"field": "national_id", "reason": "just looking"}, **HTMX
        )
        assert response.status_code == 403
        assert NATIONAL_ID not in response.content.decode()
    assert reveals() == before


def test_reveal_on_a_case_one_cannot_see_is_not_found_and_needs_a_post(
    case, other_collector, compliance_officer
):
    assert (
        page(other_collector).post(reveal_url(case), {"field": "national_id", "reason": "r"}).status_code
        == 404
    )
    assert page(compliance_officer).get(reveal_url(case)).status_code == 405
    assert page().post(reveal_url(case), {"field": "national_id", "reason": "r"}).status_code == 302
    assert reveals() == 0


# --- queries ---------------------------------------------------------------------------------------


def queries_for(client, case) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url(case))
    assert response.status_code == 200
    return len(captured)


def test_the_page_costs_the_same_queries_for_a_sparse_case_as_for_one_with_a_long_history(
    partner, case, collector, supervisor, django_assert_max_num_queries
):
    bare_borrower = BorrowerFactory(partner=partner)
    bare_loan = loan_late(partner, 12, borrower=bare_borrower)
    Case.objects.filter(pk=case.pk).update(assignee=collector)
    enrich(case, collector, supervisor)
    # More of everything on the rich case: loans, payments, contacts, promises.
    for i in range(3):
        extra = loan_late(partner, 5 + i, borrower=case.loan.borrower, ref=f"LOAN-EXTRA-{i}")
        pay(extra, Decimal("10.00"), today())
    for minutes in range(10):
        ContactAttempt.objects.create(
            borrower=case.loan.borrower,
            channel="sms",
            direction="outbound",
            at=timezone.now() - timedelta(minutes=minutes),
        )
    from debt_collections.scan import scan_run

    scan_run(as_of=today(), force=True)
    bare = case_of(bare_loan)
    Case.objects.filter(pk=bare.pk).update(assignee=collector, team=case.team)
    # One promise (its instalments are a query of their own only when there is a promise).
    services.promise_record(case=bare, actor=collector, amount="10.00", promised_date=today())
    client = page(collector)
    client.get(url(case))  # the session's first request reads the user's preferences
    rich_count, bare_count = queries_for(client, case), queries_for(client, bare)
    assert rich_count == bare_count, (rich_count, bare_count)
    with django_assert_max_num_queries(19):
        response = client.get(url(case))
    assert len(response.context["loans"]) == 5
    assert sum(len(loan.payment_list) for loan in response.context["loans"]) == 6
    assert Payment.objects.filter(loan__borrower=case.loan.borrower).count() == 6
