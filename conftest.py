import pytest
from django.db.backends.signals import connection_created
from django.dispatch import receiver


@pytest.fixture
def on_postgres(db):
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (set DATABASE_URL); SQLite has no such feature")
    return connection


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path_factory):
    """Files the tests write (recordings, letters, evidence packs) go to a temporary directory."""
    settings.MEDIA_ROOT = tmp_path_factory.mktemp("media")
    return settings.MEDIA_ROOT


@pytest.fixture(autouse=True)
def fast_password_hasher(settings):
    """Users made in tests hash their passwords with a fast hasher: PBKDF2's 1,000,000 rounds cost half
    a second a user. (Production keeps Django's default hashers.)"""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@receiver(connection_created, dispatch_uid="tests.allow_test_database_reset")
def allow_test_database_reset(sender, connection, **kwargs):
    """On PostgreSQL the audit table refuses TRUNCATE (compliance migration 0004) unless the session
    says ``compliance.audit_truncate = 'allow'``; TRUNCATE of every table is how Django's test runner
    resets the database after a transactional test, so the test sessions say so. UPDATE and DELETE
    stay refused."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET compliance.audit_truncate = 'allow'")
