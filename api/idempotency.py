"""``Idempotency-Key`` on the requests that create records.

The first request with a key inserts its record at the start of its transaction and stores its
response before committing. A retry with the same key and the same body gets that response again
(same status, same body, header ``Idempotent-Replayed: true``); with another body or path, 422. A
concurrent request with the key blocks on the unique index until the first commits, then replays it,
so twenty at once create one record. A request that fails rolls its record back: the key is free for
a corrected retry. Records are kept ``API_IDEMPOTENCY_HOURS`` (at least 24) and then purged.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from api.access import partner_key
from api.models import IdempotencyRecord
from api.problems import ApiProblem

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
# Printable ASCII (what an HTTP header carries), no space at either end, 1 to 255 characters.
KEY_PATTERN = r"^[\x21-\x7e]([\x20-\x7e]{0,253}[\x21-\x7e])?$"

IDEMPOTENCY_PARAMETER = OpenApiParameter(
    HEADER,
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    required=True,
    pattern=KEY_PATTERN,
    description=(
        "A unique value per logical request (a UUID). A retry with the same key and body returns the "
        "first response; the same key with another body is refused (422). Kept at least 24 hours."
    ),
)


def _owner(request) -> str:
    key = partner_key(request)
    return f"key:{key.pk}" if key else f"user:{request.user.pk}"


def _fingerprint(request) -> str:
    body = json.dumps(request.data, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False)
    return hashlib.sha256(f"{request.method} {request.path}\n{body}".encode()).hexdigest()


def _key(request) -> str:
    key = request.headers.get(HEADER) or ""
    if not key.strip():
        raise ApiProblem(
            status_code=400,
            slug="idempotency-key-required",
            title=_("An Idempotency-Key header is required."),
            detail=_("Send a unique Idempotency-Key (a UUID, say) with every request that creates records."),
        )
    if not re.fullmatch(KEY_PATTERN, key):
        raise ApiProblem(
            status_code=400,
            slug="idempotency-key-invalid",
            title=_("The Idempotency-Key is not valid."),
            detail=_("1 to %(n)d printable ASCII characters, no space at either end.")
            % {"n": MAX_KEY_LENGTH},
        )
    return key


def _replay(record: IdempotencyRecord, fingerprint: str) -> Response:
    if record.request_hash != fingerprint:
        raise ApiProblem(
            status_code=422,
            slug="idempotency-key-reused",
            title=_("This Idempotency-Key was used with another request."),
            detail=_(
                "Use a new key for a different request; retry with the same body to get the first response."
            ),
        )
    return Response(
        record.response_body, status=record.response_status, headers={"Idempotent-Replayed": "true"}
    )


def idempotent(method):
    """Wrap a view's create method: the key is required, the first response kept and replayed."""

    @functools.wraps(method)
    def wrapper(self, request, *args, **kwargs):
        key = _key(request)
        owner, fingerprint = _owner(request), _fingerprint(request)
        now = timezone.now()
        with transaction.atomic():
            record = IdempotencyRecord(
                owner=owner, key=key, method=request.method, path=request.path[:300],
                request_hash=fingerprint, created_at=now,
            )  # fmt: skip
            try:
                with transaction.atomic():
                    record.save(force_insert=True)
            except IntegrityError:
                # Another request with this key committed first (we waited on the index for it).
                first = IdempotencyRecord.objects.select_for_update().get(owner=owner, key=key)
                if first.created_at >= now - timedelta(hours=settings.API_IDEMPOTENCY_HOURS):
                    return _replay(first, fingerprint)
                first.delete()  # expired: the key is new again
                record.save(force_insert=True)
            response = method(self, request, *args, **kwargs)
            if response.status_code >= 400:
                transaction.set_rollback(True)
                return response
            record.response_status = response.status_code
            record.response_body = json.loads(JSONRenderer().render(response.data) or b"null")
            record.save(update_fields=["response_status", "response_body"])
        return response

    wrapper.idempotent = True
    return wrapper


def idempotency_purge(*, now=None) -> int:
    """Delete records older than ``API_IDEMPOTENCY_HOURS``; returns how many."""
    cutoff = (now or timezone.now()) - timedelta(hours=settings.API_IDEMPOTENCY_HOURS)
    deleted, _rows = IdempotencyRecord.objects.filter(created_at__lt=cutoff).delete()
    return deleted
