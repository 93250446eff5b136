"""Notices: templates (checks, versions, audit, the seeded set), sending on every channel with the text
frozen, the contact rules (quiet hours wait, an opt-out refuses), the scan queueing a stage's notices,
the command and the task."""

from __future__ import annotations

import importlib
import io
from datetime import date, datetime, timedelta
from decimal import Decimal as D
from io import StringIO
from zoneinfo import ZoneInfo

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import CommandError, call_command
from django.utils import translation
from pypdf import PdfReader

from compliance.contact import ContactDenied, channel_opt_out_record
from compliance.models import AuditEvent, ContactAttempt
from debt_collections import channels, notices, tasks
from debt_collections.models import Case, CaseHold, Notice, NoticeTemplate
from debt_collections.notices import notice_send, notice_template_save, notices_send_queued, template_check
from debt_collections.scan import scan_run
from loans.models import ContactPoint
from tests.debt_collections.conftest import make_user
from tests.factories import BorrowerFactory, PartnerFactory, make_loan

pytestmark = pytest.mark.django_db

SHANGHAI = ZoneInfo("Asia/Shanghai")
AS_OF = date(2025, 3, 10)  # 37 days past the first due date: the notice stage
DAYTIME = datetime(2025, 3, 10, 10, 0, tzinfo=SHANGHAI)
NIGHT = datetime(2025, 3, 10, 23, 0, tzinfo=SHANGHAI)
seeded = importlib.import_module("debt_collections.migrations.0005_seed_notice_templates")

GOOD_LETTER = (
    "{{ borrower_name }} {{ creditor_name }} {{ principal_overdue }} {{ interest_overdue }} "
    "{{ fees_overdue }} {{ penalty_overdue }} {{ total_due }} {{ pay_by }} {{ how_to_pay }} "
    "{{ how_to_dispute }} {{ creditor_contact }}"
)


@pytest.fixture(autouse=True)
def recording_backends(settings):
    settings.COLLECTIONS_SMS_BACKEND = "debt_collections.channels.RecordingSMSBackend"
    settings.COLLECTIONS_LETTER_BACKEND = "debt_collections.channels.RecordingLetterBackend"
    channels.outbox.clear()
    channels.letter_outbox.clear()
    yield
    channels.outbox.clear()
    channels.letter_outbox.clear()


@pytest.fixture
def officer(db):
    return make_user("officer", "compliance_officer")


@pytest.fixture
def collector(db):
    return make_user("col", "collector")


def make_case(*, language="zh-hans", region="CN", name="王小明", points=("phone", "email", "address")):
    partner = PartnerFactory(
        code="huiyi",
        name="汇易金融",
        collections_phone="400-820-0000",
        collections_email="collections@huiyi.example.com",
        postal_address="上海市浦东新区世纪大道100号",
        payment_instructions="招商银行 账号 6225 0000 0000 0000，户名 汇易金融",
    )
    borrower = BorrowerFactory(partner=partner, full_name=name, preferred_language=language, region=region)
    values = {"phone": "13800138000", "email": "wang@example.com", "address": "北京市朝阳区建国路1号"}
    for kind in points:
        ContactPoint.objects.create(borrower=borrower, kind=kind, value=values[kind], is_primary=True)
    loan = make_loan(borrower=borrower)
    scan_run(as_of=AS_OF)
    loan.refresh_from_db()
    return Case.objects.get(loan=loan, status="open")


def template(stage, channel, language="zh-hans") -> NoticeTemplate:
    return NoticeTemplate.objects.get(stage=stage, channel=channel, language=language)


def errors_of(excinfo) -> dict:
    return {field: " ".join(messages) for field, messages in excinfo.value.message_dict.items()}


# --- templates -------------------------------------------------------------------------------------


