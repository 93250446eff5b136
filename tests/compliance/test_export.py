"""Data-subject export: every file and its rows, only this borrower's records, UTF-8 Chinese, amounts
as strings and times with their offset; permission and reason refused; the audit event; the command."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import stat
import zipfile
from datetime import date, timedelta
from decimal import Decimal
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import CommandError, call_command
from django.utils import timezone

from compliance.audit import verify_chain
from compliance.export import borrower_export, borrower_record_models
from compliance.models import AuditEvent, BorrowerFlag, ChannelOptOut, ContactAttempt, ContactOverride
from debt_collections.models import Case, CaseHold, DueReminder, OutboxEvent, PromiseToPay, StageTransition
from loans import services
from loans.models import Allocation, Installment
from tests.factories import BorrowerFactory, PartnerFactory, make_loan, pay

pytestmark = pytest.mark.django_db

NAME = "张伟"
NATIONAL_ID = "110101199003071234"
CSV_FILES = {
    "loans.csv",
    "installments.csv",
    "payments.csv",
    "allocations.csv",
    "contact_attempts.csv",
    "cases.csv",
    "stage_transitions.csv",
    "holds.csv",
    "promises_to_pay.csv",
    "promise_instalments.csv",
    "case_contacts.csv",
    "notices.csv",
    # Month-end buckets of the borrower's loans, and the contact-rule override requests about them:
    # found by the export's walk of the models that lead to a borrower.
    "bucket_snapshots.csv",
    "override_requests.csv",
    "restructurings.csv",
    "legal_referrals.csv",
    "pre_due_reminders.csv",
    "outbox_events.csv",
    "historical_borrowers.csv",
    "historical_contact_points.csv",
    "audit_events.csv",
}


def make_user(username, *perms, **extra):
    user = get_user_model().objects.create_user(username=username, password="x-unused-x", **extra)
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    return user


@pytest.fixture
def officer(db):
    return make_user("dpo", "compliance.export_personal_data")


@pytest.fixture
def book(officer):
    """One borrower with a bit of everything, and a neighbour whose records must stay out."""
    partner = PartnerFactory()
    borrower = services.borrower_create(
        partner=partner,
        external_ref="B-EXPORT",
        full_name=NAME,
        national_id=NATIONAL_ID,
        date_of_birth=date(1990, 3, 7),
        time_zone="Asia/Shanghai",
        region="CN",
        contact_points=[
            services.ContactPointIn(kind="phone", value="13800138000", is_primary=True),
            services.ContactPointIn(
                kind="phone", value="13900139000", label="other", is_third_party=True,
                third_party_name="李娜", relationship="母亲",
            ),
        ],
    )  # fmt: skip
    borrower.full_name = NAME  # a second history row
    borrower.save()
    neighbour = BorrowerFactory(partner=partner, full_name="王芳")
    loan = make_loan(borrower=borrower, principal="12000.00")
    other_loan = make_loan(borrower=borrower, principal="3000.00", term=3)
    neighbour_loan = make_loan(borrower=neighbour)
    pay(loan, "1065.85", date(2025, 2, 1))
    pay(neighbour_loan, "500.00", date(2025, 2, 1))
    now = timezone.now()
    point = borrower.contact_points.get(is_third_party=False)
    ContactAttempt.objects.create(
        borrower=borrower, loan=loan, contact_point=point, channel="call", direction="outbound",
        at=now - timedelta(days=3), connected=True, answered=True, right_party=True, outcome="promise",
    )  # fmt: skip
    ContactAttempt.objects.create(
        borrower=neighbour, loan=neighbour_loan, channel="sms", direction="outbound", at=now
    )
    BorrowerFlag.objects.create(
        borrower=borrower, kind="dispute", reason="争议金额", set_by=officer, set_at=now
    )
    ChannelOptOut.objects.create(borrower=borrower, channel="email", at=now, note="不要发邮件")
    ContactOverride.objects.create(
        borrower=borrower, channel="call", reasons=["quiet_hours"], reason="借款人要求晚上联系",
        granted_by=officer, granted_at=now, valid_until=now + timedelta(hours=1),
    )  # fmt: skip
    case = Case.objects.create(
        loan=loan, stage="early_warning", stage_entered_on=date(2025, 3, 2), opened_on=date(2025, 3, 2)
    )
    Case.objects.create(loan=neighbour_loan, stage="early_warning", stage_entered_on=date(2025, 3, 2),
                        opened_on=date(2025, 3, 2))  # fmt: skip
    StageTransition.objects.create(
        case=case, to_stage="early_warning", at=now, as_of=date(2025, 3, 2), actor=officer, reason="opened"
    )
    StageTransition.objects.create(
        case=case, from_stage="early_warning", to_stage="follow_up_call", at=now, as_of=date(2025, 3, 9),
        actor=officer, reason="8 DPD",
    )  # fmt: skip
    CaseHold.objects.create(case=case, reason="dispute", note="核实中", set_by=officer, set_at=now)
    PromiseToPay.objects.create(
        case=case, amount=Decimal("1200.50"), promised_date=date(2025, 3, 20), made_on=date(2025, 3, 10),
        created_by=officer,
    )  # fmt: skip
    DueReminder.objects.create(
        loan=other_loan, due_date=date(2025, 2, 1), amount_due=Decimal("1017.52"), queued_on=date(2025, 1, 29)
    )
    OutboxEvent.objects.create(
        event_type="case.opened", partner=partner, subject_id=case.pk, created_at=now,
        payload={"case_id": case.pk, "loan_id": loan.pk, "loan_ref": loan.external_ref},
    )  # fmt: skip
    OutboxEvent.objects.create(
        event_type="case.opened", partner=partner, subject_id=case.pk + 1000, created_at=now,
        payload={"case_id": case.pk + 1000, "loan_id": neighbour_loan.pk},
    )  # fmt: skip
    return {"borrower": borrower, "loan": loan, "other_loan": other_loan, "case": case}


def read_zip(content: bytes) -> dict[str, str]:
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        assert archive.testzip() is None
        return {name: archive.read(name).decode("utf-8") for name in archive.namelist()}


def rows(text: str) -> list[dict]:
    assert text.startswith("\ufeff"), "CSV starts with a byte-order mark"
    return list(csv.DictReader(io.StringIO(text[1:])))


def test_every_file_with_this_borrowers_rows_only(book, officer):
    borrower, loan = book["borrower"], book["loan"]
    files = read_zip(borrower_export(borrower=borrower, actor=officer, reason="个人信息查阅请求 #42"))

    assert set(files) == {"README.txt", "borrower.json"} | CSV_FILES
    loans = rows(files["loans.csv"])
    assert {r["id"] for r in loans} == {str(loan.pk), str(book["other_loan"].pk)}
    loan_ids = [loan.pk, book["other_loan"].pk]
    assert (
        len(rows(files["installments.csv"])) == Installment.objects.filter(loan_id__in=loan_ids).count() == 15
    )
    assert len(rows(files["payments.csv"])) == 1
    allocations = Allocation.objects.filter(payment__loan=loan).count()
    assert allocations and len(rows(files["allocations.csv"])) == allocations
    attempts = rows(files["contact_attempts.csv"])
    assert len(attempts) == 1 and attempts[0]["outcome"] == "promise"
    assert [r["id"] for r in rows(files["cases.csv"])] == [str(book["case"].pk)]
    assert len(rows(files["stage_transitions.csv"])) == 2
    assert len(rows(files["holds.csv"])) == 1
    assert len(rows(files["promises_to_pay.csv"])) == 1
    assert len(rows(files["pre_due_reminders.csv"])) == 1
    outbox = rows(files["outbox_events.csv"])
    assert len(outbox) == 1 and json.loads(outbox[0]["payload"])["loan_id"] == loan.pk
    assert len(rows(files["historical_borrowers.csv"])) == 2
    assert len(rows(files["historical_contact_points.csv"])) == 2

    document = json.loads(files["borrower.json"])
    assert document["borrower"]["full_name"] == NAME
    assert document["borrower"]["national_id"] == NATIONAL_ID
    assert document["borrower"]["date_of_birth"] == "1990-03-07"
    assert len(document["contact_points"]) == 2
    assert {p["third_party_name"] for p in document["contact_points"]} == {"", "李娜"}
    assert [f["reason"] for f in document["flags"]] == ["争议金额"]
    assert [o["note"] for o in document["channel_opt_outs"]] == ["不要发邮件"]
    assert document["contact_overrides"][0]["reasons"] == ["quiet_hours"]
    assert "王芳" not in "".join(files.values())
    assert "national_id_hash" not in files["borrower.json"] and "gAAAAA" not in "".join(files.values())


def test_utf8_chinese_amounts_as_strings_and_times_with_offset(book, officer):
    files = read_zip(borrower_export(borrower=book["borrower"], actor=officer, reason="查阅请求"))
    history = rows(files["historical_borrowers.csv"])
    assert {r["full_name"] for r in history} == {NAME}
    assert rows(files["historical_contact_points.csv"])[1]["relationship"] == "母亲"
    loan = next(r for r in rows(files["loans.csv"]) if r["id"] == str(book["loan"].pk))
    assert loan["principal"] == "12000.00" and loan["annual_rate"] == "0.120000"
    assert rows(files["payments.csv"])[0]["amount"] == "1065.85"
    assert rows(files["promises_to_pay.csv"])[0]["amount"] == "1200.50"
    assert rows(files["pre_due_reminders.csv"])[0]["amount_due"] == "1017.52"
    assert rows(files["contact_attempts.csv"])[0]["at"].endswith("+08:00")
    assert rows(files["contact_attempts.csv"])[0]["right_party"] == "true"
    document = json.loads(files["borrower.json"])
    assert document["flags"][0]["set_at"].endswith("+08:00")
    assert isinstance(document["contact_points"][0]["is_primary"], bool)


def test_readme_says_what_each_file_is_when_who_and_why(book, officer):
    files = read_zip(borrower_export(borrower=book["borrower"], actor=officer, reason="查阅请求 #42"))
    readme = files["README.txt"]
    assert f"#{book['borrower'].pk}" in readme
    assert "dpo" in readme and "查阅请求 #42" in readme
    for name in CSV_FILES | {"borrower.json"}:
        assert f"- {name}: " in readme
    assert "historical 借款人" not in readme and "1 records" not in readme
    assert "+08:00" in readme


def test_the_export_is_audited_with_files_counts_and_reason(book, officer):
    borrower = book["borrower"]
    content = borrower_export(borrower=borrower, actor=officer, reason="  查阅请求 #42 ")
    event = AuditEvent.objects.get(event_type="data_subject_export")
    assert (event.actor_id, event.subject_type, event.subject_id) == (
        officer.pk,
        "loans.borrower",
        str(borrower.pk),
    )
    details = event.details
    assert details["borrower_id"] == borrower.pk and details["reason"] == "查阅请求 #42"
    assert details["sha256"] == hashlib.sha256(content).hexdigest()
    files = read_zip(content)
    assert set(details["files"]) == set(files) - {"README.txt"}
    for name, count in details["files"].items():
        if name.endswith(".csv"):
            assert count == len(rows(files[name])), name
    assert details["borrower_json"] == {
        "contact_points": 2, "flags": 1, "channel_opt_outs": 1, "contact_overrides": 1
    }  # fmt: skip
    assert verify_chain() is None
    # A second export lists the first one among the audit events about the borrower.
    again = read_zip(borrower_export(borrower=borrower, actor=officer, reason="second copy"))
    audit_rows = rows(again["audit_events.csv"])
    assert [r["event_type"] for r in audit_rows] == ["data_subject_export"]
    assert "actor_label" not in audit_rows[0] and "dpo" not in again["audit_events.csv"]


@pytest.mark.parametrize(
    "who", ["no permission", "inactive", "nobody"], ids=["no-permission", "inactive", "no-actor"]
)
def test_refused_without_the_permission(book, who):
    actor = {
        "no permission": lambda: make_user("collector"),
        "inactive": lambda: make_user("gone", "compliance.export_personal_data", is_active=False),
        "nobody": lambda: None,
    }[who]()
    with pytest.raises(PermissionDenied):
        borrower_export(borrower=book["borrower"], actor=actor, reason="请求")
    assert not AuditEvent.objects.filter(event_type="data_subject_export").exists()


@pytest.mark.parametrize("reason", ["", "   ", "x" * 301])
def test_refused_without_a_reason(book, officer, reason):
    with pytest.raises(ValidationError) as excinfo:
        borrower_export(borrower=book["borrower"], actor=officer, reason=reason)
    assert "reason" in excinfo.value.message_dict
    assert not AuditEvent.objects.exists()


def test_a_borrower_with_nothing_but_a_name(officer):
    borrower = BorrowerFactory(full_name="赵敏")
    files = read_zip(borrower_export(borrower=borrower, actor=officer, reason="请求"))
    assert set(files) == {"README.txt", "borrower.json"} | CSV_FILES
    assert rows(files["loans.csv"]) == [] and "principal" in files["loans.csv"]
    assert rows(files["outbox_events.csv"]) == []


def test_records_are_found_without_importing_debt_collections():
    found = {r.model._meta.label: r.level for r in borrower_record_models()}
    assert found["debt_collections.Case"] == 1 and found["debt_collections.StageTransition"] == 2
    assert found["loans.Allocation"] == 2 and found["compliance.ContactAttempt"] == 1
    assert not any(label.split(".")[1].startswith("Historical") for label in found)
    source = (Path(__file__).resolve().parents[2] / "compliance" / "export.py").read_text(encoding="utf-8")
    assert "debt_collections" not in source.replace("``debt_collections``", "").split('"""', 2)[2]


