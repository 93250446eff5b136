"""Throttling per partner key (and per staff user): ``API_THROTTLE_RATE`` requests, counted in the
shared cache so that every gunicorn worker sees the same count."""

from rest_framework.throttling import SimpleRateThrottle

from api.models import PartnerKey


class PartnerKeyThrottle(SimpleRateThrottle):
    scope = "partner_key"

    def get_cache_key(self, request, view):
        if isinstance(request.auth, PartnerKey):
            ident = f"key:{request.auth.pk}"
        elif request.user and request.user.is_authenticated:
            ident = f"user:{request.user.pk}"
        else:
            ident = self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}
