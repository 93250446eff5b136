"""Which cases a back-office user may see, and the checks every case page and action makes.

Collectors see the cases assigned to them and their teams' cases; supervisors the cases of the teams
they supervise (``Team.supervisors``) or belong to; compliance officers (and superusers) read every
case. Seeing is not acting: each action also needs its permission, which compliance officers do not
hold, and the services check it again.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.http import Http404
from django.utils.translation import gettext as _

from debt_collections.models import Case, Team, TeamMember

READ_ALL_PERM = "compliance.view_auditevent"


def reads_all_cases(user) -> bool:
    return user.is_superuser or user.has_perm(READ_ALL_PERM)


def visible_teams(user) -> QuerySet[Team]:
    """Teams whose cases the user sees: all for those who read everything, else those they belong to
    or supervise."""
    if reads_all_cases(user):
        return Team.objects.all()
    return Team.objects.filter(
        Q(pk__in=TeamMember.objects.filter(user=user).values("team_id")) | Q(supervisors=user)
    ).distinct()


def supervised_teams(user) -> QuerySet[Team]:
    """Teams whose workload the user manages: those they supervise (superusers: all)."""
    if user.is_superuser:
        return Team.objects.all()
    return Team.objects.filter(supervisors=user)


def visible_cases(user, queryset: QuerySet | None = None, prefix: str = "") -> QuerySet:
    """``queryset`` (default: every case) narrowed to the cases ``user`` may see; ``prefix`` reaches
    the case from a related row (``"case__"``)."""
    queryset = Case.objects.all() if queryset is None else queryset
    if not user.is_authenticated or not user.is_active:
        return queryset.none()
    if reads_all_cases(user):
        return queryset
    member_of = TeamMember.objects.filter(user=user).values("team_id")
    supervises = Team.supervisors.through.objects.filter(user=user).values("team_id")
    return queryset.filter(
        Q(**{f"{prefix}assignee": user})
        | Q(**{f"{prefix}team__in": member_of})
        | Q(**{f"{prefix}team__in": supervises})
    )


def case_for(user, pk, queryset: QuerySet | None = None) -> Case:
    """The case ``pk`` if ``user`` may see it; 404 otherwise (whether it exists is not told)."""
    try:
        return visible_cases(user, queryset).get(pk=pk)
    except (Case.DoesNotExist, ValueError, TypeError):
        raise Http404(_("No such case.")) from None


def require(user, *perms: str) -> None:
    """``PermissionDenied`` (403) unless ``user`` holds every one of ``perms``."""
    if not user.is_authenticated or not all(user.has_perm(perm) for perm in perms):
        raise PermissionDenied(_("You are not allowed to do this."))


def require_any(user, *perms: str) -> None:
    if not user.is_authenticated or not any(user.has_perm(perm) for perm in perms):
        raise PermissionDenied(_("You are not allowed to do this."))
