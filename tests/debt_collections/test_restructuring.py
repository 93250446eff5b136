"""Restructurings, maker-checker: proposals, approvals, refusals, and the loan's life afterwards."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from compliance.models import AuditEvent
from debt_collections.models import Case, CollectionPolicy, OutboxEvent, Restructuring, StageTransition
from debt_collections.restructuring import (
    restructuring_approve,
    restructuring_preview,
    restructuring_propose,
    restructuring_reject,
    restructuring_withdraw,
)
from debt_collections.scan import scan_run
from loans.models import Allocation, Installment, Loan
from tests.debt_collections.conftest import make_user
from tests.factories import LoanProductFactory, make_loan, pay

pytestmark = pytest.mark.django_db

AS_OF = date(2025, 5, 15)  # Apr 1 and May 1 unpaid: 44 days past due
JUNE1 = date(2025, 6, 1)

TERMS = {
    "term_extension": {"new_term": 24},
    "rate_reduction": {"new_annual_rate": D("0.06")},
    "payment_holiday": {"holiday_periods": 2},
    "penalty_waiver": {},
    "settlement": {"settlement_amount": D("8000.00")},
}


@pytest.fixture
def senior(db):
    return make_user("senior", "senior_supervisor")


@pytest.fixture
def case(db):
    loan = make_loan(product=LoanProductFactory(penalty_rate=D("0.0365")))
    pay(loan, "1066.19", date(2025, 2, 1), as_of=date(2025, 2, 1))
    pay(loan, "1066.19", date(2025, 3, 1), as_of=date(2025, 3, 1))
    scan_run(as_of=AS_OF)
    return Case.objects.get(loan=loan, status="open")


def propose(case, actor, kind="term_extension", **terms):
    terms = {**TERMS[kind], **terms}
    terms.setdefault("first_due_date", JUNE1)
    return restructuring_propose(case=case, kind=kind, actor=actor, reason="hardship", as_of=AS_OF, **terms)


def approve(proposal, actor, as_of=AS_OF):
    return restructuring_approve(restructuring=proposal, actor=actor, reason="affordable", as_of=as_of)


def allocations(loan):
    rows = Allocation.objects.filter(installment__loan=loan)
    return sorted((a.payment_id, a.principal, a.interest, a.fee, a.penalty) for a in rows)


@pytest.mark.parametrize("kind", ["term_extension", "rate_reduction", "payment_holiday", "settlement"])
def test_each_kind_end_to_end(case, collector, supervisor, kind):
    loan = case.loan
    unpaid = loan.installments.filter(superseded=False)
    unpaid_principal = sum((i.principal_due - i.principal_paid for i in unpaid), D(0))
    before = allocations(loan)
    preview = restructuring_preview(case=case, kind=kind, as_of=AS_OF, first_due_date=JUNE1, **TERMS[kind])
    proposal = propose(case, collector, kind)
    assert proposal.status == "proposed" and proposal.proposed_summary == preview["proposed"]
    assert proposal.current_summary == preview["current"]
    assert set(proposal.proposed_summary) >= {"installment", "total_cost", "end_date", "rows"}
    assert isinstance(proposal.proposed_summary["total_cost"], str)

    approve(proposal, supervisor)
    proposal.refresh_from_db()
    loan = Loan.objects.get(pk=loan.pk)
    assert proposal.status == "approved" and proposal.schedule_version == 2 == loan.schedule_version
    assert proposal.decided_by == supervisor
    current = Installment.objects.filter(loan=loan, superseded=False)
    new_principal = sum((i.principal_due - i.principal_paid for i in current), D(0))
    if kind == "settlement":
        assert new_principal == D("8000.00") and proposal.waived_amount > 0
    else:
        assert new_principal == unpaid_principal
    assert allocations(loan) == before  # payments before the restructuring allocate as they did
    assert loan.bucket == "current" and loan.oldest_unpaid_due_date >= JUNE1
    case.refresh_from_db()
    assert case.status == "closed" and case.close_reason == "restructured_performing"
    closing = StageTransition.objects.filter(case=case).order_by("id").last()
    assert closing.to_stage == "" and closing.actor == supervisor
    event = OutboxEvent.objects.get(event_type="restructuring.decided")
    assert event.payload["status"] == "approved" and event.payload["kind"] == kind
    audit = AuditEvent.objects.filter(event_type="approval").order_by("id").last()
    assert audit.details["kind"] == kind and audit.details["schedule_version_to"] == 2
    proposed = AuditEvent.objects.get(event_type="restructuring", details__step="proposed")
    assert (proposed.actor, proposed.subject_id) == (collector, str(proposal.pk))
    if kind == "rate_reduction":
        assert loan.annual_rate == D("0.06")


def test_penalty_waiver_survives_the_next_scan(case, collector, supervisor):
    loan = case.loan
    assert loan.overdue_penalty > 0
    proposal = propose(case, collector, "penalty_waiver")
    assert proposal.waived_amount == loan.overdue_penalty
    approve(proposal, supervisor)
    loan.refresh_from_db()
    assert loan.overdue_penalty == 0 and loan.overdue_principal > 0
    # Still in arrears: the case stays open for the scan to carry on.
    case.refresh_from_db()
    assert case.status == "open"
    scan_run(as_of=date(2025, 5, 16), full=True)
    loan.refresh_from_db()
    waived = sum((i.penalty_waived for i in loan.installments.filter(superseded=False)), D(0))
    assert waived == proposal.waived_amount
    # One more day of penalty on the late principal, nothing of what was waived.
    assert D("0") < loan.overdue_penalty < D("2")


def test_a_restructured_loan_that_misses_a_payment_reenters_collections(case, collector, supervisor):
    approve(propose(case, collector), supervisor)
    loan = Loan.objects.get(pk=case.loan_id)
    scan_run(as_of=date(2025, 5, 31))
    assert not Case.objects.filter(loan=loan, status="open").exists()
    scan_run(as_of=date(2025, 6, 2))  # the first new instalment, June 1, is unpaid
    reopened = Case.objects.get(loan=loan, status="open")
    assert reopened.pk != case.pk and reopened.stage == "early_warning"
    loan.refresh_from_db()
    assert loan.oldest_unpaid_due_date == JUNE1


# --- refusals ----------------------------------------------------------------------------------


def nothing_written(loan):
    loan.refresh_from_db()
    return (
        loan.schedule_version == 1 and not Installment.objects.filter(loan=loan, schedule_version=2).exists()
    )


def test_self_approval_is_refused(case, supervisor):
    proposal = propose(case, supervisor)
    with pytest.raises(ValidationError) as exc:
        approve(proposal, supervisor)
    assert "decided_by" in exc.value.message_dict
    assert nothing_written(case.loan)
    with pytest.raises(ValidationError):
        restructuring_reject(restructuring=proposal, actor=supervisor, reason="no")


def test_a_collector_cannot_approve(case, collector, staffed_teams):
    proposal = propose(case, collector)
    with pytest.raises(PermissionDenied):
        approve(proposal, staffed_teams[0])
    assert nothing_written(case.loan)


def test_a_waiver_above_the_limit_needs_a_senior_supervisor(case, collector, supervisor, senior):
    CollectionPolicy.objects.filter(product__isnull=True).update(supervisor_waiver_limit=D("1000.00"))
    proposal = propose(case, collector, "settlement")
    assert proposal.waived_amount > D("1000.00")
    with pytest.raises(PermissionDenied):
        approve(proposal, supervisor)
    assert nothing_written(case.loan)
    approve(proposal, senior)
    proposal.refresh_from_db()
    assert proposal.status == "approved"


def test_the_product_policy_limit_applies(case, collector, supervisor):
    CollectionPolicy.objects.create(name="own", product=case.loan.product, supervisor_waiver_limit=D("10.00"))
    proposal = propose(case, collector, "settlement", settlement_amount=D("10000.00"))
    assert D("10.00") < proposal.waived_amount < D("5000.00")
    with pytest.raises(PermissionDenied):
        approve(proposal, supervisor)


def test_a_rate_increase_is_not_a_reduction(case, collector):
    with pytest.raises(ValidationError) as exc:
        propose(case, collector, "rate_reduction", new_annual_rate=D("0.15"))
    assert "new_annual_rate" in exc.value.message_dict
    assert not Restructuring.objects.exists()


def test_a_settlement_must_be_below_the_outstanding(case, collector):
    with pytest.raises(ValidationError) as exc:
        propose(case, collector, "settlement", settlement_amount=D("20000.00"))
    assert "settlement_amount" in exc.value.message_dict
    assert not Restructuring.objects.exists()


def test_a_closed_case_cannot_be_restructured(case, collector, supervisor):
    approve(propose(case, collector), supervisor)
    with pytest.raises(ValidationError) as exc:
        propose(case, collector, "penalty_waiver")
    assert "case" in exc.value.message_dict


def test_one_open_proposal_per_case(case, collector):
    propose(case, collector)
    with pytest.raises(ValidationError) as exc:
        propose(case, collector, "rate_reduction")
    assert "case" in exc.value.message_dict
    assert Restructuring.objects.count() == 1


def test_a_stale_proposal_is_refused(case, collector, supervisor):
    proposal = propose(case, collector)
    pay(case.loan, "500.00", AS_OF, as_of=AS_OF)  # the loan changed after the proposal
    with pytest.raises(ValidationError) as exc:
        approve(proposal, supervisor)
    assert "restructuring" in exc.value.message_dict
    assert nothing_written(case.loan)
    proposal.refresh_from_db()
    assert proposal.status == "proposed"


def test_bad_input_names_the_field(case, collector):
    with pytest.raises(ValidationError) as exc:
        propose(case, collector, first_due_date=AS_OF)
    assert "first_due_date" in exc.value.message_dict
    with pytest.raises(ValidationError) as exc:
        propose(case, collector, "term_extension", new_annual_rate=D("0.05"))
    assert "new_annual_rate" in exc.value.message_dict
    with pytest.raises(ValidationError) as exc:
        restructuring_propose(
            case=case,
            kind="term_extension",
            actor=collector,
            reason=" ",
            first_due_date=JUNE1,
            new_term=24,
            as_of=AS_OF,
        )
    assert "reason" in exc.value.message_dict
    assert not Restructuring.objects.exists()


def test_reject_and_withdraw(case, collector, supervisor):
    proposal = propose(case, collector)
    with pytest.raises(PermissionDenied):
        restructuring_withdraw(restructuring=proposal, actor=supervisor)
    restructuring_reject(restructuring=proposal, actor=supervisor, reason="not affordable")
    proposal.refresh_from_db()
    assert proposal.status == "rejected" and proposal.decision_reason == "not affordable"
    assert OutboxEvent.objects.get(event_type="restructuring.decided").payload["status"] == "rejected"
    assert nothing_written(case.loan)
    again = propose(case, collector, "rate_reduction")
    restructuring_withdraw(restructuring=again, actor=collector)
    again.refresh_from_db()
    assert again.status == "withdrawn"
    with pytest.raises(ValidationError):
        approve(again, supervisor)


# --- admin ---------------------------------------------------------------------------------------


def test_admin_propose_compare_and_approve(client, case):
    from django.urls import reverse

    maker = make_user("maker", "collector", is_staff=True)
    checker = make_user("checker", "supervisor", is_staff=True)
    client.force_login(maker)
    url = reverse("admin:debt_collections_restructuring_add")
    data = {"case": case.pk, "kind": "rate_reduction", "first_due_date": "2099-06-01", "reason": "hardship"}
    response = client.post(url, {**data, "new_annual_rate": "0.50"})
    assert response.status_code == 200 and not Restructuring.objects.exists()  # refused, shown on the form
    assert "new_annual_rate" in response.context["adminform"].form.errors
    response = client.post(url, {**data, "new_annual_rate": "0.06"})
    assert response.status_code == 302
    proposal = Restructuring.objects.get()
    assert proposal.proposed_by == maker
    page = client.get(
        reverse("admin:debt_collections_restructuring_change", args=[proposal.pk]), HTTP_ACCEPT_LANGUAGE="en"
    )
    assert page.status_code == 200
    content = page.content.decode()
    assert "current schedule" in content and "proposed schedule" in content
    assert (
        proposal.proposed_summary["total_cost"] in content
        and proposal.current_summary["total_cost"] in content
    )

    client.force_login(checker)
    changelist = reverse("admin:debt_collections_restructuring_changelist")
    action = {"action": "approve", "_selected_action": [proposal.pk], "index": 0}
    client.post(changelist, {**action, "reason": ""}, follow=True)
    proposal.refresh_from_db()
    assert proposal.status == "proposed"  # a decision needs a reason
    client.post(changelist, {**action, "reason": "affordable"}, follow=True)
    proposal.refresh_from_db()
    assert proposal.status == "approved" and proposal.decided_by == checker
