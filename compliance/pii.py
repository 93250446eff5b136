"""Personal data in the collector UI: masked by default, revealed one value at a time, with a reason,
by someone allowed to, and audited.

PIPL art. 6 and 51 (minimum necessary; de-identify, restrict access) and JR/T 0171-2020 (ID numbers
and phone numbers are C2 data: masked on display): every unmasked view is an audit event
(``pii_reveal``) naming the field and the reason, never the value, written in the same transaction.

The masks are ``loans.masking``'s (the loan book's admin masks with them, and ``loans`` imports no
other app); they are re-exported here for the rest of the site.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils.translation import gettext as _

from compliance.audit import audit_record
from compliance.models import AuditEventType
from loans.exceptions import field_error
from loans.masking import mask_contact_value, mask_email, mask_national_id, mask_phone, mask_text
from loans.models import Borrower, ContactPoint

REVEAL_PERMISSION = "compliance.reveal_pii"
REASON_MAX_LENGTH = 500
NATIONAL_ID = "national_id"
CONTACT_POINT = "contact_point:"  # followed by the contact point's id


def can_reveal(user) -> bool:
    return bool(user is not None and user.is_active and user.has_perm(REVEAL_PERMISSION))


def _contact_point_id(field: str) -> int | None:
    if not field.startswith(CONTACT_POINT):
        return None
    number = field[len(CONTACT_POINT) :]
    return int(number) if number.isdigit() and number.isascii() else None


def pii_describe(*, borrower: Borrower, field: str) -> tuple[str, str]:
    """(what it is, its masked value) for the reveal page, e.g. ("national ID", "110***...1234").

    ``ValidationError`` on ``field`` when the borrower has no such value.
    """
    if field == NATIONAL_ID:
        value = Borrower.objects.filter(pk=borrower.pk).values_list("national_id", flat=True).first()
        if not value:
            raise field_error("field", _("There is no national ID on file."))
        return str(Borrower._meta.get_field("national_id").verbose_name), mask_national_id(value)
    point = _contact_point(borrower, field)
    what = f"{point.get_kind_display()} ({point.get_label_display()})"
    return what, mask_contact_value(point.kind, point.value)


def _contact_point(borrower: Borrower, field: str) -> ContactPoint:
    pk = _contact_point_id(field)
    point = ContactPoint.objects.filter(pk=pk, borrower_id=borrower.pk).first() if pk else None
    if point is None:
        raise field_error("field", _("The borrower has no such personal data: %(field)s.") % {"field": field})
    return point


@transaction.atomic
def pii_reveal(*, borrower: Borrower, field: str, actor, reason: str) -> str:
    """The clear value of one masked field: ``"national_id"`` or ``"contact_point:<id>"``.

    Needs ``compliance.reveal_pii`` (``PermissionDenied``) and a reason (``ValidationError`` on
    ``reason``); writes a ``pii_reveal`` audit event with the field and the reason, never the value.
    """
    if not can_reveal(actor):
        raise PermissionDenied(_("Revealing personal data needs the permission to reveal it."))
    reason = (reason or "").strip()
    if not reason:
        raise field_error("reason", _("Say why you need to see it."), code="required")
    if len(reason) > REASON_MAX_LENGTH:
        raise field_error(
            "reason", _("At most %(n)d characters.") % {"n": REASON_MAX_LENGTH}, code="max_length"
        )
    details = {"field": field, "reason": reason}
    if field == NATIONAL_ID:
        value = Borrower.objects.filter(pk=borrower.pk).values_list("national_id", flat=True).first()
        if not value:
            raise field_error("field", _("There is no national ID on file."))
    else:
        point = _contact_point(borrower, field)
        value = point.value
        details["kind"] = point.kind
    audit_record(event_type=AuditEventType.PII_REVEAL, actor=actor, subject=borrower, details=details)
    return value


__all__ = [
    "REVEAL_PERMISSION",
    "can_reveal",
    "mask_contact_value",
    "mask_email",
    "mask_national_id",
    "mask_phone",
    "mask_text",
    "pii_describe",
    "pii_reveal",
]
