"""Personal data at rest: national ID numbers stored as Fernet tokens, with a keyed hash for lookup.

Keys come from settings (read from the environment, see ``collections_site/settings.py``):

* ``FIELD_ENCRYPTION_KEYS``: Fernet keys (32 url-safe base64-encoded bytes each). The first one
  encrypts; every one decrypts (``MultiFernet``), which is what makes rotation possible.
* ``FIELD_HASH_KEY``: the HMAC-SHA256 key of the lookup hash.

Rotation: put a new key first (``FIELD_ENCRYPTION_KEYS=new,old``) and deploy it everywhere; run
``manage.py rotate_encryption_keys``, which re-encrypts every token (historical rows too) with the new
key; ``manage.py rotate_encryption_keys --check`` then counts none left under the old key; only then
drop the old key. A token no key opens raises ``DecryptionError``: a wrong or dropped key fails
loudly, never as an empty or garbled value. Changing ``FIELD_HASH_KEY`` needs the same command, which
recomputes every hash (lookups miss until it has run).

``EncryptedCharField`` encrypts in ``get_prep_value`` and decrypts in ``from_db_value``: the model
attribute is the clear text, the column a token. A Fernet token carries its own timestamp and random
IV, so the same number encrypts differently every time; the field therefore refuses every lookup but
``isnull`` (it would compare ciphertexts and silently match nothing). Exact-match lookup goes through
``LookupHashField``, the HMAC of the normalised value (stripped, upper-case), kept beside it by
``pre_save``: ``Borrower.objects.filter(national_id_hash=lookup_hash(number))``.

An empty value stays empty (no token, empty hash): whether a borrower has a number on file is not
hidden, the number is.
"""

from __future__ import annotations

import functools
import hashlib
import hmac

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import FieldError, ImproperlyConfigured
from django.db import models

from loans.masking import national_number

# Every Fernet token starts so until 2106: the version byte 0x80, then a timestamp's zero high bytes.
TOKEN_PREFIX = "gAAAAA"  # noqa: S105 - not a secret
HASH_LENGTH = 64  # hex digits of SHA-256


class DecryptionError(Exception):
    """A stored token that none of ``FIELD_ENCRYPTION_KEYS`` opens: a wrong key, or one dropped too early."""


# --- keys ------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=8)
def _keyring(keys: tuple[str, ...]) -> tuple[MultiFernet, Fernet]:
    if not keys:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEYS is empty: national ID numbers cannot be stored")
    try:
        fernets = [Fernet(key) for key in keys]
    except (ValueError, TypeError):
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEYS holds a value that is not a Fernet key (32 url-safe base64-encoded bytes)"
        ) from None
    return MultiFernet(fernets), fernets[0]


def keyring() -> MultiFernet:
    """Every configured key: the first encrypts, all decrypt."""
    return _keyring(tuple(settings.FIELD_ENCRYPTION_KEYS))[0]


def primary_key() -> Fernet:
    """The key new tokens are made with."""
    return _keyring(tuple(settings.FIELD_ENCRYPTION_KEYS))[1]


# --- tokens ----------------------------------------------------------------------------------------


def encrypt(value: str) -> str:
    """A Fernet token of ``value`` under the first key."""
    return primary_key().encrypt(value.encode()).decode("ascii")


def decrypt(token: str) -> str:
    """The clear text of a token made with any of the configured keys; ``DecryptionError`` otherwise."""
    try:
        return keyring().decrypt(token.encode("ascii")).decode()
    except (InvalidToken, UnicodeError):
        raise DecryptionError(
            "A stored national ID cannot be decrypted with FIELD_ENCRYPTION_KEYS: the keys are wrong, or"
            " a key was dropped before manage.py rotate_encryption_keys re-encrypted its tokens."
        ) from None


def is_token(value: str | None) -> bool:
    """Whether a stored value looks like a Fernet token (a clear-text ID never does)."""
    return bool(value) and value.startswith(TOKEN_PREFIX) and len(value) >= 100


def open_token(token: str) -> tuple[str, bool]:
    """(clear text, whether the first key opened it): what ``rotate_encryption_keys`` needs to know."""
    try:
        return primary_key().decrypt(token.encode("ascii")).decode(), True
    except (InvalidToken, UnicodeError):
        return decrypt(token), False


# --- the lookup hash -------------------------------------------------------------------------------


def normalise_national_id(value: str | None) -> str:
    """What the hash is taken of: the number stripped and upper-cased (the check character ``x``)."""
    return (value or "").strip().upper()


@functools.lru_cache(maxsize=8)
def _hmac(key: str):
    if not key:
        raise ImproperlyConfigured("FIELD_HASH_KEY is empty: national ID numbers cannot be looked up")
    return hmac.new(key.encode(), digestmod=hashlib.sha256)


