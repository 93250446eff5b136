"""The actions on a case page (``debt_collections.views.actions``): log a contact with the contact
rules' decision shown first, record a promise, send a notice after its preview, propose a
restructuring from a side-by-side preview, request a legal referral. Who may (403, 404, 409), what
each writes, and that a refusal or a preview writes nothing.

The case here opened five days ago (the scan ran then), so a contact logged yesterday belongs to it;
``office_hours`` fixes "now" at 11:00 Shanghai time yesterday, so nothing depends on when the suite
runs (quiet hours are 22:00-08:00 for a Chinese borrower).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from decimal import Decimal as D

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.template.loader import render_to_string
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone

from compliance.contact import borrower_flag_set, contact_override_grant
from compliance.models import ContactAttempt, ContactOverride, OverrideRequest, ScreeningFlag
from debt_collections import services
from debt_collections.models import (
    Case,
    CaseContact,
    LegalReferral,
    Notice,
    PromiseInstalment,
    PromiseToPay,
    Restructuring,
)
from debt_collections.scan import scan_run
from loans.models import ContactPoint
from tests.api.test_cases import SHANGHAI, case_of, join_team, loan_late, phone
from tests.web.conftest import page

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


def today():
    return timezone.localdate()


def yesterday_at(hour: int, minute: int = 0) -> datetime:
    day = today() - timedelta(days=1)
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=SHANGHAI)


def local_input(moment: datetime) -> str:
    """A datetime-local input's value, in the user's zone (the site's: Asia/Shanghai)."""
    return moment.astimezone(SHANGHAI).strftime("%Y-%m-%dT%H:%M")


def url(name: str, case: Case) -> str:
    return reverse(f"work:{name}", args=[case.pk])


@pytest.fixture
def office_hours(monkeypatch):
    """Now is 11:00 in Shanghai, yesterday."""
    moment = yesterday_at(11)
    monkeypatch.setattr(timezone, "now", lambda: moment)
    return moment


@pytest.fixture
def case(partner, collector, supervisor) -> Case:
    """A follow-up-call case opened five days ago, 15 days past due today, in the collector's team
    (the supervisor supervises it); the borrower has a primary mobile phone and an e-mail address."""
    loan = loan_late(partner, 15)
    scan_run(as_of=today() - timedelta(days=5))
    case = case_of(loan)
    borrower = case.loan.borrower
    phone(borrower, "13800138000")
    ContactPoint.objects.create(
        borrower=borrower, kind="email", value="zhang.san@example.com", is_primary=True
    )
    join_team(collector, case)
    case.team.supervisors.add(supervisor)
    return case


@pytest.fixture
def mobile(case) -> ContactPoint:
    return case.loan.borrower.contact_points.get(kind="phone")


def contact_data(mobile, **extra) -> dict:
    data = {
        "channel": "call",
        "direction": "outbound",
        "purpose": "collection",
        "contact_point": mobile.pk if mobile else "",
        "occurred_at": local_input(yesterday_at(10)),
        "outcome": "no_answer",
        "notes": "",
        "inst-TOTAL_FORMS": "1",
        "inst-INITIAL_FORMS": "0",
        "inst-MIN_NUM_FORMS": "0",
        "inst-MAX_NUM_FORMS": "12",
        "inst-0-due_date": "",
        "inst-0-amount": "",
    }
    data.update(extra)
    return data


def nothing_logged(case):
    assert not CaseContact.objects.filter(case=case).exists()
    assert not ContactAttempt.objects.filter(borrower=case.loan.borrower).exists()


ALL_ACTIONS = [
    ("case_contact", "get"),
    ("case_contact", "post"),
    ("case_contact_check", "post"),
    ("case_promise", "get"),
    ("case_promise", "post"),
    ("case_promise_row", "get"),
    ("case_notice", "get"),
    ("case_notice", "post"),
    ("case_notice_preview", "get"),
    ("case_restructuring", "get"),
    ("case_restructuring", "post"),
    ("case_restructuring_preview", "post"),
    ("case_referral", "get"),
    ("case_referral", "post"),
]


def nothing_written(case):
    nothing_logged(case)
    assert not PromiseToPay.objects.filter(case=case).exists()
    assert not Notice.objects.filter(case=case, created_by__isnull=False).exists()
    assert not Restructuring.objects.filter(case=case).exists()
    assert not LegalReferral.objects.filter(case=case).exists()


# --- who may -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "method"), ALL_ACTIONS)
def test_anonymous_is_sent_to_sign_in(case, name, method):
    response = getattr(page(), method)(url(name, case))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize(("name", "method"), ALL_ACTIONS)
def test_a_compliance_officer_reads_cases_but_every_action_is_403(case, compliance_officer, name, method):
    response = getattr(page(compliance_officer), method)(url(name, case), {"channel": "sms"})
    assert response.status_code == 403
    nothing_written(case)


@pytest.mark.parametrize(("name", "method"), ALL_ACTIONS)
def test_someone_in_no_back_office_group_is_403(case, outsider, name, method):
    assert getattr(page(outsider), method)(url(name, case)).status_code == 403


@pytest.mark.parametrize(("name", "method"), ALL_ACTIONS)
def test_another_teams_case_is_404(case, other_collector, name, method):
    response = getattr(page(other_collector), method)(url(name, case), {"channel": "sms"})
    assert response.status_code == 404
    nothing_written(case)


def test_an_unknown_case_is_404(case, collector):
    missing = reverse("work:case_contact", args=[case.pk + 1000])
    assert page(collector).get(missing).status_code == 404


@pytest.mark.parametrize(("name", "method"), ALL_ACTIONS)
def test_a_closed_case_refuses_every_action_with_409(case, collector, supervisor, name, method):
    services.case_close(case=case, close_reason="settled", actor=supervisor, reason="settled in full")
    response = getattr(page(collector), method)(url(name, case), {"channel": "sms"}, **HTMX)
    assert response.status_code == 409
    assert "is closed" in response.content.decode()


@pytest.mark.parametrize(
    "name", ["case_contact", "case_promise", "case_restructuring", "case_referral", "case_notice"]
)
def test_an_empty_post_is_a_form_error_never_a_500(case, collector, name):
    response = page(collector).post(url(name, case), {}, **HTMX)
    assert response.status_code == 422
    assert 'class="errorlist' in response.content.decode()
    nothing_written(case)


def test_the_check_and_the_previews_answer_only_their_method(case, collector):
    client = page(collector)
    assert client.get(url("case_contact_check", case)).status_code == 405
    assert client.get(url("case_restructuring_preview", case)).status_code == 405
    assert client.post(url("case_notice_preview", case), {"channel": "sms"}).status_code == 405
    assert client.post(url("case_promise_row", case)).status_code == 405


def test_the_supervisor_of_the_team_may_act_too(case, supervisor, mobile, office_hours):
    response = page(supervisor).post(url("case_contact", case), contact_data(mobile), **HTMX)
    assert response.status_code == 200 and response["HX-Redirect"] == url("case", case)
    assert CaseContact.objects.get(case=case).created_by == supervisor


# --- the panel -------------------------------------------------------------------------------------------


def panel(case, user) -> str:
    request = RequestFactory().get(url("case", case))
    request.user = user
    return render_to_string("debt_collections/actions/panel.html", {"case": case, "request": request})


def test_the_panel_offers_a_collector_every_action_but_the_referral_of_a_case_in_legal_referral(
    case, collector, django_assert_max_num_queries
):
    with django_assert_max_num_queries(2):  # the user's and their groups' permissions, once
        html = panel(case, collector)
    for name in ("case_contact", "case_promise", "case_notice", "case_restructuring", "case_referral"):
        assert f'href="{url(name, case)}"' in html
    assert f'id="case-action-{case.pk}"' in html
    case.stage = "legal_referral"
    assert url("case_referral", case) not in panel(case, collector)


def test_the_panel_is_empty_for_a_compliance_officer_a_closed_case_and_someone_without_rights(
    case, collector, compliance_officer, outsider, supervisor
):
    assert panel(case, compliance_officer).strip() == ""
    assert panel(case, outsider).strip() == ""
    services.case_close(case=case, close_reason="settled", actor=supervisor, reason="settled in full")
    case.refresh_from_db()
    assert panel(case, collector).strip() == ""


# --- log a contact ---------------------------------------------------------------------------------------


def test_the_contact_form_opens_on_the_primary_phone_with_the_rules_decision(
    case, collector, mobile, office_hours, django_assert_max_num_queries
):
    for number in range(4):  # more contact points: the same queries
        ContactPoint.objects.create(borrower=case.loan.borrower, kind="phone", value=f"1390000000{number}")
    client = page(collector)
    client.get(url("case_contact", case), **HTMX)  # the session's first request reads the preferences
    with django_assert_max_num_queries(13):
        response = client.get(url("case_contact", case), **HTMX)
    html = response.content.decode()
    assert response.status_code == 200
    assert f'<option value="{mobile.pk}" selected>' in html
    assert "138****8000" in html and "13800138000" not in html  # masked
    assert "z***n@example.com" in html and "zhang.san@example.com" not in html
    assert 'data-decision="allowed"' in html
    assert "<html" not in html  # a partial for htmx


def test_without_htmx_the_form_is_a_page_of_its_own(case, collector, office_hours):
    response = page(collector).get(url("case_contact", case))
    html = response.content.decode()
    assert response.status_code == 200 and "<html" in html
    assert f'id="contact-form-{case.pk}"' in html and url("case", case) in html


def test_the_check_says_allowed_at_ten_in_the_morning(case, collector, mobile, django_assert_max_num_queries):
    client = page(collector)
    client.get(url("case_contact", case), **HTMX)
    with django_assert_max_num_queries(11):
        response = client.post(url("case_contact_check", case), contact_data(mobile), **HTMX)
    html = response.content.decode()
    assert response.status_code == 200
    assert 'data-decision="allowed"' in html and "Contact allowed" in html
    assert "10:00 for the borrower (Asia/Shanghai)" in html
    assert f'id="contact-submit-{case.pk}" class="primary">' in html  # enabled
    nothing_logged(case)


def test_the_check_says_denied_at_eleven_at_night_with_quiet_hours_and_when_it_lifts(case, collector, mobile):
    response = page(collector).post(
        url("case_contact_check", case),
        contact_data(mobile, occurred_at=local_input(yesterday_at(23))),
        **HTMX,
    )
    html = response.content.decode()
    assert 'data-decision="denied"' in html and "Contact not allowed" in html
    assert 'data-reason="quiet_hours"' in html
    assert "Quiet hours in the borrower&#x27;s local time" in html
    assert "GB/T 45251-2025" in html  # the rule's citation
    assert "Allowed again from" in html
    assert "disabled" in html.split('id="contact-submit-')[1].split(">")[0]
    # Quiet hours may be overridden: the request goes to a supervisor with the reason codes.
    assert f'action="{url("override_request", case)}"' in html
    assert '<input type="hidden" name="reasons" value="quiet_hours">' in html
    assert f'<input type="hidden" name="contact_point" value="{mobile.pk}">' in html
    nothing_logged(case)


def test_the_override_request_carries_what_the_supervisor_needs(case, collector, mobile):
    data = contact_data(mobile, occurred_at=local_input(yesterday_at(23)))
    client = page(collector)
    html = client.post(url("case_contact_check", case), data, **HTMX).content.decode()
    form = html.split('class="override-request"')[1].split("</form>")[0]
    fields = dict(
        re.findall(r'<input type="hidden" name="(channel|contact_point|purpose)" value="([^"]*)">', form)
    )
    reasons = re.findall(r'<input type="hidden" name="reasons" value="([^"]*)">', form)
    sent = {**fields, "reasons": reasons, "note": "The borrower asked to be called after work."}
    response = client.post(url("override_request", case), sent, **HTMX)
    assert response.status_code == 200
    asked = OverrideRequest.objects.get(borrower=case.loan.borrower)
    assert (asked.channel, asked.contact_point, asked.reasons) == ("call", mobile, ["quiet_hours"])
    nothing_logged(case)


def test_the_case_page_shows_the_panel_to_a_collector_not_to_a_compliance_officer(
    case, collector, compliance_officer
):
    assert url("case_contact", case) in page(collector).get(url("case", case)).content.decode()
    assert url("case_contact", case) not in page(compliance_officer).get(url("case", case)).content.decode()


def test_a_bar_no_supervisor_may_lift_offers_no_override(case, collector, mobile, supervisor):
    borrower_flag_set(borrower=case.loan.borrower, kind="do_not_contact", reason="asked", actor=supervisor)
    html = (
        page(collector).post(url("case_contact_check", case), contact_data(mobile), **HTMX).content.decode()
    )
    assert 'data-reason="do_not_contact"' in html
    assert "No supervisor can override this" in html
    assert url("override_request", case) not in html


def test_the_check_names_what_is_missing_instead_of_guessing(case, collector):
    data = contact_data(None, contact_point="")
    html = page(collector).post(url("case_contact_check", case), data, **HTMX).content.decode()
    assert 'data-decision="incomplete"' in html
    assert "Say which phone number or address is contacted." in html


def test_the_check_shows_what_the_note_screening_will_flag(case, collector, mobile):
    data = contact_data(mobile, notes="告诉他再不还就爆通讯录")
    html = page(collector).post(url("case_contact_check", case), data, **HTMX).content.decode()
    assert "The note will be flagged for compliance review" in html and "爆通讯录" in html
    assert not ScreeningFlag.objects.exists()


def test_logging_an_allowed_call_writes_the_contact_and_its_attempt_and_returns_to_the_case(
    case, collector, mobile
):
    client = page(collector)
    response = client.post(url("case_contact", case), contact_data(mobile, notes="Rang out."), **HTMX)
    assert response.status_code == 200 and response["HX-Redirect"] == url("case", case)
    contact = CaseContact.objects.get(case=case)
    assert (contact.outcome, contact.notes, contact.created_by) == ("no_answer", "Rang out.", collector)
    attempt = contact.attempt
    assert (attempt.channel, attempt.contact_point, attempt.at) == ("call", mobile, yesterday_at(10))
    assert attempt.decision["allowed"] is True
    messages = [str(m) for m in client.get(url("case", case)).wsgi_request._messages]
    assert messages == ["Contact logged: no answer."]


def test_without_htmx_a_logged_contact_redirects_to_the_case(case, collector, mobile):
    response = page(collector).post(url("case_contact", case), contact_data(mobile))
    assert response.status_code == 302 and response["Location"] == url("case", case)
    assert CaseContact.objects.filter(case=case).count() == 1


def test_a_call_at_eleven_at_night_is_refused_with_the_reasons_and_nothing_is_written(
    case, collector, mobile
):
    data = contact_data(mobile, occurred_at=local_input(yesterday_at(23)), outcome="right_party")
    response = page(collector).post(url("case_contact", case), data, **HTMX)
    html = response.content.decode()
    assert response.status_code == 422
    assert "The contact rules refuse this contact: nothing was logged." in html
    assert 'data-reason="quiet_hours"' in html
    nothing_logged(case)


def test_a_supervisors_override_lets_the_refused_call_through_and_is_used_up(
    case, collector, supervisor, mobile
):
    override = contact_override_grant(
        borrower=case.loan.borrower,
        channel="call",
        reasons=["quiet_hours"],
        reason="borrower asked for a late call",
        actor=supervisor,
        valid_for=timedelta(days=3),
    )
    ContactOverride.objects.filter(pk=override.pk).update(granted_at=yesterday_at(9))
    data = contact_data(mobile, occurred_at=local_input(yesterday_at(23)), outcome="right_party")
    client = page(collector)
    html = client.post(url("case_contact_check", case), data, **HTMX).content.decode()
    assert "override covers this contact" in html
    assert "disabled" not in html.split('id="contact-submit-')[1].split(">")[0]
    assert client.post(url("case_contact", case), data, **HTMX).status_code == 200
    override.refresh_from_db()
    assert override.used_at is not None
    assert CaseContact.objects.get(case=case).attempt.override == override


def test_an_inbound_call_is_logged_even_in_quiet_hours_but_not_past_a_hold(
    case, collector, mobile, supervisor
):
    data = contact_data(
        mobile, occurred_at=local_input(yesterday_at(23)), direction="inbound", outcome="right_party"
    )
    client = page(collector)
    html = client.post(url("case_contact_check", case), data, **HTMX).content.decode()
    assert 'data-decision="allowed"' in html  # quiet hours bar calling out, not answering
    borrower_flag_set(borrower=case.loan.borrower, kind="bankruptcy", reason="filed", actor=supervisor)
    html = client.post(url("case_contact_check", case), data, **HTMX).content.decode()
    assert "Inbound contact: logged whatever the rules say of an outbound one" in html
    assert 'data-reason="bankruptcy"' in html
    assert "disabled" not in html.split('id="contact-submit-')[1].split(">")[0]
    assert client.post(url("case_contact", case), data, **HTMX).status_code == 200
    assert CaseContact.objects.get(case=case).attempt.direction == "inbound"


def test_a_call_with_a_promise_of_two_instalments_records_the_promise(case, collector, mobile):
    first, second = today() + timedelta(days=3), today() + timedelta(days=20)
    data = contact_data(
        mobile,
        outcome="promise_to_pay",
        **{
            "inst-TOTAL_FORMS": "3",
            "inst-0-due_date": first.isoformat(),
            "inst-0-amount": "500.00",
            "inst-1-due_date": second.isoformat(),
            "inst-1-amount": "566.19",
            "inst-2-due_date": "",
            "inst-2-amount": "",
        },
    )
    assert page(collector).post(url("case_contact", case), data, **HTMX).status_code == 200
    promise = PromiseToPay.objects.get(case=case)
    assert (promise.amount, promise.promised_date, promise.created_by) == (D("1066.19"), second, collector)
    assert list(promise.instalments.values_list("due_date", "amount")) == [
        (first, D("500.00")),
        (second, D("566.19")),
    ]
    assert CaseContact.objects.get(case=case).outcome == "promise_to_pay"


def test_a_promise_without_instalments_is_a_form_error_and_nothing_is_written(case, collector, mobile):
    response = page(collector).post(
        url("case_contact", case), contact_data(mobile, outcome="promise_to_pay"), **HTMX
    )
    assert response.status_code == 422
    assert "Enter what the borrower promised to pay, and when." in response.content.decode()
    nothing_written(case)


def test_a_field_visit_uploads_its_recording_with_a_second_member_of_staff(
    case, collector, other_collector, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path
    join_team(other_collector, case)
    address = ContactPoint.objects.create(
        borrower=case.loan.borrower, kind="address", value="上海市浦东新区世纪大道100号"
    )
    data = contact_data(address, channel="visit", outcome="right_party", second_staff=other_collector.pk)
    data["recording"] = SimpleUploadedFile("visit.m4a", b"audio bytes", content_type="audio/mp4")
    client = page(collector)
    form = client.get(url("case_contact", case), **HTMX).content.decode()
    assert f'<option value="{other_collector.pk}">' in form and f'<option value="{collector.pk}">' not in form
    assert client.post(url("case_contact", case), data, **HTMX).status_code == 200
    contact = CaseContact.objects.get(case=case)
    assert contact.second_staff == other_collector and contact.recording_sha256
    assert contact.attempt.channel == "visit"


def test_a_field_visit_without_its_recording_is_refused_on_the_field(case, collector, other_collector):
    join_team(other_collector, case)
    address = ContactPoint.objects.create(
        borrower=case.loan.borrower, kind="address", value="上海市浦东新区世纪大道100号"
    )
    data = contact_data(address, channel="visit", outcome="right_party", second_staff=other_collector.pk)
    response = page(collector).post(url("case_contact", case), data, **HTMX)
    assert response.status_code == 422
    assert "Attach the recording of the visit." in response.content.decode()
    nothing_logged(case)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"outcome": ""}, "This field is required."),
        ({"channel": "fax"}, "Select a valid choice."),
        ({"occurred_at": "yesterday"}, "Enter a valid date/time."),
        ({"outcome": "callback_requested"}, "Say when to call back."),
        ({"channel": "email"}, "This channel cannot use this kind of contact point."),
        ({"outcome": "wrong_number", "contact_point": ""}, "Say which number or address was wrong."),
        ({"contact_point": ""}, "Say which phone number or address is contacted."),
    ],
)
def test_bad_input_is_a_form_error_and_nothing_is_written(case, collector, mobile, change, message):
    response = page(collector).post(url("case_contact", case), contact_data(mobile, **change), **HTMX)
    assert response.status_code == 422
    assert message in response.content.decode()
    nothing_logged(case)