class TestCommand:
    def run(self, *args) -> str:
        out = StringIO()
        call_command("export_borrower_data", *args, stdout=out)
        return out.getvalue()

    def test_writes_the_zip_readable_by_its_owner_and_prints_one_line(self, book, officer, tmp_path):
        target = tmp_path / "export.zip"
        borrower = book["borrower"]
        out = self.run(str(borrower.pk), "--actor", "dpo", "--reason", "请求 #7", "--out", str(target))
        assert out.count("\n") == 1 and out.startswith(
            f"Exported borrower {borrower.pk} to {target}: 23 files"
        )
        assert stat.S_IMODE(target.stat().st_mode) == 0o600
        files = read_zip(target.read_bytes())
        assert json.loads(files["borrower.json"])["borrower"]["full_name"] == NAME
        event = AuditEvent.objects.get(event_type="data_subject_export")
        assert f"audit event #{event.pk}" in out and event.details["reason"] == "请求 #7"

    @pytest.mark.parametrize(
        ("args", "message"),
        [
            (["999999", "--actor", "dpo", "--reason", "r"], "No borrower with id 999999."),
            (["abc", "--actor", "dpo", "--reason", "r"], "BORROWER_ID must be a number"),
            (["{pk}", "--actor", "ghost", "--reason", "r"], "No user 'ghost'."),
            (["{pk}", "--actor", "clerk", "--reason", "r"], "User 'clerk' may not export personal data"),
            (["{pk}", "--actor", "dpo"], "--reason is required"),
            (["{pk}", "--reason", "r"], "--actor is required"),
            (["{pk}", "--actor", "dpo", "--reason", "r", "--out", "/nonexistent/dir/x.zip"], "Cannot write"),
            (["{pk}", "--actor", "dpo", "--reason", "r", "--out", "{tmp}"], "Cannot write"),
        ],
    )
    def test_bad_input_is_one_readable_line_and_exports_nothing(self, book, tmp_path, args, message):
        make_user("clerk")
        target = tmp_path / "out.zip"
        args = [a.format(pk=book["borrower"].pk, tmp=tmp_path) for a in args]
        if "--out" not in args:
            args += ["--out", str(target)]
        with pytest.raises(CommandError) as excinfo:
            self.run(*args)
        assert message in str(excinfo.value) and "\n" not in str(excinfo.value)
        assert not AuditEvent.objects.exists()
        assert not target.exists()

    def test_a_failed_write_leaves_no_audit_event(self, book, officer, tmp_path, monkeypatch):
        from collections_site import command_tools

        def disk_full(fd):
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(command_tools.os, "fsync", disk_full)
        target = tmp_path / "out.zip"
        with pytest.raises(OSError, match="No space"):
            self.run(str(book["borrower"].pk), "--actor", "dpo", "--reason", "r", "--out", str(target))
        assert not target.exists() and not AuditEvent.objects.exists()

    def test_a_refused_export_removes_the_file_it_created(self, book, officer, tmp_path, monkeypatch):
        from compliance.management.commands import export_borrower_data

        def refuse(**kwargs):
            raise ValidationError({"reason": ["too vague"]})

        monkeypatch.setattr(export_borrower_data, "borrower_export_run", refuse)
        target = tmp_path / "out.zip"
        with pytest.raises(CommandError, match="too vague"):
            self.run(str(book["borrower"].pk), "--actor", "dpo", "--reason", "r", "--out", str(target))
        assert not target.exists()
