"""``manage.py evidence_pack REFERRAL_ID --actor USERNAME --out FILE.zip``: a legal referral's stored
evidence pack, written to a file, permission-checked and audited like the admin download."""

import os

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from debt_collections.evidence import DOWNLOAD_PERMISSION, evidence_pack_download
from debt_collections.models import LegalReferral


class Command(BaseCommand):
    help = (
        "Write the evidence pack of an approved legal referral (the ZIP stored at approval) to a file. "
        "Needs a user with debt_collections.download_evidence_pack; checks the file against the hash "
        "recorded at approval; writes an export audit event. The file is created readable by its owner only."
    )

    def add_arguments(self, parser):
        # Checked in handle(), so that every mistake is one readable line.
        parser.add_argument("referral_id", metavar="REFERRAL_ID")
        parser.add_argument(
            "--actor", metavar="USERNAME", help="the user who downloads (needs the permission)"
        )
        parser.add_argument("--out", metavar="FILE.zip", help="where to write the ZIP")

    def handle(self, *args, referral_id, actor=None, out=None, **options):
        try:
            pk = int(referral_id)
        except ValueError:
            raise CommandError(f"REFERRAL_ID must be a number, got {referral_id!r}.") from None
        referral = LegalReferral.objects.filter(pk=pk).first()
        if referral is None:
            raise CommandError(f"No legal referral with id {pk}.")
        if not actor:
            raise CommandError("--actor is required: the user who downloads the pack.")
        user_model = get_user_model()
        user = user_model._default_manager.filter(**{user_model.USERNAME_FIELD: actor}).first()
        if user is None:
            raise CommandError(f"No user {actor!r}.")
        if not user.is_active or not user.has_perm(DOWNLOAD_PERMISSION):
            raise CommandError(
                f"User {actor!r} may not download evidence packs (needs {DOWNLOAD_PERMISSION})."
            )
        if not out:
            raise CommandError("--out is required: the ZIP file to write.")
        # Open the file first, so an unwritable path leaves no audited download behind.
        existed = os.path.exists(out)
        try:
            handle = os.fdopen(os.open(out, os.O_WRONLY | os.O_CREAT, 0o600), "wb")
        except OSError as exc:
            raise CommandError(f"Cannot write {out}: {exc.strerror or exc}.") from None
        try:
            # The audit event commits only once the file is written.
            with handle, transaction.atomic():
                content = evidence_pack_download(referral=referral, actor=user)
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
        self.stdout.write(
            f"Wrote the evidence pack of referral {pk} to {out}: {len(content)} bytes, "
            f"SHA-256 {referral.evidence_sha256}."
        )
