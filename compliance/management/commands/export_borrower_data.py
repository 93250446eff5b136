"""``manage.py export_borrower_data``: everything held on one borrower as a ZIP, audited."""

from django.core.management.base import BaseCommand, CommandError

from collections_site.command_tools import acting_user, write_audited_file
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
        user = acting_user(actor, permission=EXPORT_PERMISSION, may_not="export personal data")
        if not (reason or "").strip():
            raise CommandError("--reason is required: say why the data is exported.")
        exports = []

        def produce() -> bytes:
            exports.append(borrower_export_run(borrower=borrower, actor=user, reason=reason))
            return exports[0].content

        write_audited_file(out, produce)
        export = exports[0]
        self.stdout.write(
            f"Exported borrower {pk} to {out}: {len(export.files) + 1} files, {export.rows} rows, "
            f"{len(export.content)} bytes (audit event #{export.event.pk})."
        )
