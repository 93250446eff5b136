"""The one check every collections service makes of the person acting."""

from django.core.exceptions import PermissionDenied
from django.utils.translation import gettext as _


def require_perm(actor, perm: str) -> None:
    """``PermissionDenied`` unless ``actor`` is an active user holding ``perm``."""
    if actor is None or not actor.is_active or not actor.has_perm(perm):
        raise PermissionDenied(_("You are not allowed to do this."))
