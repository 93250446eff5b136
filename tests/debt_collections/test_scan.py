"""The collections scan: a loan's life through every stage, freezes, reruns, crashes, assignment."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal as D

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from debt_collections import referrals, services, stages
from debt_collections import scan as scanning
from debt_collections.models import (
    Case,
    CollectionPolicy,
    DueReminder,
    OutboxEvent,
    PromiseToPay,
    ScanChunk,
    ScanRun,
    StageTransition,
    Team,
    TeamMember,
)
from debt_collections.scan import ScanRefused, scan_run
from debt_collections.stages import Stage, Thresholds
from loans.models import Installment, Loan
from tests.debt_collections.conftest import make_user
from tests.factories import LoanProductFactory, make_loan, pay

pytestmark = pytest.mark.django_db

FEB1 = date(2025, 2, 1)  # the first due date of make_loan's loans


def days(n: int) -> date:
    return FEB1 + timedelta(days=n)


def open_case(loan) -> Case | None:
    return Case.objects.filter(loan=loan, status="open").first()


def moves(case) -> list[tuple[str, str]]:
    return [(t.from_stage, t.to_stage) for t in case.transitions.order_by("id")]


def installments_due(loan, *numbers) -> D:
    rows = Installment.objects.filter(loan=loan, number__in=numbers, superseded=False)
    return sum((r.outstanding for r in rows), D(0))


class TestTimeline:
    def test_one_loan_day_by_day_through_every_stage_to_referral_and_back_to_cured(self):
        loan = make_loan()
        seen = {}
        for n in range(0, 93):  # 2025-02-01 .. 2025-05-04, nothing paid
            scan_run(as_of=days(n))
            case = open_case(loan)
            seen[n] = case.stage if case else None
            expected = stages.target_stage(n, Thresholds())
            assert seen[n] == (expected.value if expected else None), f"day {n}"
        case = open_case(loan)
        assert [n for n in range(1, 93) if seen[n] != seen[n - 1]] == [1, 8, 31, 61]
        assert moves(case) == [
            ("", "early_warning"),
            ("early_warning", "follow_up_call"),
            ("follow_up_call", "notice"),
            ("notice", "restructuring"),
        ]
        # From 91 DPD the scan recommends legal referral but never enters it by itself.
        assert case.stage == "restructuring"
        assert case.referral_recommended_on == days(91)
        assert case.stage_entered_on == days(61) and case.opened_on == days(1)
        assert all(t.actor_id is None and t.scan_chunk_id for t in case.transitions.all())

        # A partial payment (the two oldest installments) lowers DPD: the case steps back down.
        step_down_day = days(93)
        pay(loan, installments_due(loan, 1, 2), step_down_day)
        summary = scan_run(as_of=step_down_day)
        case.refresh_from_db()
        assert summary.counts["deescalated"] == 1
        assert case.stage == "notice"  # oldest unpaid is now 2025-04-01: 34 DPD
        assert case.referral_recommended_on is None
        assert case.transitions.last().reason == "scan: 34 days past due"

        # Everything overdue is paid: the loan is cured and the case closes as cured.
        loan.refresh_from_db()
        pay(loan, loan.overdue_total, days(94))
        summary = scan_run(as_of=days(94))
        case.refresh_from_db()
        assert summary.counts["closed"] == 1
        assert (case.status, case.close_reason, case.closed_on) == ("closed", "cured", days(94))
        assert moves(case)[-2:] == [("restructuring", "notice"), ("notice", "")]
        assert case.transitions.last().close_reason == "cured"

        events = list(OutboxEvent.objects.filter(subject_id=case.pk).values_list("event_type", flat=True))
        assert events == [
            "case.opened",
            "case.stage_changed",
            "case.stage_changed",
            "case.stage_changed",
            "case.referral_recommended",
            "case.stage_changed",
            "case.closed",
        ]
        opened = OutboxEvent.objects.filter(event_type="case.opened").get()
        assert opened.partner_id == loan.partner_id
        assert opened.payload == {
            "case_id": case.pk, "loan_id": loan.pk, "loan_ref": loan.external_ref, "as_of": "2025-02-02",
            "stage": "early_warning", "from_stage": None, "days_past_due": 1, "close_reason": "",
        }  # fmt: skip
        # History: opened, three escalations, the recommendation, the step down, the close. Priority
        # changes every day and is not history.
        history = list(case.history.order_by("history_id").values_list("history_type", "stage", "status"))
        assert history[0] == ("+", "early_warning", "open")
        assert len(history) == 7
        assert history[-1] == ("~", "notice", "closed")

        # A later scan does not reopen a cured loan.
        scan_run(as_of=days(95))
        assert open_case(loan) is None

    def test_priority_is_the_score_of_stage_dpd_amount_and_broken_promises(self):
        loan = make_loan()
        scan_run(as_of=days(40))
        case = open_case(loan)
        loan.refresh_from_db()
        assert case.priority == stages.priority_score(
            stage=Stage.NOTICE, dpd=40, overdue=loan.overdue_total, broken_promises=0
        )
        scan_run(as_of=days(41))
        case.refresh_from_db()
        assert case.priority == stages.priority_score(
            stage=Stage.NOTICE, dpd=41, overdue=loan.overdue_total, broken_promises=0
        )

    def test_a_loan_found_late_opens_at_the_stage_its_dpd_calls_for(self):
        loan = make_loan()
        scan_run(as_of=days(95))
        case = open_case(loan)
        assert case.stage == "restructuring" and case.referral_recommended_on == days(95)
        assert moves(case) == [("", "restructuring")]
        assert (
            OutboxEvent.objects.filter(event_type="case.referral_recommended", subject_id=case.pk).count()
            == 1
        )

    def test_a_paid_off_loan_closes_its_case_as_paid_off(self):
        loan = make_loan(term=1, principal="1000.00", start_date=date(2025, 1, 1), first_due_date=FEB1)
        scan_run(as_of=days(10))
        case = open_case(loan)
        pay(loan, installments_due(loan, 1), days(11))
        loan.refresh_from_db()
        assert loan.status == "paid_off"
        scan_run(as_of=days(11))
        case.refresh_from_db()
        assert (case.status, case.close_reason) == ("closed", "paid_off")

    def test_grace_days_delay_the_case(self):
        loan = make_loan(product=LoanProductFactory(grace_days=3))
        scan_run(as_of=days(3))
        assert open_case(loan) is None
        scan_run(as_of=days(4))
        assert open_case(loan).stage == "early_warning"

    def test_a_product_policy_overrides_the_default(self):
        product = LoanProductFactory()
        CollectionPolicy.objects.create(
            name="Lenient", product=product, early_warning_dpd=5, follow_up_call_dpd=15, notice_dpd=45,
            restructuring_dpd=75, legal_referral_dpd=120,
        )  # fmt: skip
        lenient, default = make_loan(product=product), make_loan()
        scan_run(as_of=days(4))
        assert open_case(lenient) is None and open_case(default).stage == "early_warning"
        scan_run(as_of=days(40))
        assert open_case(lenient).stage == "follow_up_call" and open_case(default).stage == "notice"


class TestSupervisorMoves:
    def test_legal_referral_needs_a_supervisor_and_is_never_left_by_the_scan(
        self, supervisor, collector, settings, tmp_path
    ):
        settings.MEDIA_ROOT = str(tmp_path)  # the evidence pack is stored on approval
        loan = make_loan()
        scan_run(as_of=days(95))
        case = open_case(loan)
        request = referrals.referral_request(
            case=case, actor=collector, reason="No payment", forbearance_considered="Term extension refused",
            as_of=days(95),
        )  # fmt: skip
        with pytest.raises(PermissionDenied):
            referrals.referral_approve(referral=request, actor=collector, reason="ready", as_of=days(95))
        with pytest.raises(ValidationError) as excinfo:
            referrals.referral_approve(referral=request, actor=supervisor, reason="  ", as_of=days(95))
        assert "reason" in excinfo.value.message_dict
        referrals.referral_approve(
            referral=request, actor=supervisor, reason="Evidence complete", as_of=days(95)
        )
        case.refresh_from_db()
        assert case.stage == "legal_referral"
        last = case.transitions.last()
        assert (last.from_stage, last.to_stage, last.actor, last.scan_chunk) == (
            "restructuring", "legal_referral", supervisor, None
        )  # fmt: skip
        assert case.history.latest("history_id").history_user == supervisor
        assert OutboxEvent.objects.filter(event_type="case.stage_changed", subject_id=case.pk).count() == 1

        # A partial payment lowers DPD, but a case in legal referral does not step down.
        pay(loan, installments_due(loan, 1, 2, 3), days(96))
        scan_run(as_of=days(96))
        case.refresh_from_db()
        assert case.stage == "legal_referral" and case.is_open
        # Leaving it is closing it (legal concluded), by a supervisor.
        services.case_close(
            case=case,
            close_reason="legal_concluded",
            actor=supervisor,
            reason="Judgment paid",
            as_of=days(97),
        )
        case.refresh_from_db()
        assert (case.status, case.close_reason) == ("closed", "legal_concluded")
        assert moves(case)[-1] == ("legal_referral", "")

    def test_a_case_not_recommended_cannot_be_referred_by_a_collector(self, collector):
        loan = make_loan()
        scan_run(as_of=days(40))
        with pytest.raises(ValidationError) as excinfo:
            referrals.referral_request(
                case=open_case(loan), actor=collector, reason="x", forbearance_considered="y", as_of=days(40)
            )
        assert "case" in excinfo.value.message_dict

    def test_a_supervisor_moves_a_case_by_hand_and_bad_moves_are_refused(self, supervisor):
        loan = make_loan()
        scan_run(as_of=days(40))
        case = open_case(loan)
        services.case_move(
            case=case, to_stage="restructuring", actor=supervisor, reason="Hardship", as_of=days(40)
        )
        case.refresh_from_db()
        assert case.stage == "restructuring" and case.stage_entered_on == days(40)
        for bad in ("restructuring", "nonsense"):
            with pytest.raises(ValidationError) as excinfo:
                services.case_move(case=case, to_stage=bad, actor=supervisor, reason="x", as_of=days(40))
            assert "to_stage" in excinfo.value.message_dict
        assert case.transitions.count() == 2

    def test_reassign_one_or_many(self, supervisor, collector):
        loans = [make_loan() for _ in range(3)]
        scan_run(as_of=days(10))
        cases = [open_case(loan) for loan in loans]
        target = make_user("target", "collector")
        with pytest.raises(PermissionDenied):
            services.cases_reassign(cases=cases, assignee=target, actor=collector, reason="x")
        assert (
            services.cases_reassign(cases=cases, assignee=target, actor=supervisor, reason="Leave cover") == 3
        )
        assert set(Case.objects.filter(assignee=target).values_list("pk", flat=True)) == {c.pk for c in cases}
        latest = cases[0].history.latest("history_id")
        assert (latest.assignee_id, latest.history_user, latest.history_change_reason) == (
            target.pk, supervisor, "Leave cover"
        )  # fmt: skip
        assert services.cases_reassign(cases=cases[:1], assignee=target, actor=supervisor, reason="x") == 0
        inactive = make_user("gone", "collector", is_active=False)
        with pytest.raises(ValidationError) as excinfo:
            services.cases_reassign(cases=cases, assignee=inactive, actor=supervisor, reason="x")
        assert "assignee" in excinfo.value.message_dict


class TestFreezes:
    def test_a_hold_freezes_escalation_until_released_or_expired(self, supervisor):
        loan = make_loan()
        scan_run(as_of=days(2))
        case = open_case(loan)
        hold = services.case_hold_add(
            case=case, reason="dispute", note="Borrower disputes the fee", actor=supervisor
        )
        scan_run(as_of=days(10))  # 10 DPD calls for follow-up; the hold keeps early warning
        case.refresh_from_db()
        assert case.stage == "early_warning"
        services.case_hold_release(hold=hold, actor=supervisor)
        scan_run(as_of=days(11))
        case.refresh_from_db()
        assert case.stage == "follow_up_call"

        services.case_hold_add(
            case=case,
            reason="vulnerability",
            note="Hospital",
            until=days(35),
            actor=supervisor,
            as_of=days(11),
        )
        scan_run(as_of=days(35))
        assert open_case(loan).stage == "follow_up_call"
        scan_run(as_of=days(36))  # the hold ended yesterday
        assert open_case(loan).stage == "notice"

    def test_a_borrower_flag_such_as_a_dispute_freezes_escalation_too(self, supervisor):
        from compliance.contact import borrower_flag_release, borrower_flag_set

        loan = make_loan()
        scan_run(as_of=days(2))
        flag = borrower_flag_set(
            borrower=loan.borrower, kind="dispute", reason="Disputes the fee", actor=supervisor
        )
        scan_run(as_of=days(10))
        assert open_case(loan).stage == "early_warning"
        borrower_flag_release(flag=flag, actor=supervisor)
        scan_run(as_of=days(11))
        assert open_case(loan).stage == "follow_up_call"

    def test_a_hold_does_not_stop_the_case_from_stepping_down_or_closing(self, supervisor):
        loan = make_loan()
        scan_run(as_of=days(40))
        case = open_case(loan)
        services.case_hold_add(case=case, reason="bankruptcy", note="Filed", actor=supervisor, as_of=days(40))
        loan.refresh_from_db()
        pay(loan, loan.overdue_total, days(41))
        scan_run(as_of=days(41))
        case.refresh_from_db()
        assert case.status == "closed" and case.close_reason == "cured"

    def test_curing_the_loan_keeps_an_open_promise(self, collector):
        loan = make_loan()
        scan_run(as_of=days(9))
        case = open_case(loan)
        promise = services.promise_record(
            case=case, amount="9000.00", promised_date=days(30), actor=collector, as_of=days(9)
        )
        loan.refresh_from_db()
        pay(loan, loan.overdue_total, days(10))
        scan_run(as_of=days(10))
        promise.refresh_from_db()
        case.refresh_from_db()
        assert case.status == "closed" and (promise.status, promise.resolved_on) == ("kept", days(10))

    def test_hold_input_is_checked(self, supervisor, collector):
        loan = make_loan()
        scan_run(as_of=days(2))
        case = open_case(loan)
        for kwargs, field in [
            ({"reason": "sulking", "note": "x"}, "reason"),
            ({"reason": "dispute", "note": " "}, "note"),
            ({"reason": "dispute", "note": "x", "until": days(1), "as_of": days(2)}, "until"),
        ]:
            with pytest.raises(ValidationError) as excinfo:
                services.case_hold_add(case=case, actor=supervisor, **kwargs)
            assert field in excinfo.value.message_dict
        assert not case.holds.exists()

    def test_an_open_promise_freezes_escalation_and_a_broken_one_resumes_it(self, collector):
        loan = make_loan()
        scan_run(as_of=days(9))
        case = open_case(loan)
        assert case.stage == "follow_up_call"
        promise = services.promise_record(
            case=case, amount="500.00", promised_date=days(36), actor=collector, as_of=days(9)
        )
        scan_run(as_of=days(32))  # 32 DPD calls for notice; the promise is open
        case.refresh_from_db()
        assert case.stage == "follow_up_call"
        scan_run(as_of=days(37))  # the day after the date: within the policy's day of tolerance
        assert PromiseToPay.objects.get(pk=promise.pk).status == "open"
        scan_run(as_of=days(38))  # the date and its day of tolerance passed with nothing paid
        promise.refresh_from_db()
        case.refresh_from_db()
        assert (promise.status, promise.resolved_on) == ("broken", days(38))
        assert case.broken_promises == 1 and case.stage == "notice"
        loan.refresh_from_db()
        assert case.priority == stages.priority_score(
            stage=Stage.NOTICE, dpd=38, overdue=loan.overdue_total, broken_promises=1
        )
        event = OutboxEvent.objects.get(event_type="promise.broken")
        assert event.subject_id == promise.pk and event.payload["amount"] in ("500.00", "500")
        assert promise.history.latest("history_id").history_change_reason == "scan: promise broken"

    def test_a_kept_promise_is_marked_kept(self, collector):
        loan = make_loan()
        scan_run(as_of=days(9))
        case = open_case(loan)
        promise = services.promise_record(
            case=case, amount="500.00", promised_date=days(20), actor=collector, as_of=days(9)
        )
        pay(loan, "600.00", days(12))
        scan_run(as_of=days(12))
        promise.refresh_from_db()
        assert promise.status == "kept"
        assert not OutboxEvent.objects.filter(event_type="promise.broken").exists()
        with pytest.raises(ValidationError):
            services.promise_record(
                case=case, amount="-1", promised_date=days(20), actor=collector, as_of=days(12)
            )
        services.promise_record(
            case=case, amount="100", promised_date=days(20), actor=collector, as_of=days(12)
        )
        with pytest.raises(ValidationError) as excinfo:
            services.promise_record(
                case=case, amount="100", promised_date=days(21), actor=collector, as_of=days(12)
            )
        assert "case" in excinfo.value.message_dict
        assert PromiseToPay.objects.filter(case=case, status="open").count() == 1


class TestAssignment:
    def test_new_cases_go_to_the_least_loaded_active_collector(self):
        notice_team = Team.objects.get(stage="notice")
        u1, u2, u3 = (make_user(f"n{i}", "collector") for i in range(3))
        away = make_user("away", "collector")
        left = make_user("left", "collector", is_active=False)
        for user in (u1, u2, u3, left):
            TeamMember.objects.create(team=notice_team, user=user)
        TeamMember.objects.create(team=notice_team, user=away, is_active=False)
        # Existing load: u1 has 2 open cases, u3 has 1 (loans as late as the new ones, so they stay).
        existing = [make_loan() for _ in range(3)]
        for loan, user in zip(existing, (u1, u1, u3), strict=True):
            Case.objects.create(
                loan=loan, stage="notice", stage_entered_on=days(35), opened_on=days(35), team=notice_team,
                assignee=user,
            )  # fmt: skip
        new = [make_loan(principal=str(1000 * (i + 1))) for i in range(7)]
        scan_run(as_of=days(40))
        assigned = {loan.pk: open_case(loan).assignee_id for loan in new}
        assert None not in assigned.values()
        # The greedy rule, case by case in priority order, ties to the lower user id.
        loads = {u1.pk: 2, u2.pk: 0, u3.pk: 1}
        by_priority = sorted(new, key=lambda loan: (-open_case(loan).priority, loan.pk))
        for loan in by_priority:
            least = min(loads, key=lambda uid: (loads[uid], uid))
            assert assigned[loan.pk] == least
            loads[least] += 1
        assert loads == {u1.pk: 4, u2.pk: 3, u3.pk: 3}
        assert not Case.objects.filter(assignee__in=[away, left]).exists()

    def test_escalation_moves_the_case_to_the_next_stages_team(self, staffed_teams):
        loan = make_loan()
        scan_run(as_of=days(2))
        case = open_case(loan)
        assert case.team.stage == "early_warning" and case.assignee in staffed_teams
        other = Team.objects.get(stage="follow_up_call")
        TeamMember.objects.filter(team=other).delete()
        fresh = make_user("caller", "collector")
        TeamMember.objects.create(team=other, user=fresh)
        scan_run(as_of=days(9))
        case.refresh_from_db()
        assert (case.stage, case.team, case.assignee) == ("follow_up_call", other, fresh)

    def test_a_team_without_collectors_leaves_cases_in_its_queue_until_someone_joins(self):
        loan = make_loan()
        scan_run(as_of=days(2))
        case = open_case(loan)
        assert case.team.stage == "early_warning" and case.assignee is None
        joiner = make_user("joiner", "collector")
        TeamMember.objects.create(team=case.team, user=joiner)
        scan_run(as_of=days(3))
        case.refresh_from_db()
        assert case.assignee == joiner


def snapshot() -> dict:
    """Everything the scan writes, keyed so that two runs on the same book compare equal."""
    ref = dict(Loan.objects.values_list("pk", "external_ref"))
    cases = {
        (ref[c["loan_id"]], c["opened_on"]): c
        for c in Case.objects.values(
            "loan_id", "status", "stage", "stage_entered_on", "team_id", "assignee_id", "priority",
            "next_action_date", "referral_recommended_on", "broken_promises", "opened_on", "closed_on",
            "close_reason",
        )
    }  # fmt: skip
    case_loan = dict(Case.objects.values_list("pk", "loan_id"))
    return {
        "loans": sorted(Loan.objects.values_list("external_ref", *Loan.DELINQUENCY_FIELDS, "status")),
        "penalties": sorted(Installment.objects.values_list("loan__external_ref", "number", "penalty_due")),
        "cases": cases,
        "transitions": sorted(
            (ref[case_loan[t.case_id]], t.from_stage, t.to_stage, t.close_reason, t.as_of, t.reason)
            for t in StageTransition.objects.all()
        ),
        "history": sorted(
            (ref[h.loan_id], h.history_type, h.stage, h.status, h.assignee_id) for h in Case.history.all()
        ),
        "outbox": sorted(
            (e.event_type, e.payload["loan_ref"], e.payload["stage"] or "", e.payload["as_of"])
            for e in OutboxEvent.objects.exclude(event_type="promise.broken")
        ),
        "promises": sorted(
            PromiseToPay.objects.values_list("case__loan__external_ref", "status", "resolved_on")
        ),
        "reminders": sorted(DueReminder.objects.values_list("loan__external_ref", "due_date", "amount_due")),
    }


class Rollback(Exception):
    pass


def in_rollback(fn):
    """Run ``fn`` and return what it returns, then undo everything it wrote."""
    from django.db import transaction

    box = {}
    try:
        with transaction.atomic():
            box["value"] = fn()
            raise Rollback
    except Rollback:
        pass
    return box["value"]


@pytest.fixture
def varied_book(staffed_teams, collector):
    """Nine loans in every kind of state, scanned once on day 40, then some payments."""
    loans = [
        make_loan(first_due_date=FEB1 - timedelta(days=k * 9), start_date=FEB1 - timedelta(days=k * 9 + 31))
        for k in range(9)
    ]
    Loan.objects.filter(pk=loans[0].pk).update(at_risk=True)
    # Due two days after day 44: not late yet, at risk, so a pre-due reminder is queued.
    loans[8] = make_loan(first_due_date=date(2025, 3, 19), start_date=date(2025, 2, 15))
    Loan.objects.filter(pk=loans[8].pk).update(at_risk=True)
    scan_run(as_of=days(40))
    services.promise_record(
        case=open_case(loans[1]), amount="200", promised_date=days(45), actor=collector, as_of=days(40)
    )
    services.promise_record(
        case=open_case(loans[2]), amount="90000", promised_date=days(50), actor=collector, as_of=days(40)
    )
    pay(loans[1], "300.00", days(41))
    pay(loans[3], installments_due(loans[3], 1, 2), days(41))
    loans[4].refresh_from_db()
    pay(loans[4], loans[4].overdue_total, days(41))
    return loans


class TestRunsAndSafety:
    def test_the_same_date_twice_changes_nothing(self, varied_book):
        scan_run(as_of=days(46), chunk_size=3)
        before = snapshot()
        again = scan_run(as_of=days(46), chunk_size=3)
        assert again.already_done and "already done" in again.line()
        assert snapshot() == before
        # Forced, every chunk runs again: the set-based steps find nothing to change.
        forced = scan_run(as_of=days(46), force=True, chunk_size=3)
        assert forced.status == "done" and forced.chunks == 4  # ten loans, three a chunk
        counts = forced.counts
        assert (
            counts["cases_opened"] == counts["escalated"] == counts["closed"] == counts["loans_changed"] == 0
        )
        assert snapshot() == before
        assert ScanRun.objects.get(as_of=days(46)).attempts == 2

    def test_a_run_killed_between_chunks_and_started_again_ends_as_an_uninterrupted_one(
        self, varied_book, monkeypatch
    ):
        def crashed_then_resumed():
            real, calls = scanning.process_chunk, []

            def dies_on_the_third_chunk(chunk_id):
                calls.append(chunk_id)
                if len(calls) == 3:
                    raise RuntimeError("worker killed")
                return real(chunk_id)

            monkeypatch.setattr(scanning, "process_chunk", dies_on_the_third_chunk)
            with pytest.raises(RuntimeError, match="worker killed"):
                scan_run(as_of=days(46), chunk_size=3)
            monkeypatch.setattr(scanning, "process_chunk", real)
            run = ScanRun.objects.get(as_of=days(46))
            assert run.status == "running"
            assert list(run.chunks.values_list("status", flat=True)) == ["done", "done", "pending", "pending"]
            summary = scan_run(as_of=days(46), chunk_size=3)
            assert summary.status == "done" and summary.chunks_done == 4
            return snapshot()

        resumed = in_rollback(crashed_then_resumed)
        uninterrupted = in_rollback(lambda: (scan_run(as_of=days(46), chunk_size=3), snapshot())[1])
        # And the whole book refreshed (--full) in one chunk comes to the same state.
        full = in_rollback(lambda: (scan_run(as_of=days(46), full=True), snapshot())[1])
        assert resumed == uninterrupted == full
        assert resumed["cases"] and resumed["transitions"] and resumed["outbox"] and resumed["promises"]

    def test_a_back_dated_scan_is_refused_unless_forced(self):
        make_loan()
        scan_run(as_of=days(10))
        with pytest.raises(ScanRefused, match="before the latest scan"):
            scan_run(as_of=days(9))
        assert not ScanRun.objects.filter(as_of=days(9)).exists()
        assert scan_run(as_of=days(9), force=True).status == "done"

    def test_an_unfinished_earlier_run_is_finished_first(self, monkeypatch):
        make_loan()
        real = scanning.process_chunk
        monkeypatch.setattr(
            scanning, "process_chunk", lambda chunk_id: (_ for _ in ()).throw(RuntimeError("x"))
        )
        with pytest.raises(RuntimeError):
            scan_run(as_of=days(10))
        monkeypatch.setattr(scanning, "process_chunk", real)
        scan_run(as_of=days(11))
        assert list(ScanRun.objects.order_by("as_of").values_list("as_of", "status")) == [
            (days(10), "done"), (days(11), "done")
        ]  # fmt: skip

    def test_no_default_policy_refuses_the_scan(self):
        CollectionPolicy.objects.filter(product__isnull=True).delete()
        with pytest.raises(ScanRefused, match="default collection policy"):
            scan_run(as_of=days(10))

    def test_pre_due_reminders_for_loans_at_risk(self):
        risky, safe = make_loan(), make_loan()
        Loan.objects.filter(pk=risky.pk).update(at_risk=True)
        scan_run(as_of=days(-4))
        assert not DueReminder.objects.exists()
        summary = scan_run(as_of=days(-3))
        assert summary.counts["reminders_queued"] == 1
        reminder = DueReminder.objects.get()
        assert (reminder.loan_id, reminder.due_date, reminder.queued_on) == (risky.pk, FEB1, days(-3))
        assert reminder.amount_due == installments_due(risky, 1)
        scan_run(as_of=days(-2))
        assert DueReminder.objects.count() == 1 and not DueReminder.objects.filter(loan=safe).exists()

    def test_chunks_cover_the_book_and_the_last_one_is_open_ended(self):
        for _ in range(5):
            make_loan()
        summary = scan_run(as_of=days(5), chunk_size=2)
        chunks = list(ScanChunk.objects.order_by("number").values_list("first_loan_id", "end_loan_id"))
        assert len(chunks) == summary.chunks == 3
        assert chunks[-1][1] is None
        assert all(a[1] == b[0] for a, b in zip(chunks, chunks[1:], strict=False))
        assert summary.counts["cases_opened"] == 5
