"""Compliance admin screens, one module per part: contact rules and flags, screening, audit, personal data."""

from compliance.admin import audit, contact, pii, screening  # noqa: F401 - registers the screens
