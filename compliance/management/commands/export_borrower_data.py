"""``manage.py export_borrower_data``: everything held on one borrower as a ZIP, audited."""

import os

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from compliance.export import EXPORT_PERMISSION, borrower_export_run
from loans.models import Borrower


class Command(BaseCommand):
    help = (
        "Write everything held on one borrower (the borrower, contact points, flags, loans, payments, "
        "contact attempts, cases and the rest of the collection records) to a ZIP of JSON and CSV files "
        "for a data-subject access request. Needs a user with compliance.export_personal_data and a "
        "reason; writes a data_subject_export audit event. The file is created readable by its owner only."
    )

    def add_arguments(self, parser):
        # Checked in handle(), so that every mistake is one readable line.
        parser.add_argument("borrower_id", metavar="BORROWER_ID")
        parser.add_argument("--actor", metavar="USERNAME", help="the user who exports (needs the permission)")
        parser.add_argument("--reason", default="", help="why (the request's reference, say)")
        parser.add_argument("--out", metavar="FILE.zip", help="where to write the ZIP")

    def handle(self, *args, borrower_id, actor=None, reason="", out=None, **options):
        try:
            pk = int(borrower_id)
        except ValueError:
            raise CommandError(f"BORROWER_ID must be a number, got {borrower_id!r}.") from None
        borrower = Borrower.objects.filter(pk=pk).first()
        if borrower is None:
            raise CommandError(f"No borrower with id {pk}.")
        if not actor:
            raise CommandError("--actor is required: the user who exports.")
        user = get_user_model()._default_manager.filter(**{get_user_model().USERNAME_FIELD: actor}).first()
        if user is None:
            raise CommandError(f"No user {actor!r}.")
        if not user.is_active or not user.has_perm(EXPORT_PERMISSION):
            raise CommandError(f"User {actor!r} may not export personal data (needs {EXPORT_PERMISSION}).")
        if not (reason or "").strip():
            raise CommandError("--reason is required: say why the data is exported.")
        if not out:
            raise CommandError("--out is required: the ZIP file to write.")
        # Open the file before exporting, so an unwritable path leaves no audited export behind.
        existed = os.path.exists(out)
        try:
            handle = os.fdopen(os.open(out, os.O_WRONLY | os.O_CREAT, 0o600), "wb")
        except OSError as exc:
            raise CommandError(f"Cannot write {out}: {exc.strerror or exc}.") from None
        try:
            # The audit event commits only once the file is written.
            with handle, transaction.atomic():
                export = borrower_export_run(borrower=borrower, actor=user, reason=reason)
                handle.truncate(0)
                handle.write(export.content)
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
        self.stdout.write(
            f"Exported borrower {pk} to {out}: {len(export.files) + 1} files, {export.rows} rows, "
            f"{len(export.content)} bytes (audit event #{export.event.pk})."
        )