def test_a_contact_point_of_another_borrower_is_not_a_choice(case, collector, partner):
    stranger = phone(loan_late(partner, 3).borrower, "13900139000")
    data = contact_data(stranger)
    response = page(collector).post(url("case_contact", case), data, **HTMX)
    assert response.status_code == 422 and "Select a valid choice." in response.content.decode()
    nothing_logged(case)


def test_a_threatening_note_is_logged_and_the_user_is_told_it_was_flagged(case, collector, mobile):
    client = page(collector)
    data = contact_data(mobile, outcome="refused_to_pay", notes="告诉他再不还就爆通讯录")
    assert client.post(url("case_contact", case), data, **HTMX).status_code == 200
    contact = CaseContact.objects.get(case=case)
    assert ScreeningFlag.objects.filter(source="case_contact", source_id=str(contact.pk)).exists()
    messages = [str(m) for m in client.get(url("case", case)).wsgi_request._messages]
    assert any(
        m.startswith("The note was flagged for compliance review:") and "爆通讯录" in m for m in messages
    )


# --- record a promise ------------------------------------------------------------------------------------


def promise_data(*rows) -> dict:
    data = {
        "inst-TOTAL_FORMS": str(len(rows)),
        "inst-INITIAL_FORMS": "0",
        "inst-MIN_NUM_FORMS": "0",
        "inst-MAX_NUM_FORMS": "12",
    }
    for i, (due, amount) in enumerate(rows):
        data[f"inst-{i}-due_date"] = due.isoformat() if due else ""
        data[f"inst-{i}-amount"] = amount
    return data


