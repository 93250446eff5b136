"""The OpenAPI schema's shared parts: every operation lists the problems it may answer, and those
that create records their ``Idempotency-Key`` header."""

from __future__ import annotations

from drf_spectacular import openapi
from rest_framework import serializers

from api.idempotency import IDEMPOTENCY_PARAMETER


class ProblemSerializer(serializers.Serializer):
    """RFC 9457 problem details."""

    type = serializers.CharField(help_text="A URI naming the kind of problem, under /api/problems/.")
    title = serializers.CharField()
    status = serializers.IntegerField()
    detail = serializers.CharField()
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="Field errors: {field: [message, ...]}; nested fields dotted (schedule.0.principal).",
    )
    reasons = serializers.ListField(
        child=serializers.CharField(), required=False, help_text="Contact rules' reason codes."
    )
    citations = serializers.DictField(child=serializers.CharField(), required=False)
    next_allowed_at = serializers.DateTimeField(required=False, allow_null=True)


PROBLEMS = {
    "400": "Malformed or invalid input",
    "401": "No credentials, or a key that is not valid",
    "403": "Not allowed (scope, role or partner-only endpoint)",
    "404": "No such record, or another partner's",
    "413": "Body too large",
    "422": "Refused by a business rule (field errors, contact-rule reason codes, idempotency key reuse)",
    "429": "Throttled",
}


class AutoSchema(openapi.AutoSchema):
    def _is_idempotent(self) -> bool:
        handler = getattr(self.view, getattr(self.view, "action", None) or self.method.lower(), None)
        return bool(getattr(handler, "idempotent", False))

    def get_override_parameters(self):
        parameters = list(super().get_override_parameters())
        if self._is_idempotent():
            parameters.append(IDEMPOTENCY_PARAMETER)
        return parameters

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        component = self.resolve_serializer(ProblemSerializer, direction)
        for code, description in PROBLEMS.items():
            if code == "413" and self.method not in ("POST", "PUT", "PATCH"):
                continue
            responses.setdefault(
                code,
                {
                    "content": {"application/problem+json": {"schema": component.ref}},
                    "description": description,
                },
            )
        return responses
