"""Reads of the collections workflow: worklists and queue loads."""

from __future__ import annotations

from django.db.models import Count, Q, QuerySet

from debt_collections.models import Case, Team


def worklist(*, user, stage: str | None = None) -> QuerySet[Case]:
    """A collector's open cases, highest priority first (served by the partial index on
    ``(assignee, -priority)``)."""
    cases = Case.objects.filter(status=Case.Status.OPEN, assignee=user)
    if stage:
        cases = cases.filter(stage=stage)
    return cases.select_related("loan", "loan__borrower", "team").order_by("-priority", "id")


def team_queue(*, team: Team, unassigned_only: bool = False) -> QuerySet[Case]:
    cases = Case.objects.filter(status=Case.Status.OPEN, team=team)
    if unassigned_only:
        cases = cases.filter(assignee__isnull=True)
    return cases.select_related("loan", "assignee").order_by("-priority", "id")


def team_loads(*, team: Team) -> list[dict]:
    """Open cases per member of a team (all their open cases, whatever the team), fewest first:
    the figure assignment balances."""
    return list(
        team.memberships.filter(user__is_active=True)
        .values("user_id", "user__username", "is_active")
        .annotate(open_cases=Count("user__assigned_cases", filter=Q(user__assigned_cases__status="open")))
        .order_by("open_cases", "user_id")
    )
