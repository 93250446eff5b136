"""Legal referrals: request, approval by another supervisor, the evidence pack, the proceedings, and
every refusal (self-approval, a collector approving, time-barred debt, holds, no recommendation, a
second referral, steps out of order), the audited download and the command."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import zipfile
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone, translation
from pypdf import PdfReader

from compliance.contact import contact_attempt_record, contact_override_grant
from compliance.models import AuditEvent, BorrowerFlag, ContactOverride
from compliance.screening import note_screen
from debt_collections import services
from debt_collections.evidence import evidence_pack_build, evidence_pack_download
from debt_collections.models import (
    Case,
    CaseContact,
    LegalReferral,
    Notice,
    NoticeTemplate,
    OutboxEvent,
    StageTransition,
)
from debt_collections.referrals import (
    referral_approve,
    referral_reject,
    referral_request,
    referral_status_update,
    referral_withdraw,
)
from debt_collections.scan import scan_run
from loans.models import ContactPoint, Loan
from tests.debt_collections.conftest import make_user
from tests.factories import make_loan, pay

pytestmark = pytest.mark.django_db

FEB1 = date(2025, 2, 1)  # make_loan's first due date
SHANGHAI = ZoneInfo("Asia/Shanghai")
FORBEARANCE = "Offered a 6-month term extension and a payment holiday on 2025-04-20; both refused."


def days(n: int) -> date:
    return FEB1 + timedelta(days=n)


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    return tmp_path


@pytest.fixture
def case(db):
    """A loan left unpaid to 95 DPD: the scan has recommended its case for legal referral."""
    loan = make_loan(borrower=None)
    loan.borrower.full_name = "张伟"
    loan.borrower.save()
    scan_run(as_of=days(95))
    case = Case.objects.get(loan=loan)
    assert case.stage == "restructuring" and case.referral_recommended_on == days(95)
    return case


def request(case, actor, **extra):
    return referral_request(
        case=case,
        actor=actor,
        reason=extra.pop("reason", "No payment since February; all contact attempts failed."),
        forbearance_considered=extra.pop("forbearance_considered", FORBEARANCE),
        as_of=extra.pop("as_of", days(95)),
    )


def approve(referral, actor, **extra):
    return referral_approve(
        referral=referral, actor=actor, reason=extra.pop("reason", "Evidence complete"), as_of=days(96)
    )


def field_of(excinfo) -> set[str]:
    return set(excinfo.value.message_dict)


def nothing_moved(case):
    case.refresh_from_db()
    assert case.stage == "restructuring"
    assert not StageTransition.objects.filter(case=case, to_stage="legal_referral").exists()


def unzip(content: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def pdf_text(content: bytes) -> str:
    """The PDF's text without whitespace: table cells wrap words across lines."""
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)
    return re.sub(r"\s+", "", text)


def flat(text: str) -> str:
    return re.sub(r"\s+", "", text)


def csv_rows(content: bytes) -> list[dict]:
    assert content.startswith(b"\xef\xbb\xbf")  # the BOM: Excel reads it as UTF-8
    return list(csv.DictReader(io.StringIO(content.decode("utf-8-sig"))))


# --- the whole way through -----------------------------------------------------------------------


