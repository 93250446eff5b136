"""People and teams for the collections tests."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from debt_collections.models import Team, TeamMember


def make_user(username: str, group: str | None = None, **extra):
    user = get_user_model().objects.create_user(username=username, password="x-unused-x", **extra)
    if group:
        user.groups.add(Group.objects.get(name=group))
    return user


@pytest.fixture
def supervisor(db):
    return make_user("sup", "supervisor")


@pytest.fixture
def supervisor2(db):
    return make_user("sup2", "supervisor")


@pytest.fixture
def collector(db):
    return make_user("col", "collector")


@pytest.fixture
def staffed_teams(db):
    """Two collectors in every stage's team."""
    users = [make_user(f"c{i}", "collector") for i in range(2)]
    for team in Team.objects.all():
        for user in users:
            TeamMember.objects.create(team=team, user=user)
    return users
