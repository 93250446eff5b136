"""The compliance officer's pages (``/compliance/``): who may open them, what each lists and how its
filters narrow it, the flag review and the data-subject export through their services (and that a
refused one writes nothing), the audit chain check on a clean and a tampered log, personal data
masked, and query counts that do not grow with the rows shown."""

from __future__ import annotations

import io
import zipfile
from datetime import datetime, timedelta

import pytest
from django.contrib.auth.models import Permission
from django.core.cache import cache
from django.db import connection
from django.forms.models import model_to_dict
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from compliance import selectors
from compliance.audit import audit_record
from compliance.contact import contact_attempt_record, contact_override_grant
from compliance.models import (
    AuditEvent,
    AuditEventType,
    ContactAttempt,
    ContactRule,
    OverrideRequest,
    ScreeningFlag,
)
from compliance.pii import NATIONAL_ID, pii_reveal
from compliance.screening import MSG_REVIEW_NOTE_REQUIRED, note_screen
from tests.api.test_cases import SHANGHAI, phone
from tests.compliance.test_audit import tampering
from tests.debt_collections.conftest import make_user
from tests.factories import BorrowerFactory, make_loan
from tests.web.conftest import page

pytestmark = pytest.mark.django_db

PAGES = [
    "compliance:home",
    "compliance:rules",
    "compliance:denied_contacts",
    "compliance:overrides",
    "compliance:override_requests",
    "compliance:flags",
    "compliance:pii_reveals",
    "compliance:audit",
    "compliance:export",
]
THREAT = "再不还钱就弄死你"  # matches the seeded lexicon term 弄死你 (violence)


@pytest.fixture(autouse=True)
def fresh_cache():
    """The chain check's result and lock live in the cache, which outlives a test's transaction."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def borrower(partner):
    b = BorrowerFactory(partner=partner, full_name="张三", national_id="110101199001011234")
    phone(b, "13812345678")
    return b


def reader_only():
    """Opens the compliance pages, may neither review flags nor export."""
    user = make_user("reader")
    user.user_permissions.add(Permission.objects.get(codename="view_auditevent"))
    return user


def request_row(borrower, collector, *, reasons=("quiet_hours",), channel="call", decided_by=None, at=None):
    """An override request (pending; declined when ``decided_by`` is given)."""
    decided = decided_by is not None
    return OverrideRequest.objects.create(
        borrower=borrower,
        channel=channel,
        contact_point=borrower.contact_points.first(),
        reasons=list(reasons),
        note="borrower asked to be called tonight",
        requested_by=collector,
        requested_at=at or timezone.now(),
        status="declined" if decided else "pending",
        decided_by=decided_by,
        decided_at=timezone.now() if decided else None,
        decision_reason="call tomorrow at nine" if decided else "",
    )


def next_quiet_hour() -> datetime:
    """23:00 in Shanghai, within the next 24 hours (an override granted now still covers it)."""
    now = timezone.now().astimezone(SHANGHAI)
    at = now.replace(hour=23, minute=0, second=0, microsecond=0)
    return at if at > now else at + timedelta(days=1)


def call_under_override(borrower, supervisor, collector) -> ContactAttempt:
    """A call in quiet hours that went ahead under a supervisor's override."""
    point = borrower.contact_points.first()
    contact_override_grant(
        borrower=borrower, channel="call", reasons=["quiet_hours"], reason="agreed time",
        actor=supervisor, contact_point=point,
    )  # fmt: skip
    return contact_attempt_record(
        borrower=borrower, channel="call", at=next_quiet_hour(), contact_point=point, actor=collector,
        connected=True, answered=True, right_party=True, outcome="right_party",
    )  # fmt: skip


def recorded():
    """Audit events other than the sign-ins the test clients make."""
    return AuditEvent.objects.exclude(event_type=AuditEventType.LOGIN)


def tiles(response) -> dict[str, int]:
    return {tile["url"].split("?")[0]: tile["count"] for tile in response.context["tiles"]}


# --- who may open what -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", PAGES)
def test_every_page_opens_for_a_compliance_officer_and_a_superuser(name, compliance_officer):
    assert page(compliance_officer).get(reverse(name)).status_code == 200
    root = make_user("root", is_superuser=True, is_staff=True)
    assert page(root).get(reverse(name)).status_code == 200