def add_case_work(case, collector, supervisor):
    """An overridden contact, a flagged note on its case contact, and a sent letter."""
    loan = case.loan
    own = ContactPoint.objects.create(borrower=loan.borrower, kind="phone", value="13800000000")
    late = datetime(2025, 5, 4, 22, 30, tzinfo=SHANGHAI)  # quiet hours in China
    override = contact_override_grant(
        borrower=loan.borrower, channel="call", contact_point=own, reasons=["quiet_hours"],
        reason="Borrower asked to be called after 22:00 (recorded)", actor=supervisor,
    )  # fmt: skip
    ContactOverride.objects.filter(pk=override.pk).update(
        granted_at=late - timedelta(minutes=5), valid_until=late + timedelta(hours=1)
    )
    attempt = contact_attempt_record(
        borrower=loan.borrower, channel="call", contact_point=own, at=late, loan=loan,
        connected=True, answered=True, right_party=True, outcome="refused_to_pay", actor=collector,
    )  # fmt: skip
    assert attempt.override_id == override.pk
    contact = CaseContact.objects.create(
        case=case,
        attempt=attempt,
        outcome="refused_to_pay",
        notes="客户说不还，真是个老赖。",
        created_by=collector,
    )
    flag = note_screen(source="case_contact", source_id=contact.pk, text=contact.notes)
    assert flag is not None
    template = NoticeTemplate.objects.get(stage="notice", channel="letter", language="zh-hans")  # seeded
    notice = Notice.objects.create(
        case=case, stage="notice", channel="letter", status="sent", queued_on=days(31), template=template,
        template_version=1, language="zh-hans", subject="逾期还款通知",
        body="尊敬的张伟：\n\n您的贷款已逾期，请于十日内还款。", sent_at=timezone.now(),
    )  # fmt: skip
    Notice.objects.create(case=case, stage="notice", channel="sms", status="queued", queued_on=days(31))
    return override, flag, notice


def test_request_then_approval_moves_the_case_and_stores_a_complete_evidence_pack(
    case, collector, supervisor, supervisor2
):
    override, flag, notice = add_case_work(case, collector, supervisor)
    referral = request(case, collector)
    assert (referral.status, referral.requested_by) == ("requested", collector)
    case.refresh_from_db()
    assert case.stage == "restructuring"  # a request alone moves nothing

    referral = approve(referral, supervisor)

    # The case entered legal referral through the one writer: transition, outbox, audit.
    case.refresh_from_db()
    assert (case.stage, case.stage_entered_on) == ("legal_referral", days(96))
    last = case.transitions.last()
    assert (last.from_stage, last.to_stage, last.actor) == ("restructuring", "legal_referral", supervisor)
    assert OutboxEvent.objects.filter(event_type="case.stage_changed", subject_id=case.pk).count() == 1
    referral.refresh_from_db()
    assert (referral.status, referral.decided_by, referral.referred_on) == ("referred", supervisor, days(96))

    stored = referral.evidence_pack.read()
    assert hashlib.sha256(stored).hexdigest() == referral.evidence_sha256
    approval = AuditEvent.objects.filter(event_type="approval", details__legal_referral="approved").get()
    assert approval.actor == supervisor and approval.details["evidence_sha256"] == referral.evidence_sha256
    assert AuditEvent.objects.filter(event_type="stage_change", actor=supervisor).count() == 1

    files = unzip(stored)
    assert set(files) == {
        "summary.pdf",
        "schedule.csv",
        "payments.csv",
        "contacts.csv",
        "transitions.csv",
        "attestation.pdf",
        "manifest.json",
        f"notices/{notice.pk}-letter.pdf",
    }  # the queued SMS is not in it: only notices as sent

    summary = pdf_text(files["summary.pdf"])
    loan = case.loan
    assert "张伟" in summary and loan.external_ref in summary
    assert loan.borrower.national_id in summary  # the court needs it
    assert flat(FORBEARANCE) in summary

    schedule = csv_rows(files["schedule.csv"])
    assert len(schedule) == 12 and {r["superseded"] for r in schedule} == {"false"}
    assert csv_rows(files["payments.csv"]) == []
    assert [(t["from_stage"], t["to_stage"]) for t in csv_rows(files["transitions.csv"])][-1] == (
        "restructuring", "legal_referral"
    )  # fmt: skip
    [contact] = csv_rows(files["contacts.csv"])
    assert (contact["allowed"], contact["reason_codes"], contact["profile"]) == ("false", "quiet_hours", "cn")
    assert contact["override_id"] == str(override.pk) and contact["case_outcome"] == "refused_to_pay"
    assert "老赖" in contact["case_notes"]

    letter = pdf_text(files[f"notices/{notice.pk}-letter.pdf"])
    assert "逾期还款通知" in letter and "请于十日内还款" in letter

    attestation = pdf_text(files["attestation.pdf"])
    assert supervisor.username in attestation and collector.username in attestation
    assert flat("Borrower asked to be called after 22:00 (recorded)") in attestation
    assert "老赖" in attestation and str(flag.source_id) in attestation

    manifest = json.loads(files["manifest.json"])
    assert manifest["referral"]["id"] == referral.pk and manifest["referral"]["approved_by"] == "sup"
    listed = {f["name"]: f for f in manifest["files"]}
    assert set(listed) == set(files) - {"manifest.json"}
    for name, entry in listed.items():
        assert entry["sha256"] == hashlib.sha256(files[name]).hexdigest() and entry["size"] == len(
            files[name]
        )

    # Deterministic: building it again gives the same bytes.
    assert evidence_pack_build(referral=referral, as_of=days(96)) == stored