class TestTemplateSave:
    @pytest.mark.parametrize(
        ("language", "threat"), [("zh-hans", "我们会上门找你家人"), ("en", "we will have you arrested")]
    )
    def test_a_threat_is_refused_and_nothing_is_written(self, officer, language, threat):
        tpl = template("early_warning", "sms", language)
        with pytest.raises(ValidationError) as excinfo:
            notice_template_save(template=tpl, actor=officer, body=tpl.body + " " + threat)
        assert "body" in errors_of(excinfo)
        tpl.refresh_from_db()
        assert tpl.version == 1 and threat not in tpl.body
        assert not AuditEvent.objects.filter(event_type="template_edit").exists()

    def test_a_threat_in_the_subject_is_refused_on_the_subject(self, officer):
        tpl = template("notice", "email", "en")
        with pytest.raises(ValidationError) as excinfo:
            notice_template_save(template=tpl, actor=officer, subject="Pay up or else: {{ loan_ref }}")
        assert set(errors_of(excinfo)) == {"subject"}

    def test_a_formal_letter_without_the_deadline_is_refused(self, officer):
        tpl = template("notice", "letter")
        with pytest.raises(ValidationError) as excinfo:
            notice_template_save(template=tpl, actor=officer, body=tpl.body.replace("{{ pay_by }}", "尽快"))
        assert "{{ pay_by }}" in errors_of(excinfo)["body"]
        assert template("notice", "letter").version == 1

    def test_an_email_without_the_opt_out_is_refused(self, officer):
        tpl = template("early_warning", "email", "en")
        with pytest.raises(ValidationError) as excinfo:
            notice_template_save(template=tpl, actor=officer, body=tpl.body.replace("{{ opt_out }}", ""))
        assert "{{ opt_out }}" in errors_of(excinfo)["body"]

    def test_an_informal_letter_needs_less_but_still_the_basics(self):
        # An early-warning letter need not itemise, but must name the borrower, creditor, total, deadline.
        template_check(
            stage="early_warning", channel="letter", language="en", subject="Reminder",
            body="{{ borrower_name }} {{ creditor_name }} {{ total_due }} {{ pay_by }} "
                 "{{ creditor_contact }}",
        )  # fmt: skip
        with pytest.raises(ValidationError) as excinfo:
            template_check(stage="notice", channel="letter", language="en", subject="Notice",
                           body="{{ borrower_name }} {{ creditor_name }} {{ total_due }} {{ pay_by }} "
                                "{{ creditor_contact }}")  # fmt: skip
        assert "{{ principal_overdue }}" in errors_of(excinfo)["body"]
        assert "{{ how_to_dispute }}" in errors_of(excinfo)["body"]

    def test_an_unknown_placeholder_is_refused(self, officer):
        with pytest.raises(ValidationError) as excinfo:
            notice_template_save(
                template=template("notice", "letter", "en"), actor=officer,
                body=GOOD_LETTER + " {{ borrower_national_id }} {% if employer %}x{% endif %}",
            )  # fmt: skip
        message = errors_of(excinfo)["body"]
        assert "borrower_national_id" in message and "employer" in message

    @pytest.mark.parametrize(
        "body", [GOOD_LETTER + " {% if total_due %}", GOOD_LETTER + " {{ pay_by|nosuch }}"]
    )
    def test_a_template_that_does_not_parse_is_refused(self, officer, body):
        with translation.override("en"), pytest.raises(ValidationError) as excinfo:
            notice_template_save(template=template("notice", "letter", "en"), actor=officer, body=body)
        assert "does not parse" in errors_of(excinfo)["body"]

    def test_tags_that_reach_outside_the_text_are_refused(self, officer):
        with pytest.raises(ValidationError) as excinfo:
            notice_template_save(
                template=template("notice", "letter", "en"), actor=officer,
                body=GOOD_LETTER + ' {% include "x.html" %}',
            )  # fmt: skip
        assert "include" in errors_of(excinfo)["body"]

    def test_each_change_is_a_new_version_with_history_and_an_audit_event(self, officer):
        tpl = template("notice", "letter", "en")
        saved = notice_template_save(template=tpl, actor=officer, body=GOOD_LETTER)
        assert saved.version == 2 and saved.updated_by == officer
        again = notice_template_save(template=saved, actor=officer, body=GOOD_LETTER + "\n\nThank you.")
        assert again.version == 3
        same = notice_template_save(template=again, actor=officer, body=again.body)  # no change
        assert same.version == 3
        history = list(NoticeTemplate.history.filter(id=tpl.pk).order_by("history_date"))
        assert [h.version for h in history] == [2, 3]
        assert history[-1].history_user == officer
        events = list(AuditEvent.objects.filter(event_type="template_edit").order_by("id"))
        assert len(events) == 2
        assert events[0].details["old_version"] == 1 and events[0].details["new_version"] == 2
        assert events[1].details["stage"] == "notice" and events[1].details["channel"] == "letter"
        assert (
            events[1].details["body_sha256"] == __import__("hashlib").sha256(again.body.encode()).hexdigest()
        )

    def test_a_new_template_and_the_one_per_stage_channel_language_rule(self, officer):
        NoticeTemplate.objects.filter(stage="notice", channel="letter", language="en").delete()
        created = notice_template_save(
            actor=officer, stage="notice", channel="letter", language="en", subject="Notice", body=GOOD_LETTER
        )
        assert created.version == 1
        with pytest.raises(ValidationError) as excinfo:
            notice_template_save(
                actor=officer, stage="notice", channel="letter", language="en", subject="N", body=GOOD_LETTER
            )
        assert "stage" in errors_of(excinfo)

    def test_only_those_allowed_edit_templates(self, collector):
        with pytest.raises(PermissionDenied):
            notice_template_save(template=template("notice", "letter"), actor=collector, body=GOOD_LETTER)
        assert template("notice", "letter").version == 1


