"""No English left on a Chinese page: every main page of the back office, rendered in Simplified
Chinese, shows none of the catalogue's English messages of two or more words as a piece of text of its
own (an element's text, an attribute a person reads). Data stays as stored: a rule's citation written in
English contains such words inside a longer text, which is not a message of the interface."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest

from tests.web.conftest import page

pytestmark = pytest.mark.django_db

PO = Path(__file__).resolve().parents[2] / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"


def english_messages() -> set[str]:
    """The catalogue's msgids of at least two words, placeholders and markup left out."""
    text = PO.read_text(encoding="utf-8")
    found = set()
    for match in re.finditer(r'^msgid "(.+)"$', text, flags=re.M):
        message = re.sub(r"%\(\w+\)[sd]|<[^>]+>", " ", match.group(1)).strip()
        if len(re.findall(r"[A-Za-z]{2,}", message)) >= 2 and len(message) >= 8:
            found.add(message)
    return found


def text_pieces(response) -> set[str]:
    """Each run of text between tags, and each title/placeholder/aria-label, squeezed and unescaped;
    a piece like "Sign out · Preferences" is also split on the separators templates put between
    messages."""
    content = response.content.decode()
    content = re.sub(r"<(script|style)\b.*?</\1>", " ", content, flags=re.S)
    pieces = re.findall(r'(?:title|placeholder|aria-label)="([^"]*)"', content)
    pieces += re.split(r"<[^>]+>", content)
    found = set()
    for piece in pieces:
        piece = re.sub(r"\s+", " ", html.unescape(piece)).strip()
        for part in [piece, *re.split(r"\s*[·:：|]\s*", piece)]:
            if part:
                found.add(part.rstrip("."))
    return found


def english_on(response, messages) -> list[str]:
    assert response.status_code == 200, response.status_code
    pieces = text_pieces(response)
    return sorted(message for message in messages if message.rstrip(".") in pieces)


def test_the_collector_s_pages_are_all_chinese(team_case, collector):
    team_case.assignee = collector
    team_case.save(update_fields=["assignee"])
    messages = english_messages()
    client = page(collector, language="zh-hans")
    for url in ("/work/", "/work/?tab=team", f"/work/cases/{team_case.pk}/", "/accounts/preferences/"):
        assert english_on(client.get(url), messages) == [], url
    for action in ("contact", "promise", "notice", "restructuring", "referral"):
        url = f"/work/cases/{team_case.pk}/actions/{action}/"
        assert english_on(client.get(url), messages) == [], url


def test_the_supervisor_s_pages_are_all_chinese(team_case, supervisor):
    messages = english_messages()
    client = page(supervisor, language="zh-hans")
    for url in ("/work/approvals/", "/work/workload/", "/work/overrides/", "/work/dashboards/"):
        assert english_on(client.get(url), messages) == [], url


def test_the_compliance_pages_are_all_chinese(team_case, compliance_officer):
    messages = english_messages()
    client = page(compliance_officer, language="zh-hans")
    for url in (
        "/compliance/", "/compliance/rules/", "/compliance/denied-contacts/", "/compliance/overrides/",
        "/compliance/overrides/requests/", "/compliance/flags/", "/compliance/pii-reveals/",
        "/compliance/audit/", "/compliance/export/",
    ):  # fmt: skip
        assert english_on(client.get(url), messages) == [], url


def test_the_sign_in_page_is_chinese(db):
    assert english_on(page(language="zh-hans").get("/accounts/login/"), english_messages()) == []


def test_the_check_finds_english_when_it_is_there(collector):
    """The check can fail: the same page asked for in English shows the messages."""
    found = english_on(page(collector, language="en").get("/accounts/preferences/"), english_messages())
    assert found, "an English page must show some of the catalogue's English messages"
