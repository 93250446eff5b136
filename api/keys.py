"""Partner keys: made, shown once, stored as a SHA-256, scoped, revoked.

A key reads ``ck_<prefix>_<secret>``: the prefix (10 characters) finds the row, the SHA-256 of the
whole key proves it. Keys carry 256 bits of randomness, so an unsalted fast hash is the right tool
(a password hasher's slowness protects guessable secrets, which these are not) and keeps every
request's check at microseconds.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from api.models import SCOPES, PartnerKey
from compliance.audit import audit_record
from compliance.models import AuditEventType
from loans.exceptions import field_error
from loans.models import Partner

KEY_PREFIX = "ck_"
PARTNER_GROUP = "partner_system"


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _prefix_of(key: str) -> str | None:
    if not key.startswith(KEY_PREFIX):
        return None
    prefix, sep, _secret = key[len(KEY_PREFIX) :].partition("_")
    return prefix if sep and prefix else None


def key_find(key: str) -> PartnerKey | None:
    """The active key this string is, or None (unknown, revoked, or a wrong secret)."""
    prefix = _prefix_of(key)
    if prefix is None:
        return None
    found = PartnerKey.objects.select_related("partner", "service_user").filter(prefix=prefix).first()
    if found is None or not hmac.compare_digest(found.key_hash, key_hash(key)):
        return None
    if found.revoked_at is not None or not found.partner.is_active or not found.service_user.is_active:
        return None
    return found


def service_user_for(partner: Partner):
    """The user a partner's keys act as (the audit trail's actor), in the ``partner_system`` group."""
    user_model = get_user_model()
    user, created = user_model.objects.get_or_create(
        username=f"partner:{partner.code}"[:150], defaults={"is_active": True}
    )
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
        user.groups.add(Group.objects.get(name=PARTNER_GROUP))
    return user


def scopes_clean(scopes) -> list[str]:
    wanted = sorted({s.strip() for s in scopes if s and s.strip()})
    if not wanted:
        raise field_error("scopes", _("Give the key at least one scope."), code="required")
    unknown = [s for s in wanted if s not in SCOPES]
    if unknown:
        raise field_error(
            "scopes",
            _("Unknown scopes: %(unknown)s. Known: %(known)s.")
            % {"unknown": ", ".join(unknown), "known": ", ".join(SCOPES)},
        )
    return wanted


@transaction.atomic
def partner_key_create(
    *, partner: Partner, name: str, scopes, created_by: str = ""
) -> tuple[PartnerKey, str]:
    """A new key for ``partner``; returns the row and the key itself, which is never stored."""
    name = (name or "").strip()
    if not name:
        raise field_error("name", _("Name the key (which system uses it)."), code="required")
    if not partner.is_active:
        raise field_error("partner", _("Partner %(p)s is not active.") % {"p": partner.code})
    scopes = scopes_clean(scopes)
    prefix = secrets.token_hex(5)
    key = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    row = PartnerKey.objects.create(
        partner=partner,
        name=name[:100],
        prefix=prefix,
        key_hash=key_hash(key),
        scopes=scopes,
        service_user=service_user_for(partner),
        created_by=created_by[:150],
    )
    audit_record(
        event_type=AuditEventType.API_KEY,
        actor=None,
        subject=partner,
        details={"action": "created", "key": prefix, "name": row.name, "scopes": scopes, "by": created_by},
    )
    return row, key


@transaction.atomic
def partner_key_revoke(*, key: PartnerKey, revoked_by: str = "") -> PartnerKey:
    key = PartnerKey.objects.select_for_update().get(pk=key.pk)
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
        audit_record(
            event_type=AuditEventType.API_KEY,
            actor=None,
            subject=key.partner,
            details={"action": "revoked", "key": key.prefix, "name": key.name, "by": revoked_by},
        )
    return key