def test_the_promise_form_and_its_add_instalment_row(case, collector, django_assert_max_num_queries):
    client = page(collector)
    client.get(url("case_promise", case), **HTMX)
    with django_assert_max_num_queries(6):
        html = client.get(url("case_promise", case), **HTMX).content.decode()
    assert 'name="inst-0-amount"' in html and "Add instalment" in html
    with django_assert_max_num_queries(5):
        row = client.get(url("case_promise_row", case), {"inst-TOTAL_FORMS": "1"}, **HTMX).content.decode()
    assert 'name="inst-1-due_date"' in row and 'name="inst-1-amount"' in row
    assert 'name="inst-TOTAL_FORMS" value="2"' in row and 'hx-swap-oob="true"' in row
    last = client.get(url("case_promise_row", case), {"inst-TOTAL_FORMS": "11"}, **HTMX).content.decode()
    assert (
        'name="inst-11-amount"' in last and "disabled" in last.split('id="add-instalment-')[1].split(">")[0]
    )
    full = client.get(url("case_promise_row", case), {"inst-TOTAL_FORMS": "12"}, **HTMX).content.decode()
    assert "inst-12-" not in full


def test_one_amount_by_one_date_records_a_promise(case, collector):
    due = today() + timedelta(days=7)
    response = page(collector).post(url("case_promise", case), promise_data((due, "1066.19")), **HTMX)
    assert response.status_code == 200 and response["HX-Redirect"] == url("case", case)
    promise = PromiseToPay.objects.get(case=case)
    assert (promise.amount, promise.promised_date, promise.made_on) == (D("1066.19"), due, today())
    assert PromiseInstalment.objects.filter(promise=promise).count() == 1