@pytest.mark.parametrize("name", PAGES)
def test_every_page_is_403_for_the_other_roles(name, collector, supervisor, senior, outsider):
    for user in (collector, supervisor, senior, outsider):
        assert page(user).get(reverse(name)).status_code == 403, user


@pytest.mark.parametrize("name", PAGES)
def test_anonymous_is_sent_to_sign_in(name):
    response = page().get(reverse(name))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_the_actions_are_403_for_other_roles_and_write_nothing(collector, supervisor, borrower):
    flag = note_screen(source="case_contact", source_id=1, text=THREAT)
    events = recorded().count()
    for user in (collector, supervisor):
        client = page(user)
        assert client.post(reverse("compliance:audit_verify"), {"scope": "full"}).status_code == 403
        assert (
            client.post(reverse("compliance:flag_review", args=[flag.pk]), {"note": "ok"}).status_code == 403
        )
        export = client.post(reverse("compliance:export_download", args=[borrower.pk]), {"reason": "DSR-1"})
        assert export.status_code == 403
    flag.refresh_from_db()
    assert flag.reviewed_at is None
    assert recorded().count() == events
    assert selectors.chain_check_last(selectors.FULL) is None


def test_no_page_is_kept_by_a_browser_or_proxy(compliance_officer):
    response = page(compliance_officer).get(reverse("compliance:pii_reveals"))
    assert "no-store" in response["Cache-Control"] and "private" in response["Cache-Control"]


def test_actions_are_post_only(compliance_officer, borrower):
    client = page(compliance_officer)
    assert client.get(reverse("compliance:audit_verify")).status_code == 405
    assert client.get(reverse("compliance:export_download", args=[borrower.pk])).status_code == 405


def test_the_navigation_links_here_only_for_those_who_may_open_it(compliance_officer, collector):
    assert reverse("compliance:home") in page(compliance_officer).get(reverse("compliance:rules")).text
    worklist = page(collector).get(reverse("compliance:rules"))
    assert f'href="{reverse("compliance:home")}"' not in worklist.text


# --- home ----------------------------------------------------------------------------------------------


def test_home_counts_what_needs_attention_with_links(
    compliance_officer, supervisor, collector, borrower, partner
):
    note_screen(source="case_contact", source_id=1, text=THREAT)
    note_screen(source="case_contact", source_id=2, text=THREAT)
    reviewed = note_screen(source="case_contact", source_id=3, text=THREAT)
    ScreeningFlag.objects.filter(pk=reviewed.pk).update(
        reviewed_at=timezone.now(), reviewed_by=compliance_officer, review_note="fine"
    )
    call_under_override(borrower, supervisor, collector)  # an override granted, and a refusal on record
    request_row(borrower, collector)  # another refusal on record, pending
    request_row(borrower, collector, decided_by=supervisor, at=timezone.now() - timedelta(days=3))
    pii_reveal(borrower=borrower, field=NATIONAL_ID, actor=compliance_officer, reason="DSR-7")

    response = page(compliance_officer).get(reverse("compliance:home"))

    assert response.status_code == 200
    assert tiles(response) == {
        reverse("compliance:flags"): 2,
        reverse("compliance:overrides"): 1,
        reverse("compliance:override_requests"): 1,
        reverse("compliance:pii_reveals"): 1,
        reverse("compliance:denied_contacts"): 2,
    }
    assert "has not been verified yet" in response.text


def test_home_shows_the_last_chain_check(compliance_officer):
    audit_record(event_type=AuditEventType.EXPORT, actor_label="system")
    client = page(compliance_officer)
    client.post(reverse("compliance:audit_verify"), {"scope": "full"})
    response = client.get(reverse("compliance:home"))
    assert "Intact" in response.text and "by comp" in response.text


# --- rule profiles -------------------------------------------------------------------------------------


