"""Errors as ``application/problem+json`` (RFC 9457), from every layer the API has.

One mapping: DRF's own exceptions, Django's ``ValidationError`` (what every service raises, a dict
naming the fields), ``ContactDenied`` (the contact rules' reason codes), ``PermissionDenied`` and
``Http404``. Input that does not parse or fit the schema is 400; a well-formed request that a business
rule refuses is 422; a body over ``API_MAX_BODY_BYTES`` is 413 before it is read.

Every problem carries ``type`` (a URI under ``/api/problems/``), ``title``, ``status``, ``detail``;
field errors in ``errors`` (``{"field": ["message", ...]}``, nested fields dotted:
``schedule.0.principal``), the contact rules' ``reasons`` with ``citations`` and ``next_allowed_at``.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, JsonResponse
from django.utils.translation import gettext as _
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import set_rollback

from compliance.contact import ContactDenied

logger = logging.getLogger(__name__)

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_BASE = "/api/problems/"


class ApiProblem(exceptions.APIException):
    """A problem the API raises itself, with its own type slug and any extra members."""

    def __init__(self, *, status_code: int, slug: str, title: str, detail: str = "", **extra):
        self.status_code = status_code
        self.slug = slug
        self.title = title
        self.extra = extra
        super().__init__(detail or title)


def problem(status_code: int, slug: str, title: str, detail: str = "", **extra) -> dict:
    body = {
        "type": PROBLEM_BASE + slug,
        "title": str(title),
        "status": status_code,
        "detail": str(detail or title),
    }
    body.update(extra)
    return body


def _flatten(errors, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested error structure as ``{"a.0.b": ["message"]}``."""
    flat: dict[str, list[str]] = {}
    if isinstance(errors, dict):
        for key, value in errors.items():
            name = key if key not in ("non_field_errors", "__all__") else "non_field_errors"
            flat.update(_flatten(value, f"{prefix}.{name}" if prefix else name))
    elif isinstance(errors, list):
        if all(not isinstance(e, (dict, list)) for e in errors):
            flat.setdefault(prefix or "non_field_errors", []).extend(str(e) for e in errors)
        else:
            for index, value in enumerate(errors):
                if value:
                    flat.update(_flatten(value, f"{prefix}.{index}" if prefix else str(index)))
    else:
        flat.setdefault(prefix or "non_field_errors", []).append(str(errors))
    return flat


def django_errors(exc: DjangoValidationError) -> dict[str, list[str]]:
    if hasattr(exc, "error_dict"):
        return {
            ("non_field_errors" if field == "__all__" else field): [str(m) for e in errs for m in e.messages]
            for field, errs in exc.error_dict.items()
        }
    return {"non_field_errors": [str(m) for m in exc.messages]}


def _response(body: dict, headers: dict | None = None) -> Response:
    response = Response(body, status=body["status"], headers=headers)
    response.content_type = PROBLEM_CONTENT_TYPE
    return response


def exception_handler(exc, context):
    """DRF's ``EXCEPTION_HANDLER``: every error the API answers, as problem+json."""
    headers = {}
    if isinstance(exc, ContactDenied):
        decision = exc.decision.as_dict()
        body = problem(
            422,
            "contact-denied",
            _("The contact rules refuse this contact."),
            _("Contact not allowed: %(codes)s.") % {"codes": ", ".join(decision["reasons"])},
            reasons=decision["reasons"],
            citations=decision["citations"],
            next_allowed_at=decision["next_allowed_at"],
        )
    elif isinstance(exc, DjangoValidationError):
        errors = django_errors(exc)
        body = problem(
            422,
            "validation",
            _("The request was refused."),
            "; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()),
            errors=errors,
        )
    elif isinstance(exc, Http404):
        body = problem(404, "not-found", _("Not found."), _("No such record, or not yours."))
    elif isinstance(exc, PermissionDenied):
        body = problem(403, "forbidden", _("Forbidden."), str(exc) or _("You are not allowed to do this."))
    elif isinstance(exc, ApiProblem):
        body = problem(exc.status_code, exc.slug, exc.title, exc.detail, **exc.extra)
    elif isinstance(exc, exceptions.ValidationError):
        errors = _flatten(exc.detail)
        body = problem(
            400, "invalid-input", _("The request body is not valid."),
            "; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()), errors=errors,
        )  # fmt: skip
    elif isinstance(exc, exceptions.APIException):
        slugs = {
            exceptions.ParseError: "malformed",
            exceptions.NotAuthenticated: "not-authenticated",
            exceptions.AuthenticationFailed: "not-authenticated",
            exceptions.PermissionDenied: "forbidden",
            exceptions.NotFound: "not-found",
            exceptions.MethodNotAllowed: "method-not-allowed",
            exceptions.NotAcceptable: "not-acceptable",
            exceptions.UnsupportedMediaType: "unsupported-media-type",
            exceptions.Throttled: "throttled",
        }
        slug = next((s for cls, s in slugs.items() if isinstance(exc, cls)), "error")
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        body = problem(exc.status_code, slug, detail, detail)
        if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
            headers["Retry-After"] = str(int(exc.wait) + 1)
        if isinstance(exc, (exceptions.NotAuthenticated, exceptions.AuthenticationFailed)):
            headers["WWW-Authenticate"] = 'Bearer realm="api"'
    else:
        return None  # a bug: Django's 500 handling logs it (and api_server_error answers problem+json)
    set_rollback()
    return _response(body, headers)


def _json_problem(body: dict) -> JsonResponse:
    return JsonResponse(body, status=body["status"], content_type=PROBLEM_CONTENT_TYPE,
                        json_dumps_params={"ensure_ascii": False})  # fmt: skip


def api_not_found(request, *args, **kwargs):
    """Any ``/api/`` path no endpoint answers."""
    return _json_problem(
        problem(404, "not-found", _("Not found."), _("No endpoint at %(path)s.") % {"path": request.path})
    )


class BodySizeLimitMiddleware:
    """Refuse an API request whose declared body is larger than ``API_MAX_BODY_BYTES`` (413), and one
    that streams a body without declaring its size (411), before any of it is read."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith("/api/") and request.method in ("POST", "PUT", "PATCH"):
            limit = settings.API_MAX_BODY_BYTES
            declared = request.META.get("CONTENT_LENGTH") or ""
            try:
                size = int(declared) if declared else None
            except ValueError:
                size = None
            if size is None and request.META.get("HTTP_TRANSFER_ENCODING"):
                return _json_problem(
                    problem(411, "length-required", _("Send the body with a Content-Length."))
                )
            if size is not None and size > limit:
                return _json_problem(
                    problem(
                        413,
                        "too-large",
                        _("The request body is too large."),
                        _("At most %(n)d bytes.") % {"n": limit},
                        max_bytes=limit,
                    )  # fmt: skip
                )
        return self.get_response(request)


def api_server_error(request, *args, **kwargs):
    return _json_problem(problem(500, "server-error", _("Server error."), _("The error was logged.")))


__all__ = ["PROBLEM_CONTENT_TYPE", "ApiProblem", "exception_handler", "problem", "status"]