def test_the_attestation_says_none_when_there_were_no_overrides_or_flags(case, collector, supervisor):
    referral = approve(request(case, collector), supervisor)
    attestation = pdf_text(unzip(referral.evidence_pack.read())["attestation.pdf"])
    assert attestation.count("无") + attestation.count("None.") >= 2


def test_payments_with_reversals_and_schedule_versions_are_in_the_pack(case, collector, supervisor):
    from loans.services import payment_reverse

    payment = pay(case.loan, "100.00", days(94))
    payment_reverse(payment=payment, reason="Bounced", as_of=days(95))
    referral = approve(request(case, collector), supervisor)
    [row] = csv_rows(unzip(referral.evidence_pack.read())["payments.csv"])
    assert (row["status"], row["reversal_reason"], row["amount"]) == ("reversed", "Bounced", "100.00")


# --- refusals: nothing written ------------------------------------------------------------------


def test_nobody_approves_their_own_request(case, supervisor):
    referral = request(case, supervisor)
    with pytest.raises(PermissionDenied):
        approve(referral, supervisor)
    with pytest.raises(PermissionDenied):
        referral_reject(referral=referral, actor=supervisor, reason="Changed my mind")
    referral.refresh_from_db()
    assert (referral.status, referral.decided_by, referral.evidence_sha256) == ("requested", None, "")
    nothing_moved(case)


def test_a_collector_cannot_approve(case, collector):
    referral = request(case, make_user("col2", "collector"))
    with pytest.raises(PermissionDenied):
        approve(referral, collector)
    referral.refresh_from_db()
    assert referral.status == "requested"
    nothing_moved(case)


def test_time_barred_debt_is_refused_at_request_and_at_approval(case, collector, supervisor):
    Loan.objects.filter(pk=case.loan_id).update(limitation_date=days(95))
    with translation.override("en"), pytest.raises(ValidationError) as excinfo:
        request(case, collector)
    assert field_of(excinfo) == {"case"} and "time-barred" in str(excinfo.value)
    assert not LegalReferral.objects.exists()

    Loan.objects.filter(pk=case.loan_id).update(limitation_date=days(96))  # not yet barred on day 95
    referral = request(case, collector)
    with pytest.raises(ValidationError) as excinfo:
        approve(referral, supervisor)  # on day 96 it is
    assert field_of(excinfo) == {"case"}
    referral.refresh_from_db()
    assert referral.status == "requested" and not referral.evidence_pack
    nothing_moved(case)
    assert not AuditEvent.objects.filter(details__legal_referral="approved").exists()


def test_a_dispute_hold_blocks_the_request_and_the_approval(case, collector, supervisor, supervisor2):
    referral = request(case, collector)
    hold = services.case_hold_add(case=case, reason="dispute", note="Disputes the amount", actor=supervisor)
    with pytest.raises(ValidationError) as excinfo:
        approve(referral, supervisor2)
    assert field_of(excinfo) == {"case"}
    nothing_moved(case)
    referral_withdraw(referral=referral, actor=collector, reason="On hold")
    with pytest.raises(ValidationError):
        request(case, collector)
    services.case_hold_release(hold=hold, actor=supervisor)
    assert request(case, collector).status == "requested"