def test_rule_profiles_show_each_rule_with_its_source_and_admin_links_for_staff(compliance_officer):
    quiet = ContactRule.objects.get(profile__code="cn", rule="quiet_hours")
    audit_record(
        event_type=AuditEventType.RULE_EDIT, actor_label="admin", subject=quiet,
        details={"action": "changed", "values": model_to_dict(quiet)},
    )  # fmt: skip
    response = page(compliance_officer).get(reverse("compliance:rules"))
    assert [(edit["what"], edit["action"]) for edit in response.context["edits"]] == [
        ("quiet hours (borrower's local time)", "changed")
    ]
    assert response.status_code == 200
    names = [item["profile"].code for item in response.context["profiles"]]
    assert {"cn", "us", "uk"} <= {code.lower() for code in names}
    assert "GB/T 45251-2025" in response.text and "1006.6(b)" in response.text
    assert "22:00–08:00" in response.text
    assert "/admin/compliance/contactrule/" not in response.text  # not staff: no configuration links

    compliance_officer.is_staff = True
    compliance_officer.save()
    staff = page(compliance_officer).get(reverse("compliance:rules"))
    assert "/admin/compliance/contactrule/" in staff.text
    assert "/admin/compliance/jurisdictionprofile/" in staff.text


# --- refused contacts ----------------------------------------------------------------------------------


@pytest.fixture
def refusals(borrower, partner, supervisor, collector, other_collector):
    """Three refusals on record: a call under an override (quiet hours, by ``collector``), a pending
    SMS request for the daily cap (by ``other_collector``) and a week-old declined call request."""
    other = BorrowerFactory(partner=partner, full_name="李四")
    phone(other, "13900001111")
    attempt = call_under_override(borrower, supervisor, collector)
    sms = request_row(other, other_collector, reasons=["daily_attempt_cap"], channel="sms")
    old = request_row(
        borrower, collector, reasons=["quiet_hours", "seven_in_seven"], decided_by=supervisor,
        at=timezone.now() - timedelta(days=7),
    )  # fmt: skip
    return attempt, sms, old


def listed(response) -> list[tuple[str, int]]:
    assert response.status_code == 200, response.content
    return [(row["source"], row["row"]) for row in response.context["rows"]]


def test_the_refused_contact_log_reads_requests_and_overridden_contacts(compliance_officer, refusals):
    attempt, sms, old = refusals
    response = page(compliance_officer).get(reverse("compliance:denied_contacts"))
    assert set(listed(response)) == {("attempt", attempt.pk), ("request", sms.pk), ("request", old.pk)}
    assert listed(response)[-1] == ("request", old.pk)  # newest first
    assert "went ahead under an override" in response.text
    assert "quiet hours in the borrower&#x27;s local time" in response.text
    assert "张三" in response.text and "李四" in response.text


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"channel": "sms"}, {"sms"}),
        ({"channel": "call"}, {"attempt", "old"}),
        ({"reason": "quiet_hours"}, {"attempt", "old"}),
        ({"reason": "seven_in_seven"}, {"old"}),
        ({"reason": "daily_attempt_cap"}, {"sms"}),
        ({"agent": "col2"}, {"sms"}),
        ({"agent": "col"}, {"attempt", "old"}),
        ({"date_to": "OLD"}, {"old"}),
        ({"date_from": "TODAY"}, {"attempt", "sms"}),
    ],
)
def test_the_refused_contact_filters_narrow_the_log(compliance_officer, refusals, query, expected):
    attempt, sms, old = refusals
    names = {("attempt", attempt.pk): "attempt", ("request", sms.pk): "sms", ("request", old.pk): "old"}
    dates = {"OLD": timezone.localdate(old.requested_at), "TODAY": timezone.localdate()}
    query = {key: str(dates.get(value, value)) for key, value in query.items()}
    response = page(compliance_officer).get(reverse("compliance:denied_contacts"), query)
    assert {names[row] for row in listed(response)} == expected


@pytest.mark.parametrize(
    "query",
    [
        {"agent": "nobody-here"},
        {"date_from": "yesterday"},
        {"date_from": "2026-03-02", "date_to": "2026-03-01"},
    ],
)
def test_a_bad_filter_is_a_form_error_not_a_500(compliance_officer, refusals, query):
    response = page(compliance_officer).get(reverse("compliance:denied_contacts"), query)
    assert response.status_code == 200
    assert response.context["form"].errors
    assert "not applied until they are corrected" in response.text


# --- overrides -----------------------------------------------------------------------------------------


