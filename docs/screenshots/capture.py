"""Screenshots of the back office on the demo data, for the README.

    make demo                                   # once: the demo book (SQLite)
    .venv/bin/python docs/screenshots/capture.py

Starts the development server on a free port, signs each demo user in by creating a session for them
(no password is read or changed), opens the main pages in Debian's headless Chromium through Playwright
and writes PNG files beside this script.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "collections_site.settings")
# The sessions are made with the ORM while Playwright's event loop runs in this thread.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model  # noqa: E402
from django.contrib.sessions.backends.db import SessionStore  # noqa: E402

from debt_collections.models import Case, Restructuring  # noqa: E402

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-sync",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def session_for(username: str) -> str:
    user = get_user_model().objects.get(username=username)
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    return session.session_key


def shots() -> list[tuple[str, str, str, str]]:
    """(file name, user, path, language)."""
    collector = get_user_model().objects.get(username="collector")
    top = Case.objects.filter(status="open", assignee=collector).order_by("-priority", "id").first()
    pending = Restructuring.objects.filter(status="proposed").first()
    found = [
        ("worklist", "collector", "/work/", "en"),
        ("worklist-zh", "collector", "/work/", "zh-hans"),
        ("approvals", "supervisor", "/work/approvals/", "en"),
        ("workload", "supervisor", "/work/workload/", "en"),
        ("dashboards", "supervisor", "/work/dashboards/", "en"),
        ("dashboards-zh", "supervisor", "/work/dashboards/", "zh-hans"),
        ("compliance", "compliance", "/compliance/", "en"),
        ("audit-log", "compliance", "/compliance/audit/", "en"),
    ]
    if top is not None:
        found.insert(1, ("case", "collector", f"/work/cases/{top.pk}/", "en"))
        found.insert(2, ("case-zh", "collector", f"/work/cases/{top.pk}/", "zh-hans"))
    if pending is not None:
        found.append(
            ("approval-restructuring", "supervisor", f"/work/approvals/restructurings/{pending.pk}/", "en")
        )
    return found


def main() -> None:
    from playwright.sync_api import sync_playwright

    port = free_port()
    server = subprocess.Popen(  # noqa: S603 - our own manage.py
        [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"{base}/healthz", timeout=1)  # noqa: S310 - loopback
                break
            except OSError:
                time.sleep(0.2)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
            for name, username, path, language in shots():
                context = browser.new_context(viewport={"width": 1440, "height": 900}, locale="en-US")
                context.add_cookies(
                    [
                        {"name": settings.SESSION_COOKIE_NAME, "value": session_for(username), "url": base},
                        {"name": settings.LANGUAGE_COOKIE_NAME, "value": language, "url": base},
                    ]
                )
                page = context.new_page()
                page.goto(base + path)
                page.wait_for_load_state("networkidle")
                page.screenshot(path=str(OUT / f"{name}.png"))
                print(f"{name}.png  {username}  {path}  {language}")
                context.close()
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