class TestSeededTemplates:
    def test_all_thirty_pass_the_save_checks_and_render_for_a_real_case(self):
        rows = list(seeded.templates())
        assert len(rows) == 30 == NoticeTemplate.objects.count()
        assert len({(s, c, lang) for s, c, lang, _subject, _body in rows}) == 30
        case = make_case()
        for tpl in NoticeTemplate.objects.all():
            template_check(
                stage=tpl.stage,
                channel=tpl.channel,
                language=tpl.language,
                subject=tpl.subject,
                body=tpl.body,
            )
            context, _figures = notices.notice_context(
                case=case, language=tpl.language, channel=tpl.channel, as_of=AS_OF
            )
            subject, body = notices.render_notice(subject=tpl.subject, body=tpl.body, context=context)
            assert "王小明" in body and context["total_due"] in body and "2025-03-24" in body
            assert "{{" not in body and "{{" not in subject
            if tpl.channel != "sms":
                assert subject and case.loan.external_ref in subject
            credit = "征信" if tpl.language == "zh-hans" else "credit record"
            assert credit in body, (tpl.stage, tpl.channel, tpl.language)
            if tpl.channel == "sms":
                assert len(body) < 300
            else:
                assert ("分期" in body) if tpl.language == "zh-hans" else ("instalment plan" in body)


# --- sending ---------------------------------------------------------------------------------------


