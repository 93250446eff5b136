"""The audit log: a hash chain that only grows, refuses edits (the ORM everywhere, a trigger on
PostgreSQL), tells on raw-SQL tampering (``verify_audit_chain``), never forks under concurrent writers,
and is written by logins and the collections services in the same transaction as what they do."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from contextlib import contextmanager
from datetime import date, timedelta
from decimal import Decimal
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth import authenticate
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction
from django.http import HttpRequest
from django.test import RequestFactory
from django.urls import reverse

from compliance.admin.audit import tail_status
from compliance.audit import GENESIS, audit_record, compute_hash, verify_chain
from compliance.models import AuditEvent, AuditEventType
from debt_collections import referrals, services
from debt_collections.models import Case, CollectionPolicy, ScanRun, StageTransition, Team
from debt_collections.scan import scan_run
from tests.debt_collections.conftest import make_user
from tests.factories import LoanProductFactory, make_loan

ROOT = Path(__file__).resolve().parents[2]
TABLE = "compliance_auditevent"  # spelled out in the raw SQL below
assert AuditEvent._meta.db_table == TABLE
FEB1 = date(2025, 2, 1)  # the first due date of make_loan's loans
T = AuditEventType


def days(n: int) -> date:
    return FEB1 + timedelta(days=n)


def record(n: int = 1) -> list[AuditEvent]:
    return [
        audit_record(
            event_type=T.EXPORT, actor_label="system", subject=("loans.borrower", i), details={"i": i}
        )
        for i in range(n)
    ]


def events(event_type) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(event_type=event_type).order_by("id"))


@contextmanager
def tampering():
    """A cursor that gets past the append-only trigger (PostgreSQL: triggers do not fire for a
    session in replica mode), as a superuser could."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET session_replication_role = replica")
        try:
            yield cursor
        finally:
            if connection.vendor == "postgresql":
                cursor.execute("RESET session_replication_role")


def verify(*args) -> str:
    out = StringIO()
    call_command("verify_audit_chain", *args, stdout=out)
    return out.getvalue()


def broken(*args) -> str:
    with pytest.raises(CommandError) as excinfo:
        verify(*args)
    message = str(excinfo.value)
    assert "\n" not in message and excinfo.value.returncode == 1
    return message


@pytest.fixture
def supervisor(db):
    return make_user("sup", "supervisor")


@pytest.fixture
def collector(db):
    return make_user("col", "collector")


