"""Signal receivers of the compliance app, connected by ``ComplianceConfig.ready``.

- Every login and every failed login is an audit event. A failed one names the username that was
  tried (``actor_label``; there is no user to point at) and never the password.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.dispatch import receiver

from compliance.audit import audit_record
from compliance.models import AuditEventType

# What a failed login with no username at all is recorded as.
NO_USERNAME = "(none)"


def _request_details(request) -> dict:
    """Where the attempt came from. REMOTE_ADDR only: a forwarded-for header is whatever the client
    wrote unless a trusted proxy sets it, and then the proxy should set REMOTE_ADDR."""
    address = request.META.get("REMOTE_ADDR") if request is not None else None
    return {"ip": address} if address else {}


@receiver(user_logged_in, dispatch_uid="compliance.audit_login")
def audit_login(sender, request, user, **kwargs):
    audit_record(event_type=AuditEventType.LOGIN, actor=user, subject=user, details=_request_details(request))


@receiver(user_login_failed, dispatch_uid="compliance.audit_login_failed")
def audit_login_failed(sender, credentials, request=None, **kwargs):
    # ``credentials`` has the password masked already; only the username is read from it.
    username = credentials.get(get_user_model().USERNAME_FIELD) or credentials.get("username")
    audit_record(
        event_type=AuditEventType.LOGIN_FAILED,
        actor=None,
        actor_label=str(username) if username else NO_USERNAME,
        details=_request_details(request),
    )