class TestSending:
    def test_an_sms_freezes_its_text_and_version_and_a_later_edit_does_not_change_it(
        self, collector, officer
    ):
        case = make_case()
        notice = notice_send(case=case, channel="sms", actor=collector, at=DAYTIME, as_of=AS_OF)
        assert notice.status == "sent" and notice.created_by == collector
        assert notice.template_version == 1 and notice.language == "zh-hans"
        assert [m.to for m in channels.outbox] == ["13800138000"]
        assert channels.outbox[0].text == notice.body
        loan = case.loan
        assert f"{loan.overdue_total:,.2f}" in notice.body and "回复TD退订" in notice.body
        assert notice.figures["total_due"] == str(loan.overdue_total)
        assert notice.attempt.channel == "sms" and notice.attempt.decision["allowed"] is True
        frozen = notice.body
        tpl = template("notice", "sms")
        notice_template_save(template=tpl, actor=officer, body="新版本 " + tpl.body)
        notice.refresh_from_db()
        assert notice.body == frozen and notice.template_version == 1
        assert template("notice", "sms").version == 2

    def test_a_formal_email_goes_through_email_backend_with_the_letter_attached(self, collector):
        case = make_case(language="en")
        notice = notice_send(case=case, channel="email", actor=collector, at=DAYTIME, as_of=AS_OF)
        assert notice.status == "sent" and notice.language == "en"
        [message] = mail.outbox
        assert message.to == ["wang@example.com"] and message.subject == notice.subject
        assert message.body == notice.body and "UNSUBSCRIBE" in message.body
        assert message.reply_to == ["collections@huiyi.example.com"]
        [(filename, content, mimetype)] = message.attachments
        assert mimetype == "application/pdf" and content == notices.notice_pdf(notice)
        assert notice.provider_ref == message.extra_headers["Message-ID"]
        assert "Principal:" in notice.body and "Disputes and your rights" in notice.body

    def test_a_chinese_letter_pdf_shows_the_borrower_and_the_total(self, collector):
        case = make_case()
        notice = notice_send(case=case, channel="letter", actor=collector, at=NIGHT, as_of=AS_OF)
        # A letter is not a call: quiet hours do not hold it.
        assert notice.status == "sent"
        [letter] = channels.letter_outbox
        assert letter.address == "北京市朝阳区建国路1号" and letter.reference == f"notice-{notice.pk}"
        assert letter.pdf == notices.notice_pdf(notice)
        text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(letter.pdf)).pages)
        assert "王小明" in text
        assert f"{case.loan.overdue_total:,.2f}" in text
        assert "中国人民银行征信中心" in text

    def test_a_person_denied_by_the_contact_rules_writes_nothing(self, collector):
        case = make_case()
        with pytest.raises(ContactDenied) as excinfo:
            notice_send(case=case, channel="sms", actor=collector, at=NIGHT, as_of=AS_OF)
        assert "quiet_hours" in excinfo.value.decision.reasons
        assert not Notice.objects.filter(created_by=collector).exists()
        assert not ContactAttempt.objects.exists() and channels.outbox == []

    def test_only_those_allowed_send_and_a_channel_without_a_contact_point_is_refused(self, collector):
        case = make_case(points=("phone",))
        outsider = make_user("nobody")
        with pytest.raises(PermissionDenied):
            notice_send(case=case, channel="sms", actor=outsider, at=DAYTIME, as_of=AS_OF)
        with pytest.raises(ValidationError) as excinfo:
            notice_send(case=case, channel="email", actor=collector, at=DAYTIME, as_of=AS_OF)
        assert "channel" in errors_of(excinfo)
        with pytest.raises(ValidationError) as excinfo:
            notice_send(case=case, channel="fax", actor=collector, at=DAYTIME, as_of=AS_OF)
        assert "channel" in errors_of(excinfo)
        assert not Notice.objects.filter(created_by__isnull=False).exists()

    def test_a_third_partys_phone_is_never_used(self, collector):
        case = make_case(points=())
        ContactPoint.objects.create(
            borrower=case.loan.borrower, kind="phone", value="13900000000", is_third_party=True,
            relationship="父母", third_party_name="王父",
        )  # fmt: skip
        with pytest.raises(ValidationError):
            notice_send(case=case, channel="sms", actor=collector, at=DAYTIME, as_of=AS_OF)
        assert channels.outbox == []

    def test_a_delivery_failure_marks_the_notice_failed_and_keeps_the_attempt(self, collector, settings):
        settings.COLLECTIONS_SMS_BACKEND = "tests.debt_collections.test_notices.BrokenSMSBackend"
        case = make_case()
        notice = notice_send(case=case, channel="sms", actor=collector, at=DAYTIME, as_of=AS_OF)
        assert notice.status == "failed" and "gateway down" in notice.failure
        assert notice.sent_at is None and notice.attempt_id is not None and notice.body