def test_instalments_record_a_plan(case, collector):
    rows = [(today() + timedelta(days=d), "300.00") for d in (5, 35, 65)]
    assert page(collector).post(url("case_promise", case), promise_data(*rows, (None, ""))).status_code == 302
    assert PromiseToPay.objects.get(case=case).instalments.count() == 3


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([(None, "")], "Enter an amount."),
        ([(today() - timedelta(days=1), "100.00")], "The date cannot be in the past."),
        ([(today() + timedelta(days=200), "100.00")], "The last payment must fall within 180 days."),
        (
            [(today() + timedelta(days=9), "100"), (today() + timedelta(days=3), "100")],
            "the dates must follow",
        ),
        ([(today() + timedelta(days=9), "-5")], "Ensure this value is greater than or equal to 0.01."),
    ],
)
def test_a_bad_promise_is_a_form_error_and_nothing_is_written(case, collector, rows, message):
    response = page(collector).post(url("case_promise", case), promise_data(*rows), **HTMX)
    assert response.status_code == 422
    assert message in response.content.decode()
    assert not PromiseToPay.objects.filter(case=case).exists()


def test_a_case_with_an_open_promise_shows_it_instead_of_the_form(case, collector):
    services.promise_record(
        case=case, actor=collector, amount="500", promised_date=today() + timedelta(days=3)
    )
    client = page(collector)
    html = client.get(url("case_promise", case), **HTMX).content.decode()
    assert "This case already has an open promise to pay" in html and 'name="inst-0-amount"' not in html
    response = client.post(
        url("case_promise", case), promise_data((today() + timedelta(days=9), "100")), **HTMX
    )
    assert response.status_code == 422
    assert PromiseToPay.objects.filter(case=case).count() == 1