@pytest.mark.django_db
class TestChain:
    def test_each_event_carries_the_hash_of_the_one_before(self):
        first = audit_record(
            event_type=T.EXPORT,
            actor_label="system",
            subject=("loans.borrower", 7),
            details={"amount": Decimal("1.50"), "on": date(2025, 3, 1), "名字": "张三"},
        )
        second, third = record(2)
        assert first.prev_hash == GENESIS
        assert (second.prev_hash, third.prev_hash) == (first.hash, second.hash)
        stored = AuditEvent.objects.get(pk=first.pk)  # the hash survives the database round trip
        assert stored.details == {"amount": "1.50", "on": "2025-03-01", "名字": "张三"}
        assert stored.hash == compute_hash(
            prev_hash=GENESIS,
            event_type="export",
            at=stored.at,
            actor_id=None,
            actor_label="system",
            subject_type="loans.borrower",
            subject_id="7",
            details=stored.details,
        )
        assert verify_chain() is None

    def test_an_unknown_event_type_is_refused(self):
        with pytest.raises(ValueError, match="unknown audit event type"):
            audit_record(event_type="coffee_break", actor_label="system")
        assert not AuditEvent.objects.exists()

    def test_the_orm_refuses_updates_and_deletes(self):
        event = record()[0]
        event.details = {"i": 99}
        with pytest.raises(PermissionError, match="append-only"):
            event.save()
        with pytest.raises(PermissionError, match="append-only"):
            event.delete()
        with pytest.raises(PermissionError, match="append-only"):
            AuditEvent.objects.filter(pk=event.pk).update(details={})
        with pytest.raises(PermissionError, match="append-only"):
            AuditEvent.objects.all().delete()
        assert AuditEvent.objects.get().details == {"i": 0}


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE compliance_auditevent SET details = '{}'",
        "UPDATE compliance_auditevent SET id = id + 1000",
        "DELETE FROM compliance_auditevent",
        "TRUNCATE compliance_auditevent",
        "TRUNCATE compliance_auditevent CASCADE",
    ],
)
def test_on_postgresql_a_trigger_refuses_raw_sql_edits(on_postgres, statement):
    record(2)
    with connection.cursor() as cursor:
        with pytest.raises(DatabaseError, match="audit events are append-only"), transaction.atomic():
            # What every database but a test database has: no permission to TRUNCATE either.
            cursor.execute("SET LOCAL compliance.audit_truncate = ''")
            # The inserts' foreign-key checks are deferred to commit; TRUNCATE wants them done first.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute(statement)
        cursor.execute(
            "SELECT tgname FROM pg_trigger WHERE tgrelid = %s::regclass AND NOT tgisinternal ORDER BY 1",
            [TABLE],
        )
        assert [r[0] for r in cursor.fetchall()] == [
            "compliance_auditevent_no_truncate",
            "compliance_auditevent_no_update_delete",
        ]
    assert AuditEvent.objects.count() == 2 and verify_chain() is None


@pytest.mark.django_db
class TestVerifyCommand:
    def test_an_intact_chain_exits_0_with_one_line_naming_the_head(self):
        assert verify() == "Audit chain intact: 0 events.\n"
        *_, last = record(3)
        assert verify() == f"Audit chain intact: 3 events (last #{last.pk}, hash {last.hash[:16]}…)\n"
        assert f"hash {last.hash})" in verify("--verbosity", "2")

    def test_an_edited_row_is_named(self):
        a, b, c = record(3)
        with tampering() as cursor:
            cursor.execute("UPDATE compliance_auditevent SET details = %s WHERE id = %s", ['{"i": 42}', b.pk])
        assert broken() == (
            f"Audit chain broken at event #{b.pk}: its contents do not match its hash (the row was edited)."
        )

    def test_an_edited_and_rehashed_row_breaks_the_next_link(self):
        a, b, c = record(3)
        with tampering() as cursor:
            cursor.execute(
                "UPDATE compliance_auditevent SET actor_label = 'nobody', hash = %s WHERE id = %s",
                ["f" * 64, b.pk],
            )
        assert broken().startswith(f"Audit chain broken at event #{b.pk}: its contents do not match")
        # Recomputing the row's own hash right only moves the break to the event after it.
        b = AuditEvent.objects.get(pk=b.pk)
        fields = ("prev_hash", "event_type", "at", "actor_id", "actor_label", "subject_type", "subject_id")
        rehashed = compute_hash(details=b.details, **{name: getattr(b, name) for name in fields})
        with tampering() as cursor:
            cursor.execute("UPDATE compliance_auditevent SET hash = %s WHERE id = %s", [rehashed, b.pk])
        assert broken() == (
            f"Audit chain broken at event #{c.pk}: its link to the event before is broken "
            "(a row deleted or moved)."
        )

    @pytest.mark.parametrize("position", [0, 1])
    def test_a_deleted_row_is_named_by_the_event_after_it(self, position):
        rows = record(3)
        with tampering() as cursor:
            cursor.execute("DELETE FROM compliance_auditevent WHERE id = %s", [rows[position].pk])
        assert broken() == (
            f"Audit chain broken at event #{rows[position + 1].pk}: its link to the event before is broken "
            "(a row deleted or moved)."
        )

    def test_two_swapped_rows_are_named(self):
        a, b, c, d = record(4)
        with tampering() as cursor:
            cursor.execute("UPDATE compliance_auditevent SET id = -1 WHERE id = %s", [b.pk])
            cursor.execute("UPDATE compliance_auditevent SET id = %s WHERE id = %s", [b.pk, c.pk])
            cursor.execute("UPDATE compliance_auditevent SET id = %s WHERE id = -1", [c.pk])
        assert broken() == (
            f"Audit chain broken at event #{b.pk}: its link to the event before is broken "
            "(a row deleted or moved)."
        )

    def test_a_deleted_newest_event_needs_the_noted_head_to_be_seen(self):
        *_, head = record(3)
        noted = head.hash[:16] + "…"  # as an intact run printed it
        assert verify("--expect-hash", noted, "--expect-count", "3").startswith("Audit chain intact: 3")
        record(2)  # the log grows: the noted head is still in it
        assert verify("--expect-hash", head.hash, "--expect-count", "3").startswith("Audit chain intact: 5")
        with tampering() as cursor:
            cursor.execute("DELETE FROM compliance_auditevent WHERE id >= %s", [head.pk])
        assert verify().startswith("Audit chain intact: 2 events")  # the chain alone cannot tell
        assert broken("--expect-hash", noted) == (
            f"Audit chain intact but incomplete: no event has hash {head.hash[:16]}… any more "
            f"(the newest events were deleted); 2 events, last #{head.pk - 1}."
        )
        assert broken("--expect-count", "5") == (
            "Audit chain intact but incomplete: 2 events, 5 expected (the newest events were deleted)."
        )

    @pytest.mark.parametrize(
        ("args", "message"),
        [
            (["--expect-hash", "abc"], "--expect-hash must be 16 to 64 hex digits."),
            (["--expect-hash", "z" * 20], "--expect-hash must be 16 to 64 hex digits."),
            (["--expect-count", "-1"], "--expect-count must be 0 or more."),
        ],
    )
    def test_bad_flags_are_one_line(self, args, message):
        assert broken(*args) == message


