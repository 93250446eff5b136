"""Property-based fuzzing of every operation in ``/api/schema/`` with schemathesis (bounded examples).

For each operation schemathesis generates requests from the schema (valid and invalid ones) and calls
the WSGI app in-process; every response must be no 5xx, have a status code, content type, headers and
body the schema documents. Run as a partner with every scope and as a supervisor, on a book that has a
loan, a payment and an open case, so that some generated ids exist. Business-rule refusals (422 for a
schema-valid body: a duplicate reference, an unknown time zone) are expected, so the "schema-valid data
must be accepted" check is not run.

The schemathesis pytest plugin does not run under pytest 9 (it reads a removed attribute), so each
operation's strategy is driven by Hypothesis directly.
"""

from __future__ import annotations

import os
from datetime import date

import pytest
import schemathesis
from hypothesis import HealthCheck, given, seed
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.api.conftest import key_client, staff_client
from tests.factories import BorrowerFactory, make_loan, pay

pytestmark = pytest.mark.django_db

EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "12"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture
def book(partner):
    from debt_collections.scan import scan_run

    borrower = BorrowerFactory(partner=partner, external_ref="B-FUZZ")
    loan = make_loan(borrower=borrower, external_ref="L-FUZZ", start_date=date(2025, 1, 1))
    pay(loan, "100.00", date(2025, 2, 1), ref="P-FUZZ")
    scan_run(as_of=date(2025, 6, 1))
    return loan


@pytest.fixture(autouse=True)
def keep_the_test_connection():
    """The in-process requests must not close the test's database connection (Django closes it at
    the end of every request when CONN_MAX_AGE is 0), or the next request fails on PostgreSQL."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def _fuzz(headers: dict) -> list[str]:
    from collections_site.wsgi import application

    schema = schemathesis.openapi.from_wsgi("/api/schema/", application)
    failures, operations = [], 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        strategy = st.one_of(
            operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
            operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
        )

        @seed(20261129)
        @hypothesis_settings(
            max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck)
        )
        @given(case=strategy)
        def run(case):
            case.call_and_validate(headers=headers, checks=CHECKS)

        try:
            run()
        except Exception as exc:  # noqa: BLE001 - every operation's failure is collected and reported
            failures.append(f"{operation.label}: {exc}")
    assert operations >= 20, f"only {operations} operations in the schema"
    return failures


def test_every_operation_as_a_partner(book, partner):
    client = key_client(partner)
    failures = _fuzz({"Authorization": f"Bearer {client.key}"})
    assert not failures, "\n\n".join(failures)


def test_every_operation_as_a_supervisor(book):
    from rest_framework.authtoken.models import Token

    supervisor = staff_client("supervisor")
    token = Token.objects.create(user=supervisor.user)
    failures = _fuzz({"Authorization": f"Token {token.key}"})
    assert not failures, "\n\n".join(failures)