# --- send a notice ---------------------------------------------------------------------------------------


def test_the_notice_form_previews_the_first_channel_in_the_borrowers_language(
    case, collector, office_hours, django_assert_max_num_queries
):
    borrower = case.loan.borrower
    borrower.preferred_language = "en"
    borrower.save()
    client = page(collector)
    client.get(url("case_notice", case), **HTMX)
    with django_assert_max_num_queries(14):
        response = client.get(url("case_notice_preview", case), {"channel": "sms"}, **HTMX)
    html = response.content.decode()
    assert response.status_code == 200
    assert borrower.full_name in html
    assert "1,066.19" in html  # the amount overdue, in the text as it would go out
    assert "138****8000" in html and 'data-decision="allowed"' in html
    assert '<input type="hidden" name="channel" value="sms">' in html
    assert not Notice.objects.filter(case=case, created_by__isnull=False).exists()  # the scan queued its own
    first = client.get(url("case_notice", case), **HTMX).content.decode()
    assert borrower.full_name in first  # GET previews the first channel straight away


def test_the_chinese_preview_for_a_chinese_borrower(case, collector, office_hours):
    html = page(collector).get(url("case_notice_preview", case), {"channel": "sms"}, **HTMX).content.decode()
    assert case.loan.borrower.full_name in html and "回复TD退订" in html


