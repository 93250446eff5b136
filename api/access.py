"""Who may call what, and which records they see.

A partner key needs the endpoint's scope for the method (``read`` for GET, ``write`` otherwise, or the
action's own) and sees only its partner's records: another partner's id is simply not found (404).
Staff (session or token) need the endpoint's Django permission; partner-only writes (the loan book:
borrowers, loans, payments) refuse them, since the lending platform owns those records. A view says
what it needs with ``access = Access(...)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Q
from django.utils.translation import gettext as _
from rest_framework import permissions

from api.models import PartnerKey

WRITE = "write"
READ = "read"
# Staff who see every case: supervisors reassign across teams, compliance officers read everything.
ALL_CASES_PERMS = ("debt_collections.reassign_case", "compliance.view_auditevent")


@dataclass(frozen=True)
class Access:
    """``read``/``write``: partner scopes (None: partner keys may not); ``staff_read``/``staff_write``:
    Django permissions (None: staff may not); ``actions``: per-action overrides as ``(scope, perm)``."""

    read: str | None = None
    write: str | None = None
    staff_read: str | None = None
    staff_write: str | None = None
    actions: dict = field(default_factory=dict)


def partner_key(request) -> PartnerKey | None:
    return request.auth if isinstance(request.auth, PartnerKey) else None


def request_partner(request):
    key = partner_key(request)
    return key.partner if key else None


def _needs(view, request) -> tuple[str | None, str | None]:
    access: Access = view.access
    action = getattr(view, "action", None)
    if action in access.actions:
        return access.actions[action]
    if request.method in permissions.SAFE_METHODS:
        return access.read, access.staff_read
    return access.write, access.staff_write


class ScopedAccess(permissions.BasePermission):
    message = _("You are not allowed to do this.")

    def has_permission(self, request, view):
        if not (request.user and request.user.is_authenticated):
            return False
        if getattr(view, "action", "") is None:  # no handler for this method: the view answers 405
            return True
        scope, perm = _needs(view, request)
        key = partner_key(request)
        if key is not None:
            if scope is None:
                self.message = _("Partner keys may not use this endpoint.")
                return False
            if not key.has_scope(scope):
                self.message = _("This key lacks the scope %(scope)s.") % {"scope": scope}
                return False
            return True
        if perm is None:
            self.message = _("Only partner systems use this endpoint.")
            return False
        if not request.user.has_perm(perm):
            self.message = _("You are not allowed to do this.")
            return False
        return True


def sees_all_cases(user) -> bool:
    return user.is_superuser or any(user.has_perm(p) for p in ALL_CASES_PERMS)


def cases_visible(queryset, request, prefix: str = ""):
    """Cases (or rows under a case, through ``prefix``, e.g. ``"case__"``) the caller may see: a
    partner its own loans' cases; a collector those assigned to them or to a team they are in;
    supervisors and compliance officers every case."""
    key = partner_key(request)
    if key is not None:
        return queryset.filter(**{f"{prefix}loan__partner_id": key.partner_id})
    user = request.user
    if sees_all_cases(user):
        return queryset
    teams = user.team_memberships.values("team_id")
    return queryset.filter(Q(**{f"{prefix}assignee": user}) | Q(**{f"{prefix}team__in": teams}))


def partner_visible(queryset, request, partner_field: str = "partner"):
    """Loan-book rows of the caller's partner (staff: all)."""
    key = partner_key(request)
    if key is not None:
        return queryset.filter(**{f"{partner_field}_id": key.partner_id})
    return queryset