def test_a_borrower_bankruptcy_flag_blocks_the_referral(case, collector, supervisor):
    BorrowerFlag.objects.create(
        borrower=case.loan.borrower,
        kind="bankruptcy",
        reason="Filed",
        set_by=supervisor,
        set_at=timezone.now(),
    )
    with pytest.raises(ValidationError) as excinfo:
        request(case, collector)
    assert field_of(excinfo) == {"case"} and not LegalReferral.objects.exists()


def test_a_flag_that_does_not_hold_escalation_does_not_block(case, collector, supervisor):
    BorrowerFlag.objects.create(
        borrower=case.loan.borrower, kind="legal_hold", reason="Keep records", set_by=supervisor,
        set_at=timezone.now(),
    )  # fmt: skip
    assert request(case, collector).status == "requested"


def test_a_collector_needs_the_scans_recommendation_a_supervisor_does_not(collector, supervisor, supervisor2):
    loan = make_loan()
    scan_run(as_of=days(40))
    case = Case.objects.get(loan=loan)
    with pytest.raises(ValidationError) as excinfo:
        request(case, collector, as_of=days(40))
    assert field_of(excinfo) == {"case"} and not LegalReferral.objects.exists()
    # A supervisor's judgement: allowed, and still needs a second supervisor.
    referral = request(case, supervisor, as_of=days(40))
    with pytest.raises(PermissionDenied):
        approve(referral, supervisor)
    assert approve(referral, supervisor2).status == "referred"


def test_one_referral_under_way_per_case(case, collector, supervisor):
    request(case, collector)
    with pytest.raises(ValidationError) as excinfo:
        request(case, supervisor)
    assert field_of(excinfo) == {"case"}
    assert LegalReferral.objects.count() == 1


def test_forbearance_and_reason_are_required(case, collector):
    with pytest.raises(ValidationError) as excinfo:
        request(case, collector, forbearance_considered="  ")
    assert field_of(excinfo) == {"forbearance_considered"}
    with pytest.raises(ValidationError) as excinfo:
        request(case, collector, reason="")
    assert field_of(excinfo) == {"reason"}
    assert not LegalReferral.objects.exists()


def test_case_move_by_hand_cannot_enter_legal_referral(case, supervisor):
    with pytest.raises(ValidationError) as excinfo:
        services.case_move(
            case=case, to_stage="legal_referral", actor=supervisor, reason="Go", as_of=days(95)
        )
    assert field_of(excinfo) == {"to_stage"}
    nothing_moved(case)


def test_reject_and_withdraw(case, collector, supervisor):
    referral = request(case, collector)
    with pytest.raises(ValidationError) as excinfo:
        referral_reject(referral=referral, actor=supervisor, reason=" ")
    assert field_of(excinfo) == {"reason"}
    referral = referral_reject(referral=referral, actor=supervisor, reason="Try the restructuring desk first")
    assert (referral.status, referral.decided_by) == ("rejected", supervisor)
    with pytest.raises(ValidationError):
        approve(referral, supervisor)
    # A rejected request is over: a new one may be made, and its requester may withdraw it.
    again = request(case, collector)
    other = make_user("col9", "collector")
    with pytest.raises(PermissionDenied):
        referral_withdraw(referral=again, actor=other, reason="Not mine")
    assert referral_withdraw(referral=again, actor=collector, reason="Borrower called").status == "withdrawn"
    nothing_moved(case)


# --- the proceedings ------------------------------------------------------------------------------


