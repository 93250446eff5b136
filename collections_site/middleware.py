"""The signed-in user's own time zone and language for the back office."""

from __future__ import annotations

import zoneinfo

from django.utils import timezone, translation


def _zone(name: str):
    try:
        return zoneinfo.ZoneInfo(name) if name else None
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None


class StaffPreferenceMiddleware:
    """Activates the user's time zone (``StaffPreference.time_zone``; else ``TIME_ZONE``) so every time on
    a page is shown in it, and their saved language when the request names none of its own (the
    language switch sets the cookie as well as the preference). The preference is read once per session
    and kept there."""

    SESSION_KEY = "staff_preference"

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and not request.path.startswith("/api/"):
            preference = request.session.get(self.SESSION_KEY)
            if preference is None:
                from debt_collections.models import StaffPreference

                row = StaffPreference.objects.filter(user=user).values("time_zone", "language").first()
                preference = row or {"time_zone": "", "language": ""}
                request.session[self.SESSION_KEY] = preference
            zone = _zone(preference["time_zone"])
            if zone is not None:
                timezone.activate(zone)
            from django.conf import settings

            if preference["language"] and settings.LANGUAGE_COOKIE_NAME not in request.COOKIES:
                translation.activate(preference["language"])
                request.LANGUAGE_CODE = translation.get_language()
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