# Threads use connections of their own: the rows must be committed, and the flush afterwards
# (TRUNCATE, allowed on a test database only) empties the table again.
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_writers_on_postgresql_never_fork_the_chain(on_postgres):
    writers, each = 8, 25
    start = threading.Barrier(writers)
    errors = []

    def write(n: int) -> None:
        try:
            start.wait(timeout=30)
            for i in range(each):
                audit_record(
                    event_type=T.EXPORT,
                    actor_label=f"writer-{n}",
                    subject=("test.writer", n),
                    details={"i": i},
                )
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors and not any(t.is_alive() for t in threads)
    rows = list(AuditEvent.objects.order_by("id").values_list("prev_hash", "hash", "subject_id", "details"))
    assert len(rows) == writers * each
    assert [prev for prev, *_ in rows] == [GENESIS] + [h for _, h, *_ in rows[:-1]]  # one line, no fork
    for n in range(writers):
        assert [d["i"] for _, _, s, d in rows if s == str(n)] == list(range(each))
    assert verify_chain() is None
    assert verify().startswith(f"Audit chain intact: {writers * each} events")


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_manage_py_exits_0_on_an_intact_chain_and_1_naming_the_first_bad_event(on_postgres):
    db = connection.settings_dict
    env = dict(os.environ)
    env["DATABASE_URL"] = (
        f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"
    )

    def manage_py() -> subprocess.CompletedProcess:
        return subprocess.run(  # noqa: S603 - a fixed command line
            [sys.executable, "manage.py", "verify_audit_chain"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip

    a, b, c = record(3)
    intact = manage_py()
    assert (intact.returncode, intact.stdout) == (
        0,
        f"Audit chain intact: 3 events (last #{c.pk}, hash {c.hash[:16]}…)\n",
    )
    with tampering() as cursor:
        cursor.execute("UPDATE compliance_auditevent SET actor_label = 'someone else' WHERE id = %s", [b.pk])
    bad = manage_py()
    assert bad.returncode == 1 and bad.stdout == ""
    assert bad.stderr == (
        f"CommandError: Audit chain broken at event #{b.pk}: its contents do not match its hash "
        "(the row was edited).\n"
    )


@pytest.mark.django_db
class TestLogins:
    def test_a_login_is_an_event_of_the_user(self, client):
        user = make_user("ann", is_staff=True)
        # django-axes needs the request; a bare one has no address.
        assert client.login(request=HttpRequest(), username="ann", password="x-unused-x")
        client.logout()
        response = client.post(reverse("admin:login"), {"username": "ann", "password": "x-unused-x"})
        assert response.status_code == 302
        first, second = events(T.LOGIN)
        assert (first.actor, first.actor_label, first.subject_type, first.subject_id, first.details) == (
            user, "ann", "auth.user", str(user.pk), {}
        )  # fmt: skip
        assert (second.actor, second.details) == (user, {"ip": "127.0.0.1"})
        assert not events(T.LOGIN_FAILED)

    def test_a_failed_login_names_the_username_tried_and_never_the_password(self, client):
        make_user("ann")
        assert authenticate(HttpRequest(), username="ann", password="Wrong-Secret-1") is None
        request = RequestFactory().post("/admin/login/", REMOTE_ADDR="10.1.2.3")
        assert authenticate(request, username="nobody", password="Wrong-Secret-2") is None
        response = client.post(
            reverse("admin:login"),
            {"username": "ann", "password": "Wrong-Secret-3"},
            HTTP_ACCEPT_LANGUAGE="en",
        )
        assert response.status_code == 200  # the form again, with its error
        first, second, third = events(T.LOGIN_FAILED)
        assert (first.actor, first.actor_label, first.details) == (None, "ann", {})
        assert (second.actor_label, second.details) == ("nobody", {"ip": "10.1.2.3"})
        assert (third.actor_label, third.details) == ("ann", {"ip": "127.0.0.1"})
        everything = json.dumps(list(AuditEvent.objects.values()), default=str)
        assert "Wrong-Secret" not in everything and "********" not in everything
        assert not events(T.LOGIN)


@pytest.mark.django_db
class TestCollections:
    def test_a_supervisor_s_move_and_close_are_stage_change_events(self, supervisor):
        loan = make_loan()
        scan_run(as_of=days(40))
        case = Case.objects.get(loan=loan)
        services.case_move(
            case=case, to_stage="restructuring", actor=supervisor, reason="Hardship", as_of=days(40)
        )
        services.case_close(
            case=case, close_reason="settled", actor=supervisor, reason="Settled at 80%", as_of=days(41)
        )
        move, close = events(T.STAGE_CHANGE)
        assert (move.actor, move.subject_type, move.subject_id) == (
            supervisor,
            "debt_collections.case",
            str(case.pk),
        )
        assert move.details == {
            "from": "notice", "to": "restructuring", "reason": "Hardship", "close_reason": "",
            "as_of": "2025-03-13",
        }  # fmt: skip
        assert close.details == {
            "from": "restructuring", "to": None, "reason": "Settled at 80%", "close_reason": "settled",
            "as_of": "2025-03-14",
        }  # fmt: skip
        # The transitions are there too; the scan's own move (opening the case) is counted in its run.
        assert case.transitions.count() == 3 and len(events(T.SCAN_RUN)) == 1

    def test_approving_a_referral_is_an_approval_and_a_stage_change(self, supervisor, settings, tmp_path):
        settings.MEDIA_ROOT = str(tmp_path)  # the evidence pack is stored on approval
        loan = make_loan()
        scan_run(as_of=days(95))
        case = Case.objects.get(loan=loan)
        requested = referrals.referral_request(
            case=case, actor=make_user("req", "collector"), reason="No payment",
            forbearance_considered="Term extension refused", as_of=days(95),
        )  # fmt: skip
        referral = referrals.referral_approve(
            referral=requested, actor=supervisor, reason=" Evidence complete ", as_of=days(95)
        )
        move, approval = AuditEvent.objects.filter(actor=supervisor).order_by("id")
        assert (move.event_type, move.details["from"], move.details["to"]) == (
            "stage_change", "restructuring", "legal_referral"
        )  # fmt: skip
        assert (approval.event_type, approval.subject_type, approval.subject_id) == (
            "approval", "debt_collections.legalreferral", str(referral.pk)
        )  # fmt: skip
        assert approval.details == {
            "legal_referral": "approved",
            "approved": "legal_referral",
            "referral": referral.pk,
            "case": case.pk,
            "reason": "Evidence complete",
            "requested_by": requested.requested_by_id,
            "recommended_on": days(95).isoformat(),
            "evidence_sha256": referral.evidence_sha256,
            "evidence_size": referral.evidence_pack.size,
            "as_of": days(95).isoformat(),
        }

    def test_a_reassignment_is_one_event_listing_the_cases(self, supervisor):
        loans = [make_loan() for _ in range(3)]
        scan_run(as_of=days(10))
        cases = list(Case.objects.filter(loan__in=loans).order_by("pk"))
        target = make_user("target", "collector")
        assert (
            services.cases_reassign(cases=cases, assignee=target, actor=supervisor, reason="Leave cover") == 3
        )
        [event] = events(T.REASSIGNMENT)
        assert (event.actor, event.subject_type, event.subject_id) == (
            supervisor,
            "auth.user",
            str(target.pk),
        )
        assert event.details == {
            "cases": [c.pk for c in cases],
            "assignee": target.pk,
            "assignee_username": "target",
            "previous_assignees": {str(c.pk): c.assignee_id for c in cases},
            "reason": "Leave cover",
        }
        # Nothing changed, nothing recorded.
        assert services.cases_reassign(cases=cases, assignee=target, actor=supervisor, reason="again") == 0
        assert len(events(T.REASSIGNMENT)) == 1

    def test_a_hold_set_and_released_are_flag_events_of_the_case_without_the_note(self, supervisor):
        loan = make_loan()
        scan_run(as_of=days(2))
        case = Case.objects.get(loan=loan)
        hold = services.case_hold_add(case=case, reason="vulnerability", note="In hospital", actor=supervisor)
        services.case_hold_release(hold=hold, actor=supervisor)
        [held], [released] = events(T.FLAG_SET), events(T.FLAG_RELEASED)
        assert (held.subject_type, held.subject_id) == (released.subject_type, released.subject_id) == (
            "debt_collections.case", str(case.pk)
        )  # fmt: skip
        assert held.details == {"hold": hold.pk, "reason": "vulnerability", "until": None}
        assert released.details == {"hold": hold.pk, "reason": "vulnerability"}
        assert "hospital" not in json.dumps(list(AuditEvent.objects.values("details")))

    def test_a_finished_scan_is_one_event_counting_its_moves(self):
        for _ in range(3):
            make_loan()
        scan_run(as_of=days(10), chunk_size=1)
        [event] = events(T.SCAN_RUN)
        run = ScanRun.objects.get()
        assert (event.actor, event.actor_label, event.subject_type, event.subject_id) == (
            None, "scan", "debt_collections.scanrun", str(run.pk)
        )  # fmt: skip
        assert event.details == {
            "as_of": "2025-02-11", "full": False, "attempt": 1, "chunks": 3, "loans_refreshed": 3,
            "loans_changed": 3, "cases_opened": 3, "escalated": 0, "deescalated": 0, "closed": 0,
            "referrals_recommended": 0, "promises_kept": 0, "promises_broken": 0, "reminders_queued": 0,
        }  # fmt: skip
        assert StageTransition.objects.count() == 3
        scan_run(as_of=days(10))  # done already: nothing happens, nothing recorded
        assert len(events(T.SCAN_RUN)) == 1
        scan_run(as_of=days(10), force=True)  # forced again: a second run of the date, its own event
        assert [e.details["attempt"] for e in events(T.SCAN_RUN)] == [1, 2]

    def test_a_rolled_back_or_refused_action_leaves_no_event(self, supervisor, collector):
        loan = make_loan()
        scan_run(as_of=days(40))
        case = Case.objects.get(loan=loan)
        with pytest.raises(RuntimeError), transaction.atomic():
            services.case_move(case=case, to_stage="restructuring", actor=supervisor, reason="Hardship")
            assert len(events(T.STAGE_CHANGE)) == 1  # written with the move ...
            raise RuntimeError("something after it failed")
        assert not events(T.STAGE_CHANGE) and case.transitions.count() == 1  # ... and gone with it
        with pytest.raises(PermissionDenied):
            services.case_move(case=case, to_stage="restructuring", actor=collector, reason="Mine")
        with pytest.raises(ValidationError):
            services.case_move(case=case, to_stage="restructuring", actor=supervisor, reason=" ")
        assert not events(T.STAGE_CHANGE)
        assert verify_chain() is None


@pytest.mark.django_db
class TestAdmin:
    def test_editing_a_policy_records_the_fields_changed(self, admin_client, admin_user):
        policy = CollectionPolicy.objects.get(product__isnull=True)
        url = reverse("admin:debt_collections_collectionpolicy_change", args=[policy.pk])
        data = {
            "name": policy.name, "product": "", "early_warning_dpd": 1, "follow_up_call_dpd": 8,
            "notice_dpd": 30, "restructuring_dpd": 61, "legal_referral_dpd": 91, "pre_due_reminder_days": 3,
            "promise_tolerance_amount": "1.00", "promise_tolerance_days": 1,
            "supervisor_waiver_limit": "5000.00",
        }  # fmt: skip
        assert policy.notice_dpd == 31
        assert admin_client.post(url, data).status_code == 302
        [event] = events(T.RULE_EDIT)
        assert (event.actor, event.subject_type, event.subject_id) == (
            admin_user, "debt_collections.collectionpolicy", str(policy.pk)
        )  # fmt: skip
        assert event.details == {
            "action": "changed",
            "object": policy.name,
            "fields": {"notice_dpd": {"from": 31, "to": 30}},
        }
        assert admin_client.post(url, data).status_code == 302  # saved unchanged: nothing to record
        assert len(events(T.RULE_EDIT)) == 1
        # A revert from the history screen is an edit too: the form there starts from the old version.
        version = policy.history.order_by("history_id").last()
        assert admin_client.post(url, {**data, "notice_dpd": 29}).status_code == 302
        revert = reverse(
            "admin:debt_collections_collectionpolicy_simple_history", args=[policy.pk, version.pk]
        )
        assert admin_client.post(revert, data).status_code == 302
        policy.refresh_from_db()
        assert policy.notice_dpd == 30
        assert [e.details["fields"] for e in events(T.RULE_EDIT)[1:]] == [
            {"notice_dpd": {"from": 30, "to": 29}},
            {"notice_dpd": {"from": 29, "to": 30}},
        ]

    def test_adding_and_deleting_a_policy_and_a_team_member_are_recorded(self, admin_client, collector):
        product = LoanProductFactory()
        data = {
            "name": "Lenient", "product": product.pk, "early_warning_dpd": 5, "follow_up_call_dpd": 15,
            "notice_dpd": 45, "restructuring_dpd": 75, "legal_referral_dpd": 120, "pre_due_reminder_days": 3,
            "promise_tolerance_amount": "2.00", "promise_tolerance_days": 2,
            "supervisor_waiver_limit": "3000.00",
        }  # fmt: skip
        assert (
            admin_client.post(reverse("admin:debt_collections_collectionpolicy_add"), data).status_code == 302
        )
        policy = CollectionPolicy.objects.get(name="Lenient")
        url = reverse("admin:debt_collections_collectionpolicy_delete", args=[policy.pk])
        assert admin_client.post(url, {"post": "yes"}).status_code == 302
        added, deleted = events(T.RULE_EDIT)
        assert added.details == {
            "action": "added",
            "object": "Lenient",
            "fields": {**data, "product": product.pk},
        }
        assert (
            deleted.details["action"] == "deleted" and deleted.details["fields"]["legal_referral_dpd"] == 120
        )
        assert added.subject_id == deleted.subject_id == str(policy.pk)

        team = Team.objects.get(stage="notice")
        url = reverse("admin:debt_collections_team_change", args=[team.pk])
        inline = {
            "memberships-TOTAL_FORMS": 1, "memberships-INITIAL_FORMS": 0, "memberships-MIN_NUM_FORMS": 0,
            "memberships-MAX_NUM_FORMS": 1000, "memberships-0-id": "", "memberships-0-team": team.pk,
            "memberships-0-user": collector.pk, "memberships-0-is_active": "on",
        }  # fmt: skip
        response = admin_client.post(url, {"code": team.code, "name": team.name, "stage": "notice", **inline})
        assert response.status_code == 302, response.content.decode()[:2000]
        [*_, member] = events(T.RULE_EDIT)
        membership = team.memberships.get()
        assert member.subject_id == str(team.pk)
        assert member.details == {
            "action": "changed",
            "object": team.name,
            "inlines": {"teammember": {"added": [{"id": membership.pk, "object": str(membership)}]}},
        }

    def test_the_audit_log_is_read_only_and_shows_the_chain_state(
        self, admin_client, django_assert_max_num_queries
    ):
        record(30)
        url = reverse("admin:compliance_auditevent_changelist")
        with django_assert_max_num_queries(15):
            response = admin_client.get(url, HTTP_ACCEPT_LANGUAGE="en")
        page = response.content.decode()
        assert response.status_code == 200
        assert "link to each other and match their hashes" in page and "broken" not in page
        assert 'name="action"' not in page  # no actions: nothing to delete
        first = AuditEvent.objects.order_by("id").first()
        assert admin_client.get(reverse("admin:compliance_auditevent_add")).status_code == 403
        change = admin_client.get(reverse("admin:compliance_auditevent_change", args=[first.pk]))
        assert change.status_code == 200
        assert (
            admin_client.post(reverse("admin:compliance_auditevent_delete", args=[first.pk])).status_code
            == 403
        )
        for params in ({"q": "7"}, {"q": "system"}, {"event_type__exact": "export"}):
            assert admin_client.get(url, params).status_code == 200

        with tampering() as cursor:
            cursor.execute("UPDATE compliance_auditevent SET details = '{}' WHERE id = %s", [first.pk + 20])
        page = admin_client.get(url, HTTP_ACCEPT_LANGUAGE="en").content.decode()
        assert f"Audit chain broken at event #{first.pk + 20}: its contents do not match its hash" in page

    def test_the_list_page_checks_the_newest_events_only(self):
        rows = record(6)
        with tampering() as cursor:
            cursor.execute("UPDATE compliance_auditevent SET details = '{}' WHERE id = %s", [rows[1].pk])
        problem, checked = tail_status(window=3)
        assert problem is None and [e.pk for e in checked] == [e.pk for e in rows[3:]]
        assert tail_status(window=4)[0] is None  # the anchor is read, not judged ...
        assert tail_status(window=5)[0].event_id == rows[1].pk  # ... and a window past it judges it
        assert tail_status(window=10)[0].event_id == rows[1].pk
        with tampering() as cursor:
            cursor.execute("DELETE FROM compliance_auditevent WHERE id = %s", [rows[4].pk])
        assert tail_status(window=2)[0].event_id == rows[5].pk
