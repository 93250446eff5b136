"""What every API viewset shares: scoped access, problem+json errors, cursor pages."""

from __future__ import annotations

from rest_framework import viewsets

from api.access import ScopedAccess


class ApiViewSet(viewsets.GenericViewSet):
    """Set ``access = Access(...)``; reads through ``get_queryset``, writes through services."""

    permission_classes = [ScopedAccess]
