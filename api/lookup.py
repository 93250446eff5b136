"""Records addressed by id or by the partner's own reference:
``/loans/123/`` or ``/loans/ref:L-2026-001/``."""

from __future__ import annotations

from django.http import Http404
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter

from api.problems import ApiProblem

REF_PREFIX = "ref:"
MAX_ID = 2**63 - 1

ID_OR_REF_PARAMETER = OpenApiParameter(
    "id",
    OpenApiTypes.STR,
    OpenApiParameter.PATH,
    description="The record's id, or `ref:` followed by the partner's external reference.",
)


def lookup_filter(value: str, ref_field: str = "external_ref") -> dict:
    """The queryset filter a path value names; 404 for anything that is neither an id nor a ref."""
    if value.startswith(REF_PREFIX) and len(value) > len(REF_PREFIX):
        return {ref_field: value[len(REF_PREFIX) :]}
    if value.isascii() and value.isdigit() and 0 < int(value) <= MAX_ID:
        return {"pk": int(value)}
    raise Http404


class IdOrRefLookupMixin:
    """For viewsets whose model has ``external_ref`` (unique per partner). A staff user giving a
    reference that two partners share gets 409 and is asked for the id."""

    lookup_field = "pk"
    lookup_url_kwarg = "id"
    lookup_value_regex = r"[^/]+"
    ref_field = "external_ref"

    def get_object(self):
        queryset = self.get_queryset()
        matches = list(queryset.filter(**lookup_filter(self.kwargs["id"], self.ref_field))[:2])
        if not matches:
            raise Http404
        if len(matches) > 1:
            raise ApiProblem(
                status_code=409,
                slug="ambiguous-reference",
                title=_("More than one partner uses this reference."),
                detail=_("Address the record by its id."),
            )
        self.check_object_permissions(self.request, matches[0])
        return matches[0]


def id_lookup(value: str) -> int:
    """A plain id path value (records with no external reference)."""
    found = lookup_filter(value, ref_field="__no_ref__")
    if "pk" not in found:
        raise Http404
    return found["pk"]
