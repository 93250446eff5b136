"""People, cases and clients for the back-office page tests.

Every role the back office knows, a case in a team (``team_case``: the collector is a member of its
team, the supervisor supervises it), and ``page(user)``: a test client signed in as ``user`` that asks
for English pages (the site's default is Simplified Chinese).
"""

from __future__ import annotations

import pytest
from django.test import Client

from debt_collections.models import Case
from loans.models import Partner
from tests.api.test_cases import join_team, late_case, phone
from tests.debt_collections.conftest import collector, make_user, supervisor, supervisor2  # noqa: F401 (fixtures)
from tests.factories import PartnerFactory


def page(user=None, language: str = "en") -> Client:
    """A client signed in as ``user`` (None: anonymous) that asks for pages in ``language``."""
    client = Client(HTTP_ACCEPT_LANGUAGE=language)
    if user is not None:
        client.force_login(user)
    return client


@pytest.fixture
def partner(db) -> Partner:
    return PartnerFactory(code="web", name="Web Lending")


@pytest.fixture
def other_collector(db):
    return make_user("col2", "collector")


@pytest.fixture
def senior(db):
    return make_user("senior", "senior_supervisor")


@pytest.fixture
def compliance_officer(db):
    return make_user("comp", "compliance_officer")


@pytest.fixture
def outsider(db):
    """Signed in, but in no back-office group."""
    return make_user("nobody")


@pytest.fixture
def team_case(partner, collector, supervisor) -> Case:  # noqa: F811 (the imported fixtures)
    """A case 10 days past due whose team has ``collector`` as a member and ``supervisor`` as its
    supervisor; the borrower has a primary mobile phone."""
    case = late_case(partner, 10)
    phone(case.loan.borrower)
    join_team(collector, case)
    case.team.supervisors.add(supervisor)
    return case
