"""Sign-in with lockout, the start page per role, the language switch and the user's time zone."""

from __future__ import annotations

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.core.management import call_command

from debt_collections.models import StaffPreference
from tests.web.conftest import page

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"


def sign_in(client, username, password):
    return client.post(LOGIN, {"username": username, "password": password})


def test_the_sign_in_page_is_chinese_by_default_and_english_when_asked(client):
    assert "登录" in client.get(LOGIN).content.decode()
    assert "Sign in" in page().get(LOGIN).content.decode()


def test_a_collector_signs_in_and_lands_on_the_worklist(collector):
    client = page()
    response = sign_in(client, "col", "x-unused-x")
    assert response.status_code == 302 and response["Location"] == "/"
    assert client.get("/")["Location"] == "/work/"


def test_each_role_starts_on_its_own_page(supervisor, compliance_officer, outsider):
    assert page(supervisor).get("/")["Location"] == "/work/approvals/"
    assert page(compliance_officer).get("/")["Location"] == "/compliance/"
    response = page(outsider).get("/")
    assert response.status_code == 403 and b"no back-office role" in response.content


def test_a_wrong_password_is_refused_with_a_message(collector):
    response = sign_in(page(), "col", "wrong")
    assert response.status_code == 200
    assert b"did not match" in response.content


def test_five_failures_lock_the_account_even_against_the_right_password(collector, settings):
    client = page()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        sign_in(client, "col", "wrong")
    response = sign_in(client, "col", "x-unused-x")
    assert response.status_code == 429
    assert b"Too many failed sign-in attempts" in response.content
    assert "_auth_user_id" not in client.session
    # An administrator unlocks the user; the right password then works.
    call_command("axes_reset_username", "col", verbosity=0)
    assert not AccessAttempt.objects.filter(username="col").exists()
    assert sign_in(client, "col", "x-unused-x").status_code == 302


def test_the_lockout_counts_one_user_name_from_one_address(collector, other_collector, settings):
    client = page()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        sign_in(client, "col", "wrong")
    assert sign_in(client, "col2", "x-unused-x").status_code == 302


def test_signing_out_is_a_post(collector):
    client = page(collector)
    assert client.get("/accounts/logout/").status_code == 405
    assert client.post("/accounts/logout/").status_code == 302
    assert client.get("/accounts/preferences/")["Location"].startswith(LOGIN)


def test_the_language_switch_sets_the_cookie_and_remembers_the_choice(collector):
    client = page(collector)
    response = client.post("/language/", {"language": "zh-hans", "next": "/accounts/preferences/"})
    assert response.status_code == 302 and response["Location"] == "/accounts/preferences/"
    assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == "zh-hans"
    assert StaffPreference.objects.get(user=collector).language == "zh-hans"
    assert "首选项" in client.get("/accounts/preferences/").content.decode()


def test_the_saved_language_follows_the_user_to_a_new_browser(collector):
    StaffPreference.objects.create(user=collector, language="zh-hans")
    assert "首选项" in page(collector, language="en").get("/accounts/preferences/").content.decode()


def test_the_language_switch_refuses_an_unknown_language_and_a_foreign_next(collector):
    client = page(collector)
    response = client.post("/language/", {"language": "xx", "next": "/accounts/preferences/"})
    assert settings.LANGUAGE_COOKIE_NAME not in response.cookies
    assert not StaffPreference.objects.exists()
    response = client.post("/language/", {"language": "en", "next": "https://evil.example/"})
    assert response["Location"] == "/"


def test_times_are_shown_in_the_user_s_time_zone(collector):
    client = page(collector)
    assert "Asia/Shanghai" in client.get("/accounts/preferences/").content.decode()
    response = client.post("/accounts/preferences/", {"time_zone": "Europe/London", "language": ""})
    assert response.status_code == 302
    assert StaffPreference.objects.get(user=collector).time_zone == "Europe/London"
    assert "Europe/London" in client.get("/accounts/preferences/").content.decode()


def test_an_unknown_time_zone_is_a_form_error_and_saves_nothing(collector):
    response = page(collector).post("/accounts/preferences/", {"time_zone": "Mars/Olympus", "language": ""})
    assert response.status_code == 200
    assert b"Select a valid choice" in response.content
    assert not StaffPreference.objects.exists()


def test_the_navigation_shows_only_what_the_role_may_open(collector, compliance_officer):
    worklist_nav = page(collector).get("/accounts/preferences/").content.decode()
    assert 'href="/work/"' in worklist_nav and 'href="/compliance/"' not in worklist_nav
    assert 'href="/work/approvals/"' not in worklist_nav
    compliance_nav = page(compliance_officer).get("/accounts/preferences/").content.decode()
    assert 'href="/compliance/"' in compliance_nav and 'href="/work/workload/"' not in compliance_nav
