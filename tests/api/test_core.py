"""The API's plumbing: partner keys, authentication, scopes, problem+json, limits, docs."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from api.keys import key_find, key_hash, partner_key_create, partner_key_revoke
from api.models import PartnerKey
from compliance.models import AuditEvent
from loans.models import Borrower
from tests.api.conftest import idem, key_client, staff_client

pytestmark = pytest.mark.django_db

BORROWER = {"external_ref": "B-1", "full_name": "王小明", "time_zone": "Asia/Shanghai", "region": "CN"}


def _problem(response, status):
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status
    assert body["type"].startswith("/api/problems/")
    assert body["title"] and body["detail"]
    return body


# --- keys --------------------------------------------------------------------------------------------


def test_key_is_stored_only_as_its_hash(partner):
    row, key = partner_key_create(partner=partner, name="platform", scopes=["loans:read"])
    assert key.startswith(f"ck_{row.prefix}_")
    assert row.key_hash == key_hash(key)
    assert key not in str(PartnerKey.objects.filter(pk=row.pk).values().get())
    assert key_find(key) == row
    assert key_find(key[:-1] + ("A" if key[-1] != "A" else "B")) is None
    # The creation is in the audit trail, without the key.
    event = AuditEvent.objects.get(event_type="api_key")
    assert event.details["key"] == row.prefix and key not in str(event.details)


def test_create_partner_key_command_prints_the_key_once(partner):
    out, err = io.StringIO(), io.StringIO()
    call_command(
        "create_partner_key", "acme", "--scopes", "loans:read", "payments:write", stdout=out, stderr=err
    )
    key = out.getvalue().strip()
    row = key_find(key)
    assert row.partner == partner and row.scopes == ["loans:read", "payments:write"]
    assert "shown once" in err.getvalue()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nobody", "--scopes", "loans:read"], "No partner 'nobody'"),
        (["acme", "--scopes", "loans:fly"], "Unknown scopes: loans:fly"),
    ],
)
def test_create_partner_key_command_refuses_bad_input(partner, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("create_partner_key", *args)
    assert not PartnerKey.objects.exists()


def test_revoked_key_stops_working_at_once(partner):
    client = key_client(partner, ["borrowers:read"])
    assert client.get("/api/v1/borrowers/").status_code == 200
    row = key_find(client.key)
    call_command("revoke_partner_key", row.prefix, stdout=io.StringIO())
    body = _problem(client.get("/api/v1/borrowers/"), 401)
    assert body["type"] == "/api/problems/not-authenticated"
    with pytest.raises(CommandError, match="revoked already"):
        call_command("revoke_partner_key", row.prefix)
    partner_key_revoke(key=row)  # revoking twice through the service is harmless


def test_inactive_partner_keys_stop_working(partner):
    client = key_client(partner, ["borrowers:read"])
    partner.is_active = False
    partner.save()
    _problem(client.get("/api/v1/borrowers/"), 401)


# --- authentication and scopes -------------------------------------------------------------------------


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer not-a-key", "Bearer ck_abc_def", "Bearer a b"])
def test_missing_or_bad_credentials_are_401(db, header):
    client = APIClient()
    if header:
        client.credentials(HTTP_AUTHORIZATION=header)
    response = client.get("/api/v1/borrowers/")
    _problem(response, 401)
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_wrong_scope_is_403_and_writes_nothing(partner):
    client = key_client(partner, ["borrowers:read"])
    body = _problem(client.post("/api/v1/borrowers/", BORROWER, format="json", **idem()), 403)
    assert "borrowers:write" in body["detail"]
    assert not Borrower.objects.exists()


def test_staff_read_with_role_but_never_write_the_loan_book(partner):
    key_client(partner).post("/api/v1/borrowers/", BORROWER, format="json", **idem())
    collector = staff_client("collector")
    assert collector.get("/api/v1/borrowers/").json()["results"][0]["external_ref"] == "B-1"
    _problem(
        collector.post("/api/v1/borrowers/", {**BORROWER, "external_ref": "B-2"}, format="json", **idem()),
        403,
    )
    _problem(staff_client(None).get("/api/v1/borrowers/"), 403)  # no role, no access


def test_another_partners_record_is_not_found(partner, other_partner):
    created = key_client(partner).post("/api/v1/borrowers/", BORROWER, format="json", **idem()).json()
    rival = key_client(other_partner)
    _problem(rival.get(f"/api/v1/borrowers/{created['id']}/"), 404)
    _problem(rival.get("/api/v1/borrowers/ref:B-1/"), 404)
    assert rival.get("/api/v1/borrowers/").json()["results"] == []


# --- problems -------------------------------------------------------------------------------------------


def test_malformed_json_is_400(api):
    body = _problem(
        api.generic(
            "POST", "/api/v1/borrowers/", b'{"external_ref": ', content_type="application/json", **idem()
        ),
        400,
    )
    assert body["type"] == "/api/problems/malformed"
    assert not Borrower.objects.exists()


def test_wrong_types_and_unknown_fields_name_each_field(api):
    body = _problem(
        api.post(
            "/api/v1/borrowers/",
            {
                **BORROWER,
                "full_name": ["x"],
                "contact_points": [{"kind": "fax", "value": "1"}],
                "colour": "red",
            },
            format="json",
            **idem(),
        ),
        400,
    )
    assert set(body["errors"]) == {"colour"}  # unknown fields first: nothing else is looked at
    body = _problem(
        api.post(
            "/api/v1/borrowers/",
            {**BORROWER, "full_name": ["x"], "contact_points": [{"kind": "fax", "value": "1"}]},
            format="json",
            **idem(),
        ),  # fmt: skip
        400,
    )
    assert set(body["errors"]) == {"full_name", "contact_points.0.kind"}


def test_a_business_rule_refusal_is_422_with_the_field(api):
    api.post("/api/v1/borrowers/", BORROWER, format="json", **idem())
    body = _problem(api.post("/api/v1/borrowers/", BORROWER, format="json", **idem()), 422)
    assert body["errors"] == {"external_ref": ["This partner already has a borrower with this reference."]}
    assert Borrower.objects.count() == 1


def test_oversize_body_is_413_before_it_is_read(api, settings):
    settings.API_MAX_BODY_BYTES = 1000
    body = _problem(
        api.post("/api/v1/borrowers/", {**BORROWER, "full_name": "x" * 2000}, format="json", **idem()), 413
    )
    assert body["max_bytes"] == 1000
    assert not Borrower.objects.exists()


def test_unknown_api_path_and_method_are_problems(api):
    _problem(api.get("/api/v1/nowhere/"), 404)
    _problem(api.delete("/api/v1/borrowers/"), 405)
    _problem(api.get("/api/v1/borrowers/not-an-id/"), 404)
    _problem(api.get(f"/api/v1/borrowers/{2**70}/"), 404)  # beyond bigint: not found, not a 500


def test_non_json_body_is_415(api):
    response = api.generic(
        "POST", "/api/v1/borrowers/", "external_ref=1", content_type="text/plain", **idem()
    )
    _problem(response, 415)


def test_throttled_per_key(partner, settings):
    from django.core.cache import cache
    from rest_framework.settings import api_settings
    from rest_framework.throttling import SimpleRateThrottle

    cache.clear()
    rates = {**api_settings.DEFAULT_THROTTLE_RATES, "partner_key": "3/min"}
    original = SimpleRateThrottle.THROTTLE_RATES
    SimpleRateThrottle.THROTTLE_RATES = rates
    try:
        first, second = key_client(partner, ["borrowers:read"]), key_client(partner, ["borrowers:read"])
        assert [first.get("/api/v1/borrowers/").status_code for _ in range(3)] == [200, 200, 200]
        response = first.get("/api/v1/borrowers/")
        _problem(response, 429)
        assert int(response["Retry-After"]) > 0
        assert second.get("/api/v1/borrowers/").status_code == 200  # another key has its own count
    finally:
        SimpleRateThrottle.THROTTLE_RATES = original
        cache.clear()


def test_cors_is_off(api):
    response = api.options(
        "/api/v1/borrowers/", HTTP_ORIGIN="https://evil.example", HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET"
    )
    assert "Access-Control-Allow-Origin" not in response
    assert "Access-Control-Allow-Origin" not in api.get(
        "/api/v1/borrowers/", HTTP_ORIGIN="https://evil.example"
    )


# --- idempotency (the header; concurrency is in test_idempotency.py) --------------------------------------


def test_idempotency_key_required_and_replayed(api):
    body = _problem(api.post("/api/v1/borrowers/", BORROWER, format="json"), 400)
    assert body["type"] == "/api/problems/idempotency-key-required"
    headers = idem()
    first = api.post("/api/v1/borrowers/", BORROWER, format="json", **headers)
    again = api.post("/api/v1/borrowers/", BORROWER, format="json", **headers)
    assert (again.status_code, again.json()) == (first.status_code, first.json()) == (201, first.json())
    assert again["Idempotent-Replayed"] == "true"
    other = _problem(
        api.post("/api/v1/borrowers/", {**BORROWER, "full_name": "李四"}, format="json", **headers), 422
    )
    assert other["type"] == "/api/problems/idempotency-key-reused"
    assert Borrower.objects.count() == 1


# --- schema and docs ------------------------------------------------------------------------------------


def test_schema_and_docs_are_served_without_a_cdn(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    assert "/api/v1/borrowers/" in schema.json()["paths"]
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    html = docs.content.decode()
    assert "swagger-ui" in html and "cdn" not in html.lower() and "https://" not in html
    static = [part.split('"')[0] for part in html.split('src="')[1:]]
    assert static and all(s.startswith("/static/") for s in static)