class BrokenSMSBackend(channels.BaseSMSBackend):
    def send(self, *, to, text):
        raise ConnectionError("gateway down")


class TestQueued:
    def queued(self, case, channel="sms") -> Notice:
        return Notice.objects.get(case=case, channel=channel, created_by__isnull=True)

    def test_the_scan_queues_the_stage_notices_on_entry_and_a_rerun_queues_nothing_new(self):
        case = make_case()
        assert case.stage == "notice"
        assert sorted(Notice.objects.filter(case=case).values_list("channel", flat=True)) == [
            "email", "letter", "sms",
        ]  # fmt: skip
        assert set(Notice.objects.values_list("status", "queued_on", "stage")) == {
            ("queued", AS_OF, "notice")
        }
        scan_run(as_of=AS_OF, force=True)
        assert Notice.objects.count() == 3
        # Escalating queues the next stage's notices; staying in a stage queues none.
        scan_run(as_of=date(2025, 3, 11))
        assert Notice.objects.count() == 3
        scan_run(as_of=date(2025, 4, 10))  # 68 DPD: restructuring
        case.refresh_from_db()
        assert case.stage == "restructuring"
        assert sorted(Notice.objects.filter(stage="restructuring").values_list("channel", flat=True)) == [
            "email", "letter",
        ]  # fmt: skip

    def test_quiet_hours_leave_a_queued_notice_queued_until_they_end(self):
        case = make_case()
        counts = notices_send_queued(as_of=AS_OF, at=NIGHT)
        assert counts == {"sent": 1, "waiting": 2, "refused": 0, "failed": 0}  # the letter went
        sms = self.queued(case)
        assert sms.status == "queued" and sms.reason_codes == ["quiet_hours"]
        assert channels.outbox == []
        # Held back until quiet hours end (08:00 in Shanghai): the runs before then do not try them.
        assert sms.not_before == datetime(2025, 3, 11, 8, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
        assert notices_send_queued(as_of=AS_OF, at=sms.not_before - timedelta(minutes=1)) == {
            "sent": 0, "waiting": 0, "refused": 0, "failed": 0,
        }  # fmt: skip
        counts = notices_send_queued(as_of=AS_OF, at=DAYTIME.replace(day=11))
        assert counts["sent"] == 2
        sms.refresh_from_db()
        assert sms.status == "sent" and sms.reason_codes == [] and len(channels.outbox) == 1
        assert sms.not_before is None

    def test_an_opt_out_refuses_the_queued_notice_with_its_code(self):
        case = make_case()
        channel_opt_out_record(borrower=case.loan.borrower, channel="sms", note="asked by phone")
        notices_send_queued(as_of=AS_OF, at=DAYTIME)
        sms = self.queued(case)
        assert sms.status == "refused" and "channel_opt_out" in sms.reason_codes
        assert sms.body == "" and sms.attempt is None and channels.outbox == []
        assert self.queued(case, "email").status == "sent"

    def test_a_case_on_hold_or_closed_sends_nothing(self, collector):
        case = make_case()
        CaseHold.objects.create(case=case, reason="dispute", note="disputes the fees", set_by=collector,
                                set_at=DAYTIME)  # fmt: skip
        counts = notices_send_queued(as_of=AS_OF, at=DAYTIME)
        assert counts["refused"] == 3
        assert list(Notice.objects.values_list("reason_codes", flat=True)) == [["case_hold"]] * 3
        with pytest.raises(ValidationError):
            notice_send(case=case, channel="letter", actor=collector, at=DAYTIME, as_of=AS_OF)

    def test_a_sent_notice_is_not_sent_again(self):
        case = make_case()
        notices_send_queued(as_of=AS_OF, at=DAYTIME)
        with pytest.raises(ValidationError):
            notice_send(notice=self.queued(case, "letter"), at=DAYTIME, as_of=AS_OF)
        assert notices_send_queued(as_of=AS_OF, at=DAYTIME) == {
            "sent": 0,
            "waiting": 0,
            "refused": 0,
            "failed": 0,
        }
        assert len(channels.letter_outbox) == 1


class TestCommandAndTask:
    @pytest.fixture(autouse=True)
    def daytime(self, monkeypatch):
        # The command and the task send at the wall-clock time: make it daytime in Shanghai.
        monkeypatch.setattr("django.utils.timezone.now", lambda: DAYTIME)

    def test_the_command_sends_and_prints_counts(self):
        make_case()
        out = StringIO()
        call_command("send_notices", "--as-of", AS_OF.isoformat(), "--limit", "2", stdout=out)
        assert out.getvalue().count("\n") == 1
        assert Notice.objects.filter(status="queued").count() == 1
        assert out.getvalue().startswith("Notices 2025-03-10: 2 sent, 0 waiting")

    @pytest.mark.parametrize(
        ("args", "message"),
        [(["--as-of", "2025-02-30"], "--as-of must be a date"), (["--limit", "0"], "--limit must be")],
    )
    def test_bad_input_is_one_line_and_sends_nothing(self, args, message):
        make_case()
        with pytest.raises(CommandError) as excinfo:
            call_command("send_notices", *args, stdout=StringIO())
        assert message in str(excinfo.value) and "\n" not in str(excinfo.value)
        assert not Notice.objects.exclude(status="queued").exists()

    def test_the_task_sends_queued_notices_in_batches_and_beat_runs_it_every_half_hour(self, settings):
        make_case()
        settings.COLLECTIONS_NOTICE_BATCH = 2
        result = tasks.notices_send_queued.delay(as_of=AS_OF.isoformat())
        assert result.get() == {"notices": 3, "batches": 2}  # in-process here: the group ran already
        assert sorted(Notice.objects.values_list("status", flat=True)) == ["sent", "sent", "sent"]
        entry = settings.CELERY_BEAT_SCHEDULE["collections-send-notices"]
        assert entry["task"] == "debt_collections.notices_send_queued"
        assert entry["schedule"].minute == {0, 30}


def test_money_in_figures_is_decimal_exact():
    assert notices._money(D("1234.5")) == "1,234.50"


class TestAdmin:
    @pytest.fixture
    def staff(self, client):
        user = make_user("admin", is_staff=True, is_superuser=True)
        client.force_login(user)
        return client

    def test_the_template_form_previews_and_shows_the_services_refusal(self, staff):
        tpl = template("notice", "letter")
        url = f"/admin/debt_collections/noticetemplate/{tpl.pk}/change/"
        page = staff.get(url)
        assert page.status_code == 200 and "张三" in page.content.decode()  # the preview's made-up borrower
        data = {"subject": tpl.subject, "body": tpl.body + "\n我们会上门找你家人", "is_active": "on"}
        response = staff.post(url, data)
        assert response.status_code == 200 and "errorlist" in response.content.decode()
        assert template("notice", "letter").version == 1
        response = staff.post(url, {**data, "body": tpl.body + "\n谢谢。"})
        assert response.status_code == 302
        assert template("notice", "letter").version == 2

    def test_a_notice_is_queued_and_sent_from_the_add_form_and_queued_ones_by_the_action(self, staff):
        case = make_case()
        response = staff.post("/admin/debt_collections/notice/add/", {"case": case.pk, "channel": "letter"})
        assert response.status_code == 302
        assert Notice.objects.get(created_by__isnull=False).status == "sent"
        queued = Notice.objects.filter(status="queued", channel="letter").values_list("pk", flat=True)
        response = staff.post(
            "/admin/debt_collections/notice/",
            {"action": "send_now", "_selected_action": list(queued)},
        )
        assert response.status_code == 302
        assert Notice.objects.filter(status="sent", channel="letter").count() == 2