def lookup_hash(value: str | None) -> str:
    """HMAC-SHA256 (hex) of the normalised number under ``FIELD_HASH_KEY``; empty for an empty value.

    ``Borrower.objects.filter(national_id_hash=lookup_hash(number))`` finds a borrower by number.
    """
    normalised = normalise_national_id(value)
    if not normalised:
        return ""
    digest = _hmac(settings.FIELD_HASH_KEY).copy()
    digest.update(normalised.encode())
    return digest.hexdigest()


def normalise_contact_value(kind: str, value: str | None) -> str:
    """What a contact point's search hash is taken of: a phone's national number in digits (so
    ``+86 138-1234-5678``, ``008613812345678`` and ``13812345678`` match), an e-mail address lower-cased;
    nothing for a postal address (not searched)."""
    value = (value or "").strip()
    if kind == "phone":
        return national_number(value)
    if kind == "email":
        return value.lower()
    return ""


def contact_lookup_hash(kind: str, value: str | None) -> str:
    """HMAC-SHA256 (hex) of ``normalise_contact_value`` under ``FIELD_HASH_KEY``, prefixed by the kind so
    a phone never matches an e-mail; empty when there is nothing to search on."""
    normalised = normalise_contact_value(kind, value)
    if not normalised:
        return ""
    digest = _hmac(settings.FIELD_HASH_KEY).copy()
    digest.update(f"{kind}:{normalised}".encode())
    return digest.hexdigest()


# --- model fields ----------------------------------------------------------------------------------


class EncryptedCharField(models.CharField):
    """Clear text on the model, a Fernet token in a text column; ``max_length`` bounds the clear text.

    Lookups are refused (``FieldError``): tokens of one value differ, so a comparison would match
    nothing. Use the model's ``LookupHashField`` instead.
    """

    description = "Text stored encrypted (Fernet)"

    def get_internal_type(self):
        return "TextField"  # a token is about 2.6 times the clear text, plus 100 characters

    def from_db_value(self, value, expression, connection):
        if not value:
            return value
        return decrypt(value)

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if not value:
            return value
        return encrypt(value)

    def _refuse(self, name: str):
        hash_field = next(
            (
                f.name
                for f in self.model._meta.concrete_fields
                if isinstance(f, LookupHashField) and f.source == self.name
            ),
            None,
        )
        hint = f" Filter on {hash_field}=loans.crypto.lookup_hash(value) instead." if hash_field else ""
        raise FieldError(
            f"{self.model.__name__}.{self.name} is stored encrypted and cannot be compared"
            f" ('{name}' would compare ciphertexts).{hint}"
        )

    def get_lookup(self, lookup_name):
        if lookup_name == "isnull":
            return super().get_lookup(lookup_name)
        return self._refuse(lookup_name)

    def get_transform(self, lookup_name):
        return self._refuse(lookup_name)


class LookupHashField(models.CharField):
    """``lookup_hash`` of the field named ``source``, set on every save and ``bulk_create``.

    ``QuerySet.update`` and ``bulk_update`` do not call ``pre_save``: the model's queryset fills the
    hash in for them (see ``loans.models.BorrowerQuerySet``).
    """

    description = "Keyed hash of another field, for exact-match lookup"

    def __init__(self, *args, source: str, **kwargs):
        self.source = source
        kwargs.setdefault("max_length", HASH_LENGTH)
        kwargs.setdefault("editable", False)
        kwargs.setdefault("blank", True)
        kwargs.setdefault("default", "")
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        kwargs["source"] = self.source
        return name, path, args, kwargs

    def pre_save(self, model_instance, add):
        value = lookup_hash(getattr(model_instance, self.source))
        setattr(model_instance, self.attname, value)
        return value


class ContactLookupHashField(LookupHashField):
    """``contact_lookup_hash`` of a contact point's ``kind`` and ``value``, set on every save and
    ``bulk_create``: the worklist finds a borrower by phone or e-mail through it."""

    description = "Keyed hash of a contact point's value, for exact-match search"

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("source", "value")
        super().__init__(*args, **kwargs)

    def pre_save(self, model_instance, add):
        value = contact_lookup_hash(model_instance.kind, model_instance.value)
        setattr(model_instance, self.attname, value)
        return value


__all__ = [
    "ContactLookupHashField",
    "contact_lookup_hash",
    "DecryptionError",
    "EncryptedCharField",
    "LookupHashField",
    "decrypt",
    "encrypt",
    "is_token",
    "keyring",
    "lookup_hash",
    "normalise_national_id",
    "open_token",
    "primary_key",
]
