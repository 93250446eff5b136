"""``/api/v1/audit-events/``: compliance officers read the audit log and verify its hash chain;
collectors, supervisors and partner keys are refused (403)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from compliance.audit import audit_record
from compliance.models import AuditEvent
from tests.api.conftest import staff_client
from tests.api.test_cases import assert_problem, ids

pytestmark = pytest.mark.django_db

URL = "/api/v1/audit-events/"


@pytest.fixture
def officer():
    return staff_client("compliance_officer")


@pytest.fixture
def events(db):
    actor = staff_client("supervisor").user
    now = timezone.now()
    return {
        "old": audit_record(
            event_type="stage_change", actor=actor, subject=("debt_collections.case", 7),
            details={"from": "notice", "to": "restructuring"}, at=now - timedelta(days=3),
        ),
        "scan": audit_record(event_type="scan_run", actor_label="scan", details={"escalated": 2}, at=now),
        "pii": audit_record(event_type="pii_reveal", actor=actor, subject=("loans.borrower", 12), at=now),
    }  # fmt: skip


def test_a_compliance_officer_reads_the_log_with_its_hashes(officer, events):
    response = officer.get(URL)
    assert response.status_code == 200, response.content
    rows = {row["id"]: row for row in response.json()["results"]}
    assert {e.pk for e in events.values()} <= set(rows)
    old = rows[events["old"].pk]
    assert old["event_type"] == "stage_change" and old["subject_id"] == "7"
    assert old["details"] == {"from": "notice", "to": "restructuring"}
    assert old["hash"] == events["old"].hash and old["prev_hash"] == events["old"].prev_hash
    assert rows[events["scan"].pk]["prev_hash"] == events["old"].hash
    assert rows[events["scan"].pk]["actor"] is None and rows[events["scan"].pk]["actor_label"] == "scan"
    detail = officer.get(f"{URL}{events['pii'].pk}/").json()
    assert detail["event_type"] == "pii_reveal" and detail["subject_type"] == "loans.borrower"


@pytest.mark.parametrize("group", ["collector", "supervisor", "senior_supervisor", None])
def test_everyone_but_compliance_officers_is_refused(group, events):
    client = staff_client(group)
    assert_problem(client.get(URL), 403, "forbidden")
    assert_problem(client.get(f"{URL}{events['pii'].pk}/"), 403)
    assert_problem(client.get(f"{URL}verify/"), 403)


def test_partner_keys_are_always_refused(partner, client_for, events):
    key = client_for(partner)  # every scope
    for url in (URL, f"{URL}{events['pii'].pk}/", f"{URL}verify/"):
        problem = assert_problem(key.get(url), 403, "forbidden")
        assert problem["detail"] == "Partner keys may not use this endpoint."
    assert_problem(APIClient(HTTP_ACCEPT_LANGUAGE="en").get(URL), 401)


def test_filters(officer, events):
    actor = events["old"].actor_label
    day = timezone.now() - timedelta(days=1)
    cases = {
        "event_type=stage_change": {"old"},
        "event_type=pii_reveal&subject_id=12": {"pii"},
        "subject_type=debt_collections.case&subject_id=7": {"old"},
        "actor=scan": {"scan"},
        f"actor={actor}&event_type=pii_reveal": {"pii"},
        "at_to=" + day.isoformat().replace("+", "%2B"): {"old"},
    }
    for query, expected in cases.items():
        assert ids(officer.get(f"{URL}?{query}")) == {events[name].pk for name in expected}, query
    recent = ids(officer.get(f"{URL}?at_from={day.isoformat().replace('+', '%2B')}"))
    assert events["scan"].pk in recent and events["old"].pk not in recent


@pytest.mark.parametrize(
    "query",
    ["event_type=coffee", "at_from=yesterday", "at_to=0001-01-01T00:00:00%2B14:00", "at_from=2026-13-01"],
)
def test_a_bad_filter_is_400(officer, events, query):
    assert_problem(officer.get(f"{URL}?{query}"), 400, "invalid-input")


def test_the_log_cannot_be_written_through_the_api(officer, events):
    before = AuditEvent.objects.count()
    # 403 (no write access is granted) before the method is found missing (405): either way, refused.
    assert officer.post(URL, {}, format="json").status_code in (403, 405)
    assert officer.delete(f"{URL}{events['pii'].pk}/").status_code in (403, 405)
    assert AuditEvent.objects.count() == before
    assert_problem(officer.get(f"{URL}ref:x/"), 404)


def test_verify_says_the_chain_is_intact(officer, events):
    body = officer.get(f"{URL}verify/").json()
    assert body["intact"] is True and body["first_problem"] is None
    assert body["events"] == AuditEvent.objects.count()


def test_verify_finds_an_edited_row(officer, events):
    """Only possible behind the append-only trigger's back (PostgreSQL: a session in replica mode, as
    a superuser could)."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET session_replication_role = replica")
        cursor.execute(
            "UPDATE compliance_auditevent SET details = %s WHERE id = %s",
            ['{"escalated": 0}', events["scan"].pk],
        )
        if connection.vendor == "postgresql":
            cursor.execute("RESET session_replication_role")
    body = officer.get(f"{URL}verify/").json()
    assert body["intact"] is False
    assert (
        body["first_problem"]["event_id"] == events["scan"].pk
        and "edited" in body["first_problem"]["problem"]
    )