def test_sending_a_notice_freezes_it_and_returns_to_the_case(case, collector, office_hours):
    response = page(collector).post(url("case_notice", case), {"channel": "sms"}, **HTMX)
    assert response.status_code == 200 and response["HX-Redirect"] == url("case", case)
    notice = Notice.objects.get(case=case, created_by=collector)
    assert notice.status == "sent" and notice.channel == "sms" and case.loan.borrower.full_name in notice.body


def test_a_notice_in_quiet_hours_is_previewed_as_refused_and_sending_writes_nothing(
    case, collector, monkeypatch
):
    moment = yesterday_at(23)
    monkeypatch.setattr(timezone, "now", lambda: moment)
    client = page(collector)
    html = client.get(url("case_notice_preview", case), {"channel": "sms"}, **HTMX).content.decode()
    assert 'data-reason="quiet_hours"' in html and "This notice cannot be sent now" in html
    assert "disabled" in html.split("Send this notice")[0].rsplit("<button", 1)[1]
    response = client.post(url("case_notice", case), {"channel": "sms"}, **HTMX)
    assert response.status_code == 422
    assert "The contact rules refuse this notice now: nothing was sent." in response.content.decode()
    assert not Notice.objects.filter(case=case, created_by=collector).exists()
    assert not ContactAttempt.objects.filter(borrower=case.loan.borrower).exists()


