"""The collections admin (bounded queries, actions through services, errors as messages) and the
invariants the database states for cases, transitions, policies and promises."""

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from debt_collections.contacts import contact_log
from debt_collections.models import (
    Case,
    CaseContact,
    CaseHold,
    CollectionPolicy,
    DueReminder,
    LegalReferral,
    Notice,
    NoticeTemplate,
    OutboxEvent,
    PromiseToPay,
    Restructuring,
    ScanChunk,
    ScanRun,
    StageTransition,
    Team,
)
from debt_collections.referrals import referral_request
from debt_collections.restructuring import restructuring_propose
from debt_collections.scan import scan_run
from tests.debt_collections.conftest import make_user
from tests.factories import make_loan

pytestmark = pytest.mark.django_db

MODELS = [
    CollectionPolicy,
    Team,
    Case,
    StageTransition,
    ScanRun,
    OutboxEvent,
    DueReminder,
    CaseHold,
    PromiseToPay,
    NoticeTemplate,
    Notice,
    CaseContact,
    Restructuring,
    LegalReferral,
]


@pytest.fixture
def worked_book(staffed_teams, supervisor):
    call_command(
        "seed_demo", "--loans", "80", "--seed", "3", "--as-of", "2026-06-30", "--no-users", stdout=None
    )
    scan_run(as_of=date(2026, 6, 30))
    case = Case.objects.filter(status="open").first()
    CaseHold.objects.create(case=case, reason="dispute", note="n", set_by=supervisor, set_at=timezone.now())
    PromiseToPay.objects.create(
        case=case,
        amount="10",
        promised_date=date(2026, 7, 9),
        made_on=date(2026, 6, 30),
        created_by=supervisor,
    )
    assert Case.objects.count() > 5
    # Case work on three other cases, through the services (the scan queued the stages' notices).
    day, others = date(2026, 6, 30), list(Case.objects.filter(status="open").exclude(pk=case.pk))
    shanghai = [c for c in others if c.loan.borrower.time_zone == "Asia/Shanghai"]
    phone = shanghai[0].loan.borrower.contact_points.filter(kind="phone", is_third_party=False).first()
    contact_log(
        case=shanghai[0], channel="call", outcome="no_answer", actor=supervisor, contact_point=phone,
        occurred_at=datetime(2026, 6, 30, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai")),
    )  # fmt: skip
    restructuring_propose(
        case=shanghai[1], kind="term_extension", actor=supervisor, reason="Lower income",
        new_term=shanghai[1].loan.term + 12, first_due_date=date(2026, 7, 30), as_of=day,
    )  # fmt: skip
    referral_request(
        case=shanghai[2], actor=supervisor, reason="No payment", forbearance_considered="Offered a plan",
        as_of=day,
    )  # fmt: skip
    assert Notice.objects.exists()


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_list_and_change_pages_render_in_bounded_queries(
    admin_client, worked_book, model, django_assert_max_num_queries
):
    opts = model._meta
    with django_assert_max_num_queries(20):
        response = admin_client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"))
    assert response.status_code == 200
    obj = model.objects.order_by("pk").last()
    with django_assert_max_num_queries(30):
        response = admin_client.get(
            reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
        )
    assert response.status_code == 200


def test_reassign_action_goes_through_the_service(client, worked_book, supervisor):
    supervisor.is_staff = True
    supervisor.save()
    client.force_login(supervisor)
    target = make_user("target", "collector")
    cases = list(Case.objects.filter(status="open").order_by("pk")[:3])
    url = reverse("admin:debt_collections_case_changelist")
    data = {
        "action": "reassign",
        "_selected_action": [c.pk for c in cases],
        "assignee": target.pk,
        "reason": "",
    }
    response = client.post(url, data, follow=True)
    assert "Give a reason." in response.content.decode() or "请填写原因" in response.content.decode()
    assert not Case.objects.filter(assignee=target).exists()
    response = client.post(url, {**data, "reason": "Cover"}, follow=True)
    assert response.status_code == 200
    assert Case.objects.filter(assignee=target).count() == 3


def test_a_collector_may_not_reassign(client, worked_book, collector):
    collector.is_staff = True
    collector.save()
    client.force_login(collector)
    case = Case.objects.filter(status="open").first()
    url = reverse("admin:debt_collections_case_changelist")
    data = {"action": "reassign", "_selected_action": [case.pk], "assignee": collector.pk, "reason": "mine"}
    response = client.post(url, data, follow=True)
    assert response.status_code == 200
    case.refresh_from_db()
    assert case.assignee != collector


def test_adding_a_hold_in_the_admin_uses_the_service_and_shows_its_errors(admin_client, worked_book):
    case = Case.objects.filter(status="open").last()
    url = reverse("admin:debt_collections_casehold_add")
    response = admin_client.post(url, {"case": case.pk, "reason": "dispute", "note": "  "})
    assert response.status_code == 200 and not CaseHold.objects.filter(case=case).exists()
    response = admin_client.post(url, {"case": case.pk, "reason": "dispute", "note": "Fee disputed"})
    assert response.status_code == 302
    hold = CaseHold.objects.get(case=case)
    assert hold.set_by.username == "admin" and hold.history.count() == 1


class TestConstraints:
    def case(self, **kwargs):
        defaults = dict(stage="notice", stage_entered_on=date(2025, 3, 5), opened_on=date(2025, 3, 5))
        return Case.objects.create(loan=kwargs.pop("loan", None) or make_loan(), **{**defaults, **kwargs})

    def refused(self, fn):
        with pytest.raises(IntegrityError), transaction.atomic():
            fn()

    def test_one_open_case_per_loan(self):
        first = self.case()
        self.refused(lambda: self.case(loan=first.loan))
        Case.objects.filter(pk=first.pk).update(
            status="closed", closed_on=date(2025, 4, 1), close_reason="cured"
        )
        self.case(loan=first.loan)

    def test_a_closed_case_has_a_date_and_reason(self):
        self.refused(lambda: self.case(status="closed"))
        self.refused(lambda: self.case(close_reason="cured"))
        self.refused(lambda: self.case(status="closed", closed_on=date(2025, 3, 1), close_reason="cured"))

    def test_the_scan_never_enters_legal_referral_and_legal_referral_only_closes(self, supervisor):
        case = self.case()
        run = ScanRun.objects.create(as_of=date(2025, 3, 5), started_at=timezone.now())
        chunk = ScanChunk.objects.create(run=run, number=0, first_loan_id=1)
        base = dict(case=case, at=timezone.now(), as_of=date(2025, 3, 5), reason="r")
        self.refused(lambda: StageTransition.objects.create(
            from_stage="restructuring", to_stage="legal_referral", scan_chunk=chunk, **base))  # fmt: skip
        self.refused(lambda: StageTransition.objects.create(
            from_stage="legal_referral", to_stage="notice", actor=supervisor, **base))  # fmt: skip
        self.refused(
            lambda: StageTransition.objects.create(
                from_stage="", to_stage="legal_referral", actor=supervisor, **base
            )
        )
        self.refused(
            lambda: StageTransition.objects.create(from_stage="notice", to_stage="", actor=supervisor, **base)
        )
        self.refused(
            lambda: StageTransition.objects.create(from_stage="notice", to_stage="restructuring", **base)
        )
        StageTransition.objects.create(
            from_stage="restructuring", to_stage="legal_referral", actor=supervisor, **base
        )
        StageTransition.objects.create(
            from_stage="legal_referral", to_stage="", close_reason="legal_concluded", actor=supervisor, **base
        )

    def test_policy_thresholds_increase_and_there_is_one_default(self):
        default = CollectionPolicy.objects.get(product__isnull=True)
        assert (default.early_warning_dpd, default.notice_dpd, default.legal_referral_dpd) == (1, 31, 91)
        self.refused(lambda: CollectionPolicy.objects.create(name="Second default"))
        self.refused(lambda: CollectionPolicy.objects.filter(pk=default.pk).update(notice_dpd=5))

    def test_one_open_promise_per_case(self, supervisor):
        case = self.case()
        made = dict(
            case=case,
            amount="10",
            promised_date=date(2025, 3, 9),
            made_on=date(2025, 3, 5),
            created_by=supervisor,
        )
        PromiseToPay.objects.create(**made)
        self.refused(lambda: PromiseToPay.objects.create(**made))
        self.refused(lambda: PromiseToPay.objects.create(**{**made, "amount": "0", "status": "kept"}))
