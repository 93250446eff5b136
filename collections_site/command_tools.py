"""What the commands that hand out personal data share: find the acting user, and write an audited
file so that the audit event commits only once the file is on disk."""

from __future__ import annotations

import os
from collections.abc import Callable

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import CommandError
from django.db import transaction


def acting_user(username: str | None, *, permission: str, may_not: str):
    """The active user named by ``--actor`` holding ``permission``, or one readable CommandError."""
    if not username:
        raise CommandError("--actor is required: the user who does it.")
    user_model = get_user_model()
    user = user_model._default_manager.filter(**{user_model.USERNAME_FIELD: username}).first()
    if user is None:
        raise CommandError(f"No user {username!r}.")
    if not user.is_active or not user.has_perm(permission):
        raise CommandError(f"User {username!r} may not {may_not} (needs {permission}).")
    return user


def write_audited_file(out: str | None, produce: Callable[[], bytes]) -> bytes:
    """Write what ``produce`` returns to ``out`` (created readable by its owner only) inside one
    transaction, so the audit event ``produce`` writes commits only with the file. The file is opened
    first (an unwritable path leaves nothing audited) and removed again if anything fails."""
    if not out:
        raise CommandError("--out is required: the ZIP file to write.")
    existed = os.path.exists(out)
    try:
        handle = os.fdopen(os.open(out, os.O_WRONLY | os.O_CREAT, 0o600), "wb")
    except OSError as exc:
        raise CommandError(f"Cannot write {out}: {exc.strerror or exc}.") from None
    try:
        with handle, transaction.atomic():
            content = produce()
            handle.truncate(0)
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException as exc:
        if not existed:
            os.unlink(out)
        if isinstance(exc, ValidationError):
            raise CommandError(" ".join(exc.messages)) from None
        if isinstance(exc, PermissionDenied):
            raise CommandError(str(exc)) from None
        raise
    return content