def test_a_channel_without_a_contact_point_or_on_hold_is_refused_with_its_reason(
    case, collector, office_hours, supervisor
):
    case.loan.borrower.contact_points.filter(kind="email").delete()
    client = page(collector)
    html = client.get(url("case_notice_preview", case), {"channel": "email"}, **HTMX).content.decode()
    assert "The borrower has no usable contact point for this channel." in html
    response = client.post(url("case_notice", case), {"channel": "email"}, **HTMX)
    assert response.status_code == 422 and "no usable contact point" in response.content.decode()
    services.case_hold_add(case=case, reason="dispute", note="disputes the fee", actor=supervisor)
    html = client.get(url("case_notice_preview", case), {"channel": "sms"}, **HTMX).content.decode()
    assert "The case is on hold: no notices go out." in html
    assert client.post(url("case_notice", case), {"channel": "sms"}, **HTMX).status_code == 422
    assert not Notice.objects.filter(case=case, created_by=collector).exists()


def test_an_unknown_channel_is_a_form_error(case, collector):
    response = page(collector).post(url("case_notice", case), {"channel": "fax"}, **HTMX)
    assert response.status_code == 422 and "Select a valid choice." in response.content.decode()


# --- propose a restructuring -----------------------------------------------------------------------------


def restructuring_data(**extra) -> dict:
    data = {
        "kind": "term_extension",
        "first_due_date": (today() + timedelta(days=30)).isoformat(),
        "new_term": "24",
        "new_annual_rate": "",
        "holiday_periods": "",
        "settlement_amount": "",
        "reason": "",
    }
    data.update(extra)
    return data


def test_the_restructuring_preview_shows_both_schedules_and_writes_nothing(
    case, collector, django_assert_max_num_queries
):
    client = page(collector)
    client.get(url("case_restructuring", case), **HTMX)
    with django_assert_max_num_queries(10):
        response = client.post(url("case_restructuring_preview", case), restructuring_data(), **HTMX)
    html = response.content.decode()
    assert response.status_code == 200
    assert "As it stands" in html and "As proposed" in html
    assert html.count('data-side="current"') == 12  # the unpaid instalments as they stand
    assert html.count('data-side="proposed"') == 24  # and as proposed, side by side
    assert "Change in the total to pay" in html and "Waived" in html
    assert not Restructuring.objects.exists()


