"""``manage.py send_notices``: send the queued collection notices now."""

from datetime import date

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from debt_collections.notices import notices_send_queued


class Command(BaseCommand):
    help = (
        "Send the queued collection notices (queued by the scan when a case enters a stage). Notices the "
        "contact rules hold back until later (quiet hours) stay queued; refused ones are marked with the "
        "reason. Prints one line of counts."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--as-of", dest="as_of", metavar="YYYY-MM-DD",
            help="business date of the figures, and the latest queue date sent (default: today)",
        )  # fmt: skip
        parser.add_argument("--limit", type=int, default=None, metavar="N", help="send at most N notices")

    def handle(self, *args, as_of=None, limit=None, **options):
        try:
            business_date = date.fromisoformat(as_of) if as_of else timezone.localdate()
        except ValueError:
            raise CommandError(f"--as-of must be a date as YYYY-MM-DD, got {as_of!r}.") from None
        if limit is not None and limit < 1:
            raise CommandError("--limit must be a whole number of at least 1.")
        try:
            counts = notices_send_queued(as_of=business_date, limit=limit)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from None
        self.stdout.write(
            f"Notices {business_date}: {counts['sent']} sent, {counts['waiting']} waiting (contact rules), "
            f"{counts['refused']} refused, {counts['failed']} failed."
        )