def test_the_proceedings_move_forward_in_order_and_settling_closes_the_case(case, collector, supervisor):
    referral = approve(request(case, collector), supervisor)
    with pytest.raises(PermissionDenied):
        referral_status_update(referral=referral, actor=collector, status="filed", on=days(100))
    for status, on, field in [
        ("judgment", days(100), "status"),  # no judgment before filing
        ("requested", days(100), "status"),
        ("nonsense", days(100), "status"),
        ("filed", days(90), "on"),  # before the referral
        ("settled", days(100), "outcome"),  # settled needs an outcome
    ]:
        with pytest.raises(ValidationError) as excinfo:
            referral_status_update(referral=referral, actor=supervisor, status=status, on=on)
        assert field_of(excinfo) == {field}, status
    referral.refresh_from_db()
    assert referral.status == "referred" and referral.filed_on is None

    referral_status_update(referral=referral, actor=supervisor, status="filed", on=days(110))
    with pytest.raises(ValidationError) as excinfo:
        referral_status_update(referral=referral, actor=supervisor, status="judgment", on=days(105))
    assert field_of(excinfo) == {"on"}
    referral_status_update(
        referral=referral,
        actor=supervisor,
        status="judgment",
        on=days(150),
        outcome="Judgment for the lender",
    )
    case.refresh_from_db()
    assert case.is_open  # a judgment is enforced, not the end
    referral = referral_status_update(
        referral=referral,
        actor=supervisor,
        status="settled",
        on=days(160),
        outcome="Paid 80% in full settlement",
    )
    assert (referral.status, referral.concluded_on) == ("settled", days(160))
    case.refresh_from_db()
    assert (case.status, case.close_reason, case.closed_on) == ("closed", "legal_concluded", days(160))
    assert case.transitions.last().to_stage == ""
    steps = list(
        AuditEvent.objects.filter(subject_id=str(referral.pk), subject_type="debt_collections.legalreferral")
        .order_by("id")
        .values_list("event_type", "details__legal_referral")
    )
    assert steps == [
        ("legal_referral", "requested"),
        ("approval", "approved"),
        ("legal_referral", "filed"),
        ("legal_referral", "judgment"),
        ("legal_referral", "settled"),
    ]
    with pytest.raises(ValidationError):
        referral_status_update(
            referral=referral, actor=supervisor, status="withdrawn", on=days(170), outcome="x"
        )


def test_withdrawing_after_referral_leaves_the_case_in_legal_referral(case, collector, supervisor):
    referral = approve(request(case, collector), supervisor)
    referral = referral_withdraw(referral=referral, actor=supervisor, reason="Borrower paid", as_of=days(120))
    assert (referral.status, referral.concluded_on, referral.outcome) == (
        "withdrawn",
        days(120),
        "Borrower paid",
    )
    case.refresh_from_db()
    assert case.is_open and case.stage == "legal_referral"


# --- the download ---------------------------------------------------------------------------------


def test_the_download_is_permission_checked_audited_and_hash_checked(case, collector, supervisor):
    referral = approve(request(case, collector), supervisor)
    with pytest.raises(PermissionDenied):
        evidence_pack_download(referral=referral, actor=collector)
    assert not AuditEvent.objects.filter(event_type="export").exists()

    content = evidence_pack_download(referral=referral, actor=supervisor)
    assert hashlib.sha256(content).hexdigest() == referral.evidence_sha256
    [event] = AuditEvent.objects.filter(event_type="export")
    assert event.actor == supervisor
    assert (event.details["referral"], event.details["sha256"]) == (referral.pk, referral.evidence_sha256)

    with open(referral.evidence_pack.path, "ab") as handle:
        handle.write(b"tampered")
    with translation.override("en"), pytest.raises(ValidationError) as excinfo:
        evidence_pack_download(referral=referral, actor=supervisor)
    assert "hash" in str(excinfo.value)
    assert AuditEvent.objects.filter(event_type="export").count() == 1


def test_a_referral_not_approved_has_no_pack(case, collector, supervisor):
    referral = request(case, collector)
    with pytest.raises(ValidationError) as excinfo:
        evidence_pack_download(referral=referral, actor=supervisor)
    assert field_of(excinfo) == {"referral"}


def test_the_admin_download_view(client, case, collector, supervisor):
    referral = approve(request(case, collector), supervisor)
    url = reverse("admin:debt_collections_legalreferral_evidence", args=[referral.pk])
    collector.is_staff = supervisor.is_staff = True
    collector.save()
    supervisor.save()
    client.force_login(collector)
    assert client.get(url).status_code == 403
    assert not AuditEvent.objects.filter(event_type="export").exists()
    client.force_login(supervisor)
    response = client.get(url)
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    assert hashlib.sha256(response.content).hexdigest() == referral.evidence_sha256
    assert AuditEvent.objects.filter(event_type="export", actor=supervisor).count() == 1