def test_overrides_list_grants_with_use_and_mask_the_number(
    compliance_officer, supervisor, collector, borrower
):
    call_under_override(borrower, supervisor, collector)
    unused = contact_override_grant(
        borrower=borrower, channel="sms", reasons=["daily_attempt_cap"], reason="payment link",
        actor=supervisor, contact_point=borrower.contact_points.first(),
    )  # fmt: skip
    client = page(compliance_officer)
    response = client.get(reverse("compliance:overrides"))
    assert response.status_code == 200
    assert len(response.context["rows"]) == 2
    assert "138****5678" in response.text and "13812345678" not in response.text
    assert "agreed time" in response.text and "payment link" in response.text

    opened = client.get(reverse("compliance:overrides"), {"state": "open"})
    assert [row["override"].pk for row in opened.context["rows"]] == [unused.pk]
    used = client.get(reverse("compliance:overrides"), {"state": "used"})
    assert [row["override"].channel for row in used.context["rows"]] == ["call"]
    assert client.get(reverse("compliance:overrides"), {"state": "expired"}).context["rows"] == []
    assert len(client.get(reverse("compliance:overrides"), {"granted_by": "sup"}).context["rows"]) == 2
    assert client.get(reverse("compliance:overrides"), {"granted_by": "sup2"}).status_code == 200


def test_override_requests_show_their_decisions_and_filter_by_status(
    compliance_officer, collector, supervisor, borrower
):
    pending = request_row(borrower, collector)
    declined = request_row(borrower, collector, decided_by=supervisor, at=timezone.now() - timedelta(hours=2))
    client = page(compliance_officer)
    response = client.get(reverse("compliance:override_requests"))
    assert [row["item"].pk for row in response.context["rows"]] == [pending.pk, declined.pk]
    assert "call tomorrow at nine" in response.text and "138****5678" in response.text
    assert "13812345678" not in response.text
    only = client.get(reverse("compliance:override_requests"), {"status": "declined"})
    assert [row["item"].pk for row in only.context["rows"]] == [declined.pk]


# --- flagged notes -------------------------------------------------------------------------------------


@pytest.fixture
def flags(compliance_officer):
    waiting = note_screen(source="case_contact", source_id=11, text=THREAT)
    done = note_screen(source="case_contact", source_id=12, text="你是个骗子")
    ScreeningFlag.objects.filter(pk=done.pk).update(
        reviewed_at=timezone.now(), reviewed_by=compliance_officer, review_note="coached"
    )
    return waiting, done


def test_flags_waiting_come_first_with_what_matched_marked(compliance_officer, flags):
    waiting, done = flags
    client = page(compliance_officer)
    response = client.get(reverse("compliance:flags"))
    assert [row["flag"].pk for row in response.context["rows"]] == [waiting.pk]
    assert "<mark>弄死你</mark>" in response.text and "contact note #11" in response.text
    everything = client.get(reverse("compliance:flags"), {"state": "all"})
    assert [row["flag"].pk for row in everything.context["rows"]] == [waiting.pk, done.pk]
    reviewed = client.get(reverse("compliance:flags"), {"state": "reviewed"})
    assert [row["flag"].pk for row in reviewed.context["rows"]] == [done.pk]
    violence = client.get(reverse("compliance:flags"), {"state": "all", "category": "violence"})
    assert [row["flag"].pk for row in violence.context["rows"]] == [waiting.pk]


