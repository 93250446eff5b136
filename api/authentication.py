"""``Authorization: Bearer ck_...``: a partner key. The request's user is the partner's service user
(the audit trail's actor), ``request.auth`` the ``PartnerKey`` (its partner and scopes)."""

from __future__ import annotations

from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from api.keys import key_find
from api.models import PartnerKey

# last_used_at is written at most this often per key (not on every request).
LAST_USED_RESOLUTION_SECONDS = 60


class PartnerKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed(_("Send the key as: Authorization: Bearer <key>."))
        try:
            raw = header[1].decode()
        except UnicodeError:
            raise exceptions.AuthenticationFailed(_("The key is not valid.")) from None
        key = key_find(raw)
        if key is None:
            raise exceptions.AuthenticationFailed(_("The key is not valid, or it was revoked."))
        now = timezone.now()
        if (
            key.last_used_at is None
            or (now - key.last_used_at).total_seconds() > LAST_USED_RESOLUTION_SECONDS
        ):
            PartnerKey.objects.filter(pk=key.pk).update(last_used_at=now)
        return key.service_user, key

    def authenticate_header(self, request):
        return 'Bearer realm="api"'


class PartnerKeyScheme(OpenApiAuthenticationExtension):
    target_class = "api.authentication.PartnerKeyAuthentication"
    name = "partnerKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A partner key from `manage.py create_partner_key` (`ck_...`).",
        }