def test_the_preview_names_the_field_the_plan_refuses(case, collector):
    data = restructuring_data(kind="rate_reduction", new_annual_rate="15", new_term="")
    response = page(collector).post(url("case_restructuring_preview", case), data, **HTMX)
    assert response.status_code == 422
    assert "A rate reduction needs a rate below the current" in response.content.decode()


def test_proposing_writes_the_proposal_with_both_schedules(case, collector):
    data = restructuring_data(reason="Lost his job; can pay half the instalment.")
    response = page(collector).post(url("case_restructuring", case), data, **HTMX)
    assert response.status_code == 200 and response["HX-Redirect"] == url("case", case)
    proposal = Restructuring.objects.get(case=case)
    assert (proposal.kind, proposal.new_term, proposal.proposed_by) == ("term_extension", 24, collector)
    assert proposal.current_summary["periods"] == 12 and proposal.proposed_summary["periods"] == 24


def test_a_rate_is_typed_as_a_percentage(case, collector):
    data = restructuring_data(kind="rate_reduction", new_annual_rate="6.5", new_term="", reason="hardship")
    assert page(collector).post(url("case_restructuring", case), data, **HTMX).status_code == 200
    assert Restructuring.objects.get(case=case).new_annual_rate == D("0.065")


def test_a_proposal_without_a_reason_is_refused_and_nothing_is_written(case, collector):
    response = page(collector).post(url("case_restructuring", case), restructuring_data(), **HTMX)
    assert response.status_code == 422 and "Give a reason." in response.content.decode()
    assert not Restructuring.objects.exists()


def test_a_pending_proposal_is_shown_instead_of_the_form(case, collector):
    page(collector).post(url("case_restructuring", case), restructuring_data(reason="hardship"), **HTMX)
    html = page(collector).get(url("case_restructuring", case), **HTMX).content.decode()
    assert "waits for a decision" in html and 'name="kind"' not in html


# --- request a legal referral ----------------------------------------------------------------------------


def referral_data(**extra) -> dict:
    return {
        "reason": "No payment in 90 days.",
        "forbearance_considered": "Offered a term extension.",
        **extra,
    }


def test_a_collector_is_told_an_unrecommended_case_needs_a_supervisor_and_is_refused(
    case, collector, django_assert_max_num_queries
):
    client = page(collector)
    client.get(url("case_referral", case), **HTMX)
    with django_assert_max_num_queries(9):
        html = client.get(url("case_referral", case), **HTMX).content.decode()
    assert "only a supervisor may request it" in html and 'name="forbearance_considered"' not in html
    response = client.post(url("case_referral", case), referral_data(), **HTMX)
    assert response.status_code == 422
    assert (
        "The scan has not recommended this case for legal referral; ask a supervisor."
        in response.content.decode()
    )
    assert not LegalReferral.objects.exists()


def test_a_supervisor_requests_a_referral(case, supervisor):
    response = page(supervisor).post(url("case_referral", case), referral_data(), **HTMX)
    assert response.status_code == 200 and response["HX-Redirect"] == url("case", case)
    referral = LegalReferral.objects.get(case=case)
    assert (referral.status, referral.requested_by) == ("requested", supervisor)
    assert referral.forbearance_considered == "Offered a term extension."


def test_a_recommended_case_may_be_requested_by_its_collector(case, collector):
    Case.objects.filter(pk=case.pk).update(referral_recommended_on=today())
    assert page(collector).post(url("case_referral", case), referral_data()).status_code == 302
    assert LegalReferral.objects.get(case=case).requested_by == collector


def test_a_blocked_case_shows_why_and_offers_no_form(case, collector, supervisor):
    services.promise_record(
        case=case, actor=collector, amount="500", promised_date=today() + timedelta(days=3)
    )
    html = page(supervisor).get(url("case_referral", case), **HTMX).content.decode()
    assert 'data-decision="blocked"' in html
    assert "The borrower has an open promise to pay: wait until it is kept or broken." in html
    assert 'name="forbearance_considered"' not in html
    response = page(supervisor).post(url("case_referral", case), referral_data(), **HTMX)
    assert response.status_code == 422 and not LegalReferral.objects.exists()


def test_the_referral_needs_both_texts(case, supervisor):
    response = page(supervisor).post(
        url("case_referral", case), referral_data(forbearance_considered=""), **HTMX
    )
    assert response.status_code == 422 and "This field is required." in response.content.decode()
    assert not LegalReferral.objects.exists()
