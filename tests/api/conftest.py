"""Partners, keys and clients for the API tests."""

from __future__ import annotations

import itertools
import uuid

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from rest_framework.test import APIClient

from api.keys import partner_key_create
from api.models import SCOPES
from tests.factories import PartnerFactory

ALL_SCOPES = tuple(SCOPES)
_users = itertools.count()


def key_client(partner, scopes=ALL_SCOPES) -> APIClient:
    """A client that sends a new key of ``partner`` with ``scopes`` (English messages)."""
    _row, key = partner_key_create(partner=partner, name="test", scopes=scopes)
    client = APIClient(HTTP_ACCEPT_LANGUAGE="en")
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    client.key = key
    return client


def staff_client(group: str | None, **extra) -> APIClient:
    user = get_user_model().objects.create_user(
        username=f"staff{next(_users)}-{group}", password="x", **extra
    )
    if group:
        user.groups.add(Group.objects.get(name=group))
    client = APIClient(HTTP_ACCEPT_LANGUAGE="en")
    client.force_authenticate(user)
    client.user = user
    return client


def idem() -> dict:
    return {"HTTP_IDEMPOTENCY_KEY": str(uuid.uuid4())}


@pytest.fixture
def partner(db):
    return PartnerFactory(code="acme", name="Acme Lending")


@pytest.fixture
def other_partner(db):
    return PartnerFactory(code="rival", name="Rival Credit")


@pytest.fixture
def client_for():
    """``client_for(partner, scopes=...)``: a key client."""
    return key_client


@pytest.fixture
def api(partner):
    """A client with every scope of ``partner``."""
    return key_client(partner)
