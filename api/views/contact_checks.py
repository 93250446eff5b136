"""``POST /api/v1/contact-checks/``: may this contact happen? A dialer asks before it dials.

The answer is ``compliance.contact.check_contact``'s decision: allowed or not, every reason code
with its citation, and when contact is next allowed (null when only a person can lift the bar). It is
200 whether allowed or not: a question, not an action; nothing is written. A supervisor's override
is not consulted (it applies when the contact is logged). Partner keys need ``cases:read``; staff
``compliance.view_contactrule``. Another partner's borrower is 404.
"""

from __future__ import annotations

from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from api.access import Access, partner_visible
from api.problems import ApiProblem
from api.serializers import StrictSerializer
from api.views.base import ApiViewSet
from api.views.cases import AwareDateTimeField, DecisionOut, IdField
from compliance.contact import check_contact
from compliance.models import Channel, Direction, Purpose
from loans.exceptions import field_error
from loans.models import Borrower, ContactPoint, Loan


class ContactCheckIn(StrictSerializer):
    borrower = IdField(required=False, help_text="The borrower's id; or `borrower_ref`.")
    borrower_ref = serializers.CharField(max_length=100, required=False, help_text="The partner's reference.")
    channel = serializers.ChoiceField(choices=Channel.choices)
    contact_point = IdField(
        required=False, allow_null=True, default=None,
        help_text="The phone number or address to use (required for call, SMS and e-mail).",
    )  # fmt: skip
    at = AwareDateTimeField(required=False, allow_null=True, default=None, help_text="Default: now.")
    purpose = serializers.ChoiceField(choices=Purpose.choices, default=Purpose.COLLECTION)
    direction = serializers.ChoiceField(choices=Direction.choices, default=Direction.OUTBOUND)
    loan = IdField(
        required=False, allow_null=True, default=None, help_text="The loan it is about; or `loan_ref`."
    )
    loan_ref = serializers.CharField(max_length=100, required=False)

    def validate(self, attrs):
        if ("borrower" in attrs) == ("borrower_ref" in attrs):
            raise serializers.ValidationError(_("Give either borrower or borrower_ref."))
        if attrs.get("loan") is not None and "loan_ref" in attrs:
            raise serializers.ValidationError(_("Give either loan or loan_ref, not both."))
        return attrs


class ContactCheckOut(DecisionOut):
    pass


def _one(queryset, lookup: dict):
    """The one record a body names among those the caller sees: 404 if none, 409 if a reference
    that two partners share (staff) names more than one."""
    found = list(queryset.filter(**lookup)[:2])
    if not found:
        raise Http404
    if len(found) > 1:
        raise ApiProblem(
            status_code=409,
            slug="ambiguous-reference",
            title=_("More than one partner uses this reference."),
            detail=_("Address the record by its id."),
        )
    return found[0]


CHECK_EXAMPLE = {
    "borrower_ref": "B-2026-000123",
    "channel": "call",
    "contact_point": 812,
    "at": "2026-03-02T22:30:00+08:00",
}
DENIED_EXAMPLE = {
    "allowed": False,
    "reasons": ["quiet_hours"],
    "citations": {"quiet_hours": "GB/T 45251-2025; NIFA 2024: no collection calls 22:00-08:00"},
    "next_allowed_at": "2026-03-03T08:00:00+08:00",
    "profile": "cn",
    "local_time": "2026-03-02T22:30:00+08:00",
}


class ContactCheckViewSet(ApiViewSet):
    # A question, so a POST that needs only the read scope; a GET is answered 405 (after the same check).
    access = Access(
        read="cases:read",
        staff_read="compliance.view_contactrule",
        actions={"create": ("cases:read", "compliance.view_contactrule")},
    )
    pagination_class = None

    @extend_schema(
        summary="May this contact happen?",
        description=(
            "The contact rules' decision for a borrower, channel, contact point and moment: 200 whether "
            "allowed or not, with the reason codes, their citations and the next allowed time (null when "
            "only a person can lift the bar). Nothing is written."
        ),
        request=ContactCheckIn,
        responses={200: ContactCheckOut},
        examples=[
            OpenApiExample("A late call", value=CHECK_EXAMPLE, request_only=True),
            OpenApiExample("Refused: quiet hours", value=DENIED_EXAMPLE, response_only=True),
        ],
    )
    def create(self, request):
        data = ContactCheckIn(data=request.data)
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        borrowers = partner_visible(Borrower.objects.all(), request)
        if "borrower" in fields:
            borrower = _one(borrowers, {"pk": fields["borrower"]})
        else:
            borrower = _one(borrowers, {"external_ref": fields["borrower_ref"]})
        point = None
        if fields["contact_point"] is not None:
            point = ContactPoint.objects.filter(pk=fields["contact_point"], borrower=borrower).first()
            if point is None:
                raise field_error("contact_point", _("The borrower has no such contact point."))
        loan = None
        loans = Loan.objects.filter(borrower=borrower)
        if fields["loan"] is not None or "loan_ref" in fields:
            lookup = (
                {"pk": fields["loan"]} if fields["loan"] is not None else {"external_ref": fields["loan_ref"]}
            )
            loan = loans.filter(**lookup).first()
            if loan is None:
                raise field_error("loan", _("The borrower has no such loan."))
        decision = check_contact(
            borrower=borrower,
            channel=fields["channel"],
            at=fields["at"] or timezone.now(),
            contact_point=point,
            purpose=fields["purpose"],
            direction=fields["direction"],
            loan=loan,
        )
        return Response(ContactCheckOut(decision.as_dict()).data)


def register(router) -> None:
    router.register("contact-checks", ContactCheckViewSet, basename="contact-check")