def test_reviewing_a_flag_in_place_writes_the_review_and_its_audit_event(compliance_officer, flags):
    waiting, _done = flags
    url = reverse("compliance:flag_review", args=[waiting.pk])
    response = page(compliance_officer).post(url, {"note": "Warned the collector."}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert f'id="flag-{waiting.pk}"' in response.text and "Warned the collector." in response.text
    waiting.refresh_from_db()
    assert waiting.reviewed_by == compliance_officer and waiting.review_note == "Warned the collector."
    event = AuditEvent.objects.get(event_type=AuditEventType.SCREENING_REVIEW)
    assert event.subject_id == str(waiting.pk) and event.actor == compliance_officer


def test_an_empty_review_note_is_refused_and_writes_nothing(compliance_officer, flags):
    waiting, _done = flags
    url = reverse("compliance:flag_review", args=[waiting.pk])
    client = page(compliance_officer)
    htmx = client.post(url, {"note": "   "}, HTTP_HX_REQUEST="true")
    assert htmx.status_code == 422
    assert str(MSG_REVIEW_NOTE_REQUIRED) in htmx.text and f'id="flag-{waiting.pk}"' in htmx.text
    plain = client.post(url, {"note": ""})
    assert plain.status_code == 200 and str(MSG_REVIEW_NOTE_REQUIRED) in plain.text
    waiting.refresh_from_db()
    assert waiting.reviewed_at is None
    assert not AuditEvent.objects.filter(event_type=AuditEventType.SCREENING_REVIEW).exists()


def test_a_plain_review_post_returns_to_the_list_and_a_second_review_is_refused(compliance_officer, flags):
    waiting, done = flags
    client = page(compliance_officer)
    response = client.post(reverse("compliance:flag_review", args=[waiting.pk]), {"note": "ok"})
    assert response.status_code == 302 and response["Location"] == reverse("compliance:flags")
    again = client.post(reverse("compliance:flag_review", args=[done.pk]), {"note": "again"})
    assert again.status_code == 200 and "reviewed already" in again.text
    done.refresh_from_db()
    assert done.review_note == "coached"
    assert AuditEvent.objects.filter(event_type=AuditEventType.SCREENING_REVIEW).count() == 1


def test_reviewing_needs_the_review_permission(flags):
    waiting, _done = flags
    reader = page(reader_only())
    assert reader.get(reverse("compliance:flags")).status_code == 200
    assert "Mark reviewed" not in reader.get(reverse("compliance:flags")).text
    assert (
        reader.post(reverse("compliance:flag_review", args=[waiting.pk]), {"note": "ok"}).status_code == 403
    )
    waiting.refresh_from_db()
    assert waiting.reviewed_at is None


def test_an_unknown_flag_is_404(compliance_officer):
    assert page(compliance_officer).get(reverse("compliance:flag_review", args=[999999])).status_code == 404


# --- PII reveals ---------------------------------------------------------------------------------------


def test_pii_reveals_say_who_whose_what_and_why_and_filter(compliance_officer, partner, borrower):
    other_officer = make_user("comp2", "compliance_officer")
    other = BorrowerFactory(partner=partner, full_name="王五")
    point = borrower.contact_points.first()
    pii_reveal(borrower=borrower, field=NATIONAL_ID, actor=compliance_officer, reason="DSR-1 identity check")
    pii_reveal(
        borrower=borrower, field=f"contact_point:{point.pk}", actor=other_officer, reason="wrong number?"
    )
    pii_reveal(borrower=other, field=NATIONAL_ID, actor=other_officer, reason="court order 12")

    client = page(compliance_officer)
    response = client.get(reverse("compliance:pii_reveals"))
    assert [row["reason"] for row in response.context["rows"]] == [
        "court order 12", "wrong number?", "DSR-1 identity check",
    ]  # fmt: skip
    assert "张三" in response.text and "王五" in response.text
    assert "110101199001011234" not in response.text and "13812345678" not in response.text

    def reasons(**query):
        return [row["reason"] for row in client.get(reverse("compliance:pii_reveals"), query).context["rows"]]

    assert reasons(actor="comp") == ["DSR-1 identity check"]
    assert reasons(field="phone") == ["wrong number?"]
    assert reasons(field="national_id") == ["court order 12", "DSR-1 identity check"]
    assert reasons(borrower=str(other.pk)) == ["court order 12"]
    assert reasons(date_to=str(timezone.localdate() - timedelta(days=1))) == []
    bad = client.get(reverse("compliance:pii_reveals"), {"borrower": "abc"})
    assert bad.status_code == 200 and bad.context["form"].errors


# --- the audit log -------------------------------------------------------------------------------------


def test_the_audit_log_filters_by_type_actor_subject_and_date(compliance_officer, borrower):
    audit_record(
        event_type=AuditEventType.EXPORT, actor=compliance_officer, subject=borrower, details={"n": 1}
    )
    audit_record(event_type=AuditEventType.SCAN_RUN, actor_label="scan", details={"moved": 3})
    audit_record(event_type=AuditEventType.EXPORT, actor_label="system", subject=("loans.loan", 5))
    audit_record(event_type=AuditEventType.LOGIN_FAILED, actor_label="comp", details={"ip": "10.0.0.9"})
    client = page(compliance_officer)

    def ids(**query):
        response = client.get(reverse("compliance:audit"), query)
        assert response.status_code == 200
        return [row["event"].event_type + ":" + row["event"].actor_label for row in response.context["rows"]]

    assert ids() == ["login:comp", "login_failed:comp", "export:system", "scan_run:scan", "export:comp"]
    assert ids(event_type="export") == ["export:system", "export:comp"]
    assert ids(actor="scan") == ["scan_run:scan"]
    # A user's own events, and the failed sign-ins tried with their name (no user attached to those).
    assert ids(actor="comp") == ["login:comp", "login_failed:comp", "export:comp"]
    assert ids(subject_type="loans.borrower", subject_id=str(borrower.pk)) == ["export:comp"]
    assert ids(date_to=str(timezone.localdate() - timedelta(days=1))) == []
    assert client.get(reverse("compliance:audit"), {"event_type": "coffee"}).context["form"].errors


def test_the_audit_log_pages_by_keyset_without_counting(compliance_officer):
    client = page(compliance_officer)
    for i in range(105):
        audit_record(event_type=AuditEventType.EXPORT, actor_label="system", details={"i": i})
    newest_first = list(AuditEvent.objects.order_by("-id").values_list("pk", flat=True))
    assert len(newest_first) == 106  # and the sign-in
    with CaptureQueriesContext(connection) as queries:
        first = client.get(reverse("compliance:audit"))
    assert not any("COUNT(" in q["sql"].upper() for q in queries.captured_queries)
    rows = [row["event"].pk for row in first.context["rows"]]
    assert rows == newest_first[:100]
    assert first.context["page"].newer is None and first.context["page"].older == newest_first[99]
    assert f"before={newest_first[99]}" in first.text

    second = client.get(reverse("compliance:audit"), {"before": newest_first[99]})
    assert [row["event"].pk for row in second.context["rows"]] == newest_first[100:]
    assert second.context["page"].older is None and second.context["page"].newer == newest_first[100]

    back = client.get(reverse("compliance:audit"), {"after": newest_first[100]})
    assert [row["event"].pk for row in back.context["rows"]] == rows
    assert back.context["page"].newer is None and back.context["page"].older == newest_first[99]


def test_verify_now_reports_an_intact_chain_and_keeps_the_result(compliance_officer):
    client = page(compliance_officer)  # signing in is an audit event too
    for i in range(3):
        audit_record(event_type=AuditEventType.EXPORT, actor_label="system", details={"i": i})
    response = client.post(reverse("compliance:audit_verify"), {"scope": "full"}, follow=True)
    assert response.status_code == 200
    assert "The audit chain is intact (4 events checked)." in response.text
    check = selectors.chain_check_last(selectors.FULL)
    assert check.intact and check.events == 4 and check.by == "comp"
    assert check.last_hash == AuditEvent.objects.order_by("-id").first().hash
    assert AuditEvent.objects.count() == 4  # the check writes nothing to the database


def test_verify_now_names_the_first_tampered_event(compliance_officer):
    a, b, c = (
        audit_record(event_type=AuditEventType.EXPORT, actor_label="system", details={"i": i})
        for i in range(3)
    )
    with tampering() as cursor:
        cursor.execute("UPDATE compliance_auditevent SET details = %s WHERE id = %s", ['{"i": 42}', b.pk])
    client = page(compliance_officer)
    response = client.post(reverse("compliance:audit_verify"), {"scope": "full"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert 'id="chain-status"' in response.text and "Broken" in response.text
    assert f"first problem at event #{b.pk}" in response.text
    assert "the event was edited" in response.text
    check = selectors.chain_check_last(selectors.FULL)
    assert not check.intact and check.problem_event == b.pk
    assert f"#{b.pk}" in client.get(reverse("compliance:audit")).text

    recent = client.post(reverse("compliance:audit_verify"), {"scope": "recent"}, follow=True)
    assert f"broken at event #{b.pk}" in recent.text
    assert not selectors.chain_check_last(selectors.RECENT).intact


def test_a_deleted_event_breaks_the_next_link(compliance_officer):
    a, b, c = (audit_record(event_type=AuditEventType.EXPORT, actor_label="system") for _ in range(3))
    with tampering() as cursor:
        cursor.execute("DELETE FROM compliance_auditevent WHERE id = %s", [b.pk])
    response = page(compliance_officer).post(
        reverse("compliance:audit_verify"), {"scope": "full"}, follow=True
    )
    assert f"broken at event #{c.pk}" in response.text and "deleted or moved" in response.text


def test_a_long_chain_is_walked_in_parts_within_the_time_limit(compliance_officer, monkeypatch):
    first, second, third = (
        audit_record(event_type=AuditEventType.EXPORT, actor_label="system") for _ in range(3)
    )
    client = page(compliance_officer)
    total = AuditEvent.objects.count()  # and the sign-in, the newest
    monkeypatch.setattr(selectors, "CHAIN_WALK_SECONDS", 0)  # each request checks one event

    response = client.post(reverse("compliance:audit_verify"), {"scope": "full"}, HTTP_HX_REQUEST="true")
    check = selectors.chain_check_last(selectors.FULL)
    assert (check.intact, check.complete, check.events, check.last_id) == (True, False, 1, first.pk)
    assert "Intact so far" in response.text and 'value="continue"' in response.text
    assert "Verify the whole chain now" not in response.text

    for _part in range(total):
        client.post(reverse("compliance:audit_verify"), {"scope": "continue"})
        check = selectors.chain_check_last(selectors.FULL)
        if check.complete:
            break
    assert check.intact and check.complete and check.events == total and check.first_id == first.pk
    page_text = client.get(reverse("compliance:audit")).text
    assert "the whole chain: 4 events" in page_text


def test_continuing_a_walk_notices_the_event_it_stopped_at_was_changed(compliance_officer, monkeypatch):
    first, second, third = (
        audit_record(event_type=AuditEventType.EXPORT, actor_label="system", details={"i": i})
        for i in range(3)
    )
    client = page(compliance_officer)
    monkeypatch.setattr(selectors, "CHAIN_WALK_SECONDS", 0)
    client.post(reverse("compliance:audit_verify"), {"scope": "full"})
    client.post(reverse("compliance:audit_verify"), {"scope": "continue"})
    assert selectors.chain_check_last(selectors.FULL).last_id == second.pk
    with tampering() as cursor:
        cursor.execute("UPDATE compliance_auditevent SET details = %s WHERE id = %s", ['{"i": 7}', second.pk])
    response = client.post(reverse("compliance:audit_verify"), {"scope": "continue"}, follow=True)
    assert f"broken at event #{second.pk}" in response.text
    assert "changed after an earlier part of the walk checked it" in response.text
    # Starting over finds the same event, by its own hash.
    monkeypatch.setattr(selectors, "CHAIN_WALK_SECONDS", 20)
    client.post(reverse("compliance:audit_verify"), {"scope": "full"})
    check = selectors.chain_check_last(selectors.FULL)
    assert check.problem_event == second.pk and "do not match its hash" in check.problem


def test_one_check_at_a_time(compliance_officer):
    cache.add(selectors.CHAIN_LOCK_KEY, "someone", 60)
    client = page(compliance_officer)
    htmx = client.post(reverse("compliance:audit_verify"), {"scope": "full"}, HTTP_HX_REQUEST="true")
    assert "running already" in htmx.text
    plain = client.post(reverse("compliance:audit_verify"), {"scope": "full"}, follow=True)
    assert "running already" in plain.text
    assert selectors.chain_check_last(selectors.FULL) is None


# --- data-subject export -------------------------------------------------------------------------------


@pytest.fixture
def loan(borrower):
    return make_loan(borrower=borrower, external_ref="LN-7788")


@pytest.mark.parametrize(
    ("kind", "q"),
    [
        ("national_id", "110101199001011234"),
        ("national_id", " 110101199001011234 "),
        ("reference", "LN-7788"),
        ("reference", "BORROWER_REF"),
        ("name", "张"),
    ],
)
def test_the_export_search_finds_the_borrower_and_masks_the_national_id(
    compliance_officer, borrower, loan, kind, q
):
    q = borrower.external_ref if q == "BORROWER_REF" else q
    response = page(compliance_officer).post(reverse("compliance:export"), {"kind": kind, "q": q})
    assert response.status_code == 200
    assert [card["borrower"].pk for card in response.context["results"]] == [borrower.pk]
    assert "110***********1234" in response.text and "110101199001011234" not in response.text
    assert "138****5678" in response.text and "LN-7788" in response.text


def test_the_export_search_finds_nobody_for_an_unknown_number(compliance_officer, borrower):
    response = page(compliance_officer).post(
        reverse("compliance:export"), {"kind": "national_id", "q": "999"}
    )
    assert response.context["results"] == [] and "No borrower found." in response.text


def test_the_export_downloads_a_zip_and_is_audited(compliance_officer, borrower, loan):
    url = reverse("compliance:export_download", args=[borrower.pk])
    response = page(compliance_officer).post(url, {"reason": "DSR-2026-014"})
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    assert f"borrower-{borrower.pk}-" in response["Content-Disposition"]
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    assert {"README.txt", "borrower.json", "audit_events.csv"} <= set(archive.namelist())
    event = AuditEvent.objects.get(event_type=AuditEventType.DATA_SUBJECT_EXPORT)
    assert event.subject_id == str(borrower.pk) and event.details["reason"] == "DSR-2026-014"
    assert event.actor == compliance_officer


def test_an_export_without_a_reason_is_a_form_error_and_writes_nothing(compliance_officer, borrower):
    url = reverse("compliance:export_download", args=[borrower.pk])
    response = page(compliance_officer).post(url, {"reason": "  "})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    assert "Give a reason." in response.text
    assert [card["borrower"].pk for card in response.context["results"]] == [borrower.pk]
    assert not recorded().exists()


def test_exporting_needs_the_export_permission(borrower):
    reader = page(reader_only())
    search = reader.post(reverse("compliance:export"), {"kind": "name", "q": "张"})
    assert search.status_code == 200 and "You may not export personal data." in search.text
    url = reverse("compliance:export_download", args=[borrower.pk])
    assert reader.post(url, {"reason": "DSR"}).status_code == 403
    assert not recorded().exists()


def test_exporting_an_unknown_borrower_is_404(compliance_officer):
    url = reverse("compliance:export_download", args=[999999])
    assert page(compliance_officer).post(url, {"reason": "DSR"}).status_code == 404


# --- queries do not grow with the rows -----------------------------------------------------------------


def _fill(partner, supervisor, collector, officer, n: int) -> None:
    """``n`` of everything the lists show, each with its own borrower."""
    for i in range(n):
        b = BorrowerFactory(partner=partner)
        point = phone(b, f"1380000{i:04d}")
        make_loan(borrower=b)
        contact_override_grant(
            borrower=b,
            channel="call",
            reasons=["quiet_hours"],
            reason="ok",
            actor=supervisor,
            contact_point=point,
        )
        request_row(b, collector)
        note_screen(source="case_contact", source_id=1000 + i, text=THREAT)
        pii_reveal(borrower=b, field=NATIONAL_ID, actor=officer, reason=f"DSR-{i}")


# Per page: the session, the user and their two permission reads, then the page's own (home: five
# counts; the refused-contact log: its count, its page, the agents and the borrowers in one query each).
QUERY_BOUNDS = {
    "compliance:home": 9,
    "compliance:rules": 7,
    "compliance:denied_contacts": 8,
    "compliance:overrides": 6,
    "compliance:override_requests": 6,
    "compliance:flags": 6,
    "compliance:pii_reveals": 6,
    "compliance:audit": 5,
}


@pytest.mark.parametrize("name", sorted(QUERY_BOUNDS))
def test_page_queries_do_not_grow_with_the_rows(
    name, partner, supervisor, collector, compliance_officer, django_assert_max_num_queries
):
    client = page(compliance_officer)
    client.get(reverse(name))  # the session's first request reads the user's preferences once
    _fill(partner, supervisor, collector, compliance_officer, 2)
    with django_assert_max_num_queries(QUERY_BOUNDS[name]):
        few = client.get(reverse(name))
    _fill(partner, supervisor, collector, compliance_officer, 12)
    with django_assert_max_num_queries(QUERY_BOUNDS[name]):
        many = client.get(reverse(name))
    assert few.status_code == many.status_code == 200


def test_the_export_search_queries_do_not_grow_with_the_borrowers(
    partner, supervisor, collector, compliance_officer, django_assert_max_num_queries
):
    client = page(compliance_officer)
    client.get(reverse("compliance:export"))
    _fill(partner, supervisor, collector, compliance_officer, 12)
    Borrower = BorrowerFactory._meta.model
    Borrower.objects.update(full_name="张伟")
    with django_assert_max_num_queries(7):  # 4 to sign in, the borrowers, their contact points, their loans
        response = client.post(reverse("compliance:export"), {"kind": "name", "q": "张"})
    assert len(response.context["results"]) == 12
