"""Masked display of personal data: national ID numbers, phone numbers, e-mail and postal addresses.

Pure functions, no Django. The loan book's admin masks with them; ``compliance.pii`` (which owns the
permission and the audit event that unmask a value) re-exports them, since ``loans`` imports no other app.

Shapes, following Chinese practice (JR/T 0171-2020 masks C2 data on display):

* national ID: first 3 and last 4 characters, the rest starred, same length:
  ``110101199001011234`` -> ``110***********1234``; shorter numbers keep less (see ``mask_national_id``);
* phone: the national number keeps its first 3 and last 4 digits (``13812345678`` -> ``138****5678``),
  an international prefix stays (``+8613812345678`` -> ``+86 138****5678``);
* e-mail: the first and last character of the local part, the domain (``zhangsan@example.com`` ->
  ``z***n@example.com``);
* postal address: the first third (at most 6 characters), then ``****``.

A national ID keeps its separators where they are; a phone number is shown as its digits. Short or odd
values show less: never more than the first 3 and last 4 characters, fewer below 11.
"""

from __future__ import annotations

import re

STAR = "*"

# ITU-T E.164 country codes by their first digits: 1 and 7 are one digit long; these are two; the rest three.
_TWO_DIGIT_CODES = re.compile(r"2[07]|3[0-469]|4[0-13-9]|5[1-8]|6[0-6]|8[1246]|9[0-58]")


def _shown(n: int) -> tuple[int, int]:
    """Characters kept at the start and at the end of ``n`` significant ones."""
    if n >= 11:
        return 3, 4
    if n >= 7:
        return 2, 2
    if n >= 3:
        return 0, 1
    return 0, 0


def _mask_significant(value: str, significant, head: int, tail: int) -> str:
    """Star every significant character of ``value`` except the first ``head`` and the last ``tail``."""
    positions = [i for i, c in enumerate(value) if significant(c)]
    keep = set(positions[:head]) | set(positions[len(positions) - tail :] if tail else ())
    return "".join(c if i in keep or not significant(c) else STAR for i, c in enumerate(value))


def mask_national_id(value: str | None) -> str:
    """``110101199001011234`` -> ``110***********1234``: same length, first 3 and last 4 shown.

    Letters and digits count; separators stay. Under 11 of them: first 2 and last 2 (7 to 10),
    the last one (3 to 6), nothing (1 or 2).
    """
    value = (value or "").strip()
    if not value:
        return ""
    significant = str.isalnum
    head, tail = _shown(sum(map(significant, value)))
    return _mask_significant(value, significant, head, tail)


def _split_country_code(digits: str, international: bool) -> tuple[str, str]:
    """(country code, national number) of a number written with ``+`` or ``00`` in front."""
    if not international:
        if len(digits) == 13 and digits.startswith("861"):  # 86 and a mainland mobile, without the +
            return "86", digits[2:]
        return "", digits
    if digits[:1] in ("1", "7"):
        size = 1
    elif _TWO_DIGIT_CODES.match(digits[:2]):
        size = 2
    else:
        size = 3
    return digits[:size], digits[size:]


def _phone_parts(value: str) -> tuple[str, str]:
    """(country code, national number) in digits of a written phone number."""
    digits = "".join(c for c in value if c.isdigit())
    international = value.startswith("+") or (value.startswith("00") and len(digits) > 11)
    if value.startswith("00") and international:
        digits = digits[2:]
    return _split_country_code(digits, international)


def national_number(value: str | None) -> str:
    """The national number of a phone number in digits, without its country code: what a search by
    phone compares (``+86 138 1234 5678`` -> ``13812345678``)."""
    value = (value or "").strip()
    if any(c.isalpha() for c in value):
        return ""
    return _phone_parts(value)[1]


def mask_phone(value: str | None) -> str:
    """``13812345678`` -> ``138****5678``; ``+86 138 1234 5678`` -> ``+86 138****5678``.

    The national number keeps its first 3 and last 4 digits from 11 digits on, its first 2 and last 2
    from 7, its last digit from 3. A value with letters in it is not a number: it is starred whole.
    """
    value = (value or "").strip()
    if not value:
        return ""
    if any(c.isalpha() for c in value):
        return STAR * min(len(value), 8)
    code, national = _phone_parts(value)
    head, tail = _shown(len(national))
    masked = _mask_significant(national, str.isdigit, head, tail)
    return f"+{code} {masked}" if code else masked


def mask_email(value: str | None) -> str:
    """``zhangsan@example.com`` -> ``z***n@example.com``; the domain stays (it says which mailbox)."""
    value = (value or "").strip()
    if not value:
        return ""
    local, at, domain = value.rpartition("@")
    if not at or not local:
        return mask_text(value)
    shown = local[0] + STAR * 3 + local[-1] if len(local) > 2 else STAR * 3
    return f"{shown}@{domain}"


def mask_text(value: str | None) -> str:
    """Any other personal text (a postal address): the first third, at most 6 characters, then ``****``."""
    value = (value or "").strip()
    if not value:
        return ""
    return value[: min(6, len(value) // 3)] + STAR * 4


def mask_contact_value(kind: str, value: str | None) -> str:
    """A contact point's value masked by its kind (``phone``, ``email``, ``address``)."""
    if kind == "phone":
        return mask_phone(value)
    if kind == "email":
        return mask_email(value)
    return mask_text(value)


__all__ = ["mask_contact_value", "mask_email", "mask_national_id", "mask_phone", "mask_text"]
