"""The loan book's errors. Services raise ``ValidationError`` with a dict naming each bad field, so
forms, the API and commands can all say which field was wrong."""

from django.core.exceptions import ValidationError


def field_error(field: str, message: str, code: str = "invalid") -> ValidationError:
    return ValidationError({field: ValidationError(message, code=code)})


__all__ = ["ValidationError", "field_error"]
