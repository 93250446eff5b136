"""The back office in a real browser (Debian's Chromium, headless) against a live server on loopback:
a collector works a case, a supervisor approves a restructuring, the Chinese UI renders the worklist.

With ``SCREENSHOT_DIR`` set, each scenario also saves pictures of the pages it passes through.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from debt_collections.models import Case, CaseContact, PromiseToPay, Restructuring
from debt_collections.restructuring import restructuring_propose
from debt_collections.scan import scan_run
from tests.api.test_cases import case_of, join_team, loan_late, phone
from tests.browser.conftest import screenshot, sign_in
from tests.debt_collections.conftest import make_user
from tests.factories import PartnerFactory

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def worked_case(collector, *, dpd=15, opened_days_ago=5, name="王小明"):
    """A case opened ``opened_days_ago`` days ago (so yesterday's calls are after it opened), assigned
    to the collector in their team, for a borrower in Shanghai with a mobile phone."""
    partner = PartnerFactory(code="browser", name="Browser Lending")
    loan = loan_late(partner, dpd)
    borrower = loan.borrower
    borrower.full_name, borrower.region, borrower.time_zone = name, "CN", "Asia/Shanghai"
    borrower.save()
    phone(borrower)
    scan_run(as_of=timezone.localdate() - timedelta(days=opened_days_ago))
    case = case_of(loan)
    join_team(collector, case)
    Case.objects.filter(pk=case.pk).update(assignee=collector)  # on the collector's own list
    case.refresh_from_db()
    return case


def local(day, hour: int) -> str:
    """A ``datetime-local`` input value (the user's zone is Asia/Shanghai)."""
    return f"{day.isoformat()}T{hour:02d}:00"


def test_a_collector_is_refused_in_quiet_hours_then_logs_a_call_with_a_promise(new_page, live_server):
    collector = make_user("col", "collector")
    case = worked_case(collector)
    yesterday = timezone.localdate() - timedelta(days=1)
    page = new_page()
    sign_in(page, live_server, "col")

    # The worklist: the case is the top row; open it.
    assert page.url == f"{live_server.url}/work/"
    top = page.locator("table[data-keyboard-rows] tbody tr").first
    assert "王小明" in top.inner_text()
    screenshot(page, "worklist")
    top.locator("a").first.click()
    page.wait_for_url(f"**/work/cases/{case.pk}/")

    # Log a call at 23:00 the borrower's time: the form shows the refusal before it is sent.
    page.click("[data-action=contact]")
    form = page.locator(f"#contact-form-{case.pk}")
    form.locator("[name=occurred_at]").fill(local(yesterday, 23))
    form.locator("[name=occurred_at]").dispatch_event("change")
    decision = page.locator(f"#contact-check-{case.pk} .decision")
    decision.and_(page.locator("[data-decision=denied]")).wait_for()
    assert "Contact not allowed" in decision.inner_text()
    screenshot(page, "contact-refused")
    assert page.locator(f"#contact-submit-{case.pk}").is_disabled()
    assert not CaseContact.objects.exists()

    # 10:00 is within the contact hours: allowed; the borrower promises to pay.
    form.locator("[name=occurred_at]").fill(local(yesterday, 10))
    form.locator("[name=occurred_at]").dispatch_event("change")
    page.locator(f"#contact-check-{case.pk} [data-decision=allowed]").wait_for()
    form.locator("[name=outcome]").select_option("promise_to_pay")
    form.locator("input[name$='-amount']").first.fill("500.00")
    form.locator("input[name$='-due_date']").first.fill(
        (timezone.localdate() + timedelta(days=7)).isoformat()
    )
    form.locator("[name=notes]").fill("Will pay on Friday after salary.")
    screenshot(page, "contact-allowed")
    page.locator(f"#contact-submit-{case.pk}").click()
    page.wait_for_load_state("networkidle")

    # The call and the promise are in the case's history.
    page.wait_for_url(f"**/work/cases/{case.pk}/")
    assert CaseContact.objects.filter(case=case, outcome="promise_to_pay").count() == 1
    assert PromiseToPay.objects.filter(case=case).count() == 1
    history = page.locator("main").inner_text()
    assert "Will pay on Friday after salary." in history
    assert "500.00" in history
    screenshot(page, "case")


def test_a_supervisor_approves_a_colleague_s_restructuring(new_page, live_server):
    collector = make_user("col", "collector")
    supervisor = make_user("sup", "supervisor")
    case = worked_case(collector, dpd=40, opened_days_ago=3)
    case.team.supervisors.add(supervisor)
    proposal = restructuring_propose(
        case=case, kind="term_extension", actor=collector, reason="Lost his job; can pay half.",
        first_due_date=timezone.localdate() + timedelta(days=20), new_term=24,
    )  # fmt: skip
    page = new_page()
    sign_in(page, live_server, "sup")
    assert page.url == f"{live_server.url}/work/approvals/"
    screenshot(page, "approvals")
    page.click(f"a[href='/work/approvals/restructurings/{proposal.pk}/']")
    page.wait_for_url(f"**/approvals/restructurings/{proposal.pk}/")
    screenshot(page, "approval-restructuring")
    page.fill("textarea[name=reason]", "Income checked; the extension is affordable.")
    page.click("button[name=decision][value=approve]")
    page.wait_for_load_state("networkidle")
    proposal.refresh_from_db()
    assert proposal.status == Restructuring.Status.APPROVED
    assert proposal.decided_by == supervisor


def test_the_chinese_worklist_has_no_english_left(new_page, live_server):
    collector = make_user("col", "collector")
    worked_case(collector)
    page = new_page(locale="zh-CN")
    sign_in(page, live_server, "col")
    assert page.locator("html").get_attribute("lang") == "zh-hans"
    assert page.locator("h1").first.inner_text() == "工作列表"
    headers = page.locator("table[data-keyboard-rows] thead").inner_text()
    assert "阶段" in headers and "逾期天数" in headers
    assert not any(word in headers for word in ("Stage", "Borrower", "Amount", "DPD"))
    screenshot(page, "worklist-zh")