def test_the_admin_request_form_and_approve_action(client, case, collector, supervisor):
    for user in (collector, supervisor):
        user.is_staff = True
        user.save()
    client.force_login(collector)
    add = reverse("admin:debt_collections_legalreferral_add")
    response = client.post(add, {"case": case.pk, "reason": "No payment", "forbearance_considered": ""})
    assert response.status_code == 200 and not LegalReferral.objects.exists()  # the form shows the error
    response = client.post(
        add, {"case": case.pk, "reason": "No payment", "forbearance_considered": FORBEARANCE}
    )
    assert response.status_code == 302
    referral = LegalReferral.objects.get()
    assert referral.requested_by == collector

    client.force_login(supervisor)
    changelist = reverse("admin:debt_collections_legalreferral_changelist")
    client.post(changelist, {"action": "approve", "_selected_action": [referral.pk], "reason": "Complete"})
    referral.refresh_from_db()
    assert referral.status == "referred" and referral.evidence_sha256


def test_the_case_admin_action_opens_the_request_form(client, case, collector):
    collector.is_staff = True
    collector.save()
    client.force_login(collector)
    response = client.post(
        reverse("admin:debt_collections_case_changelist"),
        {"action": "request_referral", "_selected_action": [case.pk]},
    )
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('admin:debt_collections_legalreferral_add')}?case={case.pk}"


# --- the command ----------------------------------------------------------------------------------


def test_the_command_writes_the_pack_and_fails_cleanly(case, collector, supervisor, tmp_path):
    referral = approve(request(case, collector), supervisor)
    out = tmp_path / "pack.zip"
    stdout = io.StringIO()
    call_command("evidence_pack", str(referral.pk), "--actor", "sup", "--out", str(out), stdout=stdout)
    assert hashlib.sha256(out.read_bytes()).hexdigest() == referral.evidence_sha256
    assert referral.evidence_sha256 in stdout.getvalue()
    assert AuditEvent.objects.filter(event_type="export", actor=supervisor).count() == 1

    pending = request(make_loan_case(), collector, as_of=days(95))
    bad = [
        (["x", "--actor", "sup", "--out", str(out)], "must be a number"),
        (["999999", "--actor", "sup", "--out", str(out)], "No legal referral"),
        ([str(referral.pk), "--out", str(out)], "--actor is required"),
        ([str(referral.pk), "--actor", "nobody", "--out", str(out)], "No user"),
        ([str(referral.pk), "--actor", "col", "--out", str(out)], "may not download"),
        ([str(referral.pk), "--actor", "sup"], "--out is required"),
        ([str(pending.pk), "--actor", "sup", "--out", str(tmp_path / "none.zip")], "no evidence pack"),
    ]
    for args, message in bad:
        with translation.override("en"), pytest.raises(CommandError) as excinfo:
            call_command("evidence_pack", *args)
        assert message in str(excinfo.value), args
    assert not (tmp_path / "none.zip").exists()
    assert AuditEvent.objects.filter(event_type="export").count() == 1


def make_loan_case() -> Case:
    loan = make_loan()
    scan_run(as_of=days(95), force=True)
    return Case.objects.get(loan=loan)


def test_the_referral_list_and_page_render_with_the_download_link(client, case, collector, supervisor):
    referral = approve(request(case, collector), supervisor)
    supervisor.is_staff = True
    supervisor.save()
    client.force_login(supervisor)
    listing = client.get(reverse("admin:debt_collections_legalreferral_changelist"))
    page = client.get(reverse("admin:debt_collections_legalreferral_change", args=[referral.pk]))
    link = reverse("admin:debt_collections_legalreferral_evidence", args=[referral.pk])
    assert listing.status_code == page.status_code == 200
    assert link in listing.content.decode() and link in page.content.decode()
    assert FORBEARANCE in page.content.decode()
