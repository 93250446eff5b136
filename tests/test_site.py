"""The site as an operator meets it: probes, production settings, the compose file."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from django.test import override_settings

ROOT = Path(__file__).resolve().parent.parent
REDIS_URL = os.environ.get("TEST_REDIS_URL", "")


@pytest.mark.django_db
def test_healthz_answers_without_touching_anything(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_checks_the_database(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"]["database"] == "ok"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.django_db
def test_readyz_is_unavailable_when_the_broker_is_down(client):
    with override_settings(CELERY_BROKER_URL=f"redis://127.0.0.1:{_closed_port()}/0"):
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["broker"] != "ok"


@pytest.mark.django_db
@pytest.mark.skipif(not REDIS_URL, reason="set TEST_REDIS_URL to a running Redis (CI does)")
def test_readyz_reaches_a_real_redis_broker(client):
    with override_settings(CELERY_BROKER_URL=REDIS_URL):
        response = client.get("/readyz")
    assert response.status_code == 200, response.json()
    assert response.json()["checks"]["broker"] == "ok"


def _django_check(**env):
    clean = {
        k: v for k, v in os.environ.items() if k not in {"DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "DJANGO_ENV"}
    }
    clean.update(env)
    return subprocess.run(  # noqa: S603 - a fixed command line
        [sys.executable, "-c", "import django; django.setup(); print('started')"],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )


GOOD_KEY = "k" * 50


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"DJANGO_ENV": "production", "DEBUG": "true", "SECRET_KEY": GOOD_KEY, "ALLOWED_HOSTS": "x"},
            "DEBUG",
        ),
        ({"DJANGO_ENV": "production", "ALLOWED_HOSTS": "x"}, "SECRET_KEY"),
        ({"DJANGO_ENV": "production", "SECRET_KEY": GOOD_KEY}, "ALLOWED_HOSTS"),
    ],
)
def test_production_refuses_unsafe_settings(env, message):
    result = _django_check(**env)
    assert result.returncode != 0
    assert message in result.stderr


def test_production_starts_with_safe_settings():
    result = _django_check(
        DJANGO_ENV="production",
        SECRET_KEY=GOOD_KEY,
        ALLOWED_HOSTS="collections.example",
        FIELD_ENCRYPTION_KEYS="a2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2s=",  # base64 of 32 x "k"
        FIELD_HASH_KEY="h" * 40,
    )
    assert result.returncode == 0, result.stderr
    assert "started" in result.stdout


def test_development_runs_tasks_in_process_without_a_broker():
    result = subprocess.run(  # noqa: S603
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from django.conf import settings as s; "
            "print(s.CELERY_TASK_ALWAYS_EAGER, s.TIME_ZONE, s.LANGUAGE_CODE)",
        ],
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if not k.startswith(("CELERY_", "TIME_ZONE", "LANG"))},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout.split() == ["True", "Asia/Shanghai", "zh-hans"], result.stderr


class TestComposeFile:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]

    def test_has_the_production_services(self):
        assert {"postgres", "redis", "web", "worker", "beat"} <= set(self.services)

    def test_app_services_share_one_definition(self):
        images = {self.services[name]["image"] for name in ("web", "worker", "beat", "migrate")}
        assert images == {"loan-collections:latest"}
        for name in ("web", "worker", "beat"):
            env = self.services[name]["environment"]
            assert env["DJANGO_ENV"] == "production"
            assert env["DATABASE_URL"].startswith("postgres://") and env["CELERY_BROKER_URL"].startswith(
                "redis://"
            )

    def test_commands_point_at_code_that_exists(self):
        web = " ".join(self.services["web"]["command"])
        assert "gunicorn collections_site.wsgi:application" in web
        assert self.services["worker"]["command"][:4] == ["celery", "-A", "collections_site", "worker"]
        assert "django_celery_beat.schedulers:DatabaseScheduler" in self.services["beat"]["command"]
        from collections_site import celery_app, wsgi

        assert callable(wsgi.application) and celery_app.main == "collections_site"

    def test_health_checks_and_a_named_database_volume(self):
        for name in ("postgres", "redis", "web"):
            assert self.services[name]["healthcheck"]["test"], name
        assert "/readyz" in " ".join(self.services["web"]["healthcheck"]["test"])
        volume = self.services["postgres"]["volumes"][0].split(":")[0]
        assert volume in self.compose["volumes"]

    def test_web_waits_for_migrations_which_wait_for_the_database(self):
        assert self.services["web"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert self.services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
