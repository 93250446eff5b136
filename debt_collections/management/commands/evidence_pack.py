"""``manage.py evidence_pack REFERRAL_ID --actor USERNAME --out FILE.zip``: a legal referral's stored
evidence pack, written to a file, permission-checked and audited like the admin download."""

from django.core.management.base import BaseCommand, CommandError

from collections_site.command_tools import acting_user, write_audited_file
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
        user = acting_user(actor, permission=DOWNLOAD_PERMISSION, may_not="download evidence packs")
        content = write_audited_file(out, lambda: evidence_pack_download(referral=referral, actor=user))
        self.stdout.write(
            f"Wrote the evidence pack of referral {pk} to {out}: {len(content)} bytes, "
            f"SHA-256 {referral.evidence_sha256}."
        )
