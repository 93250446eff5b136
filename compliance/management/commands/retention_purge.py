"""``manage.py retention_purge``: anonymise the borrowers whose records were kept long enough."""

from datetime import date

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from compliance.retention import retention_purge


class Command(BaseCommand):
    help = (
        "Anonymise borrowers with no active loan whose last activity (loan or case closed, contact "
        "attempt) is more than the retention period before the date, unless under legal hold: name, "
        "national ID, date of birth, contact point values and third-party names, history included. "
        "Collection records stay. Prints one line; --dry-run only counts."
    )

    def add_arguments(self, parser):
        parser.add_argument("--as-of", dest="as_of", metavar="YYYY-MM-DD", help="default: today in TIME_ZONE")
        parser.add_argument(
            "--years", metavar="N", help=f"retention period in years (default: {settings.RETENTION_YEARS})"
        )
        parser.add_argument("--dry-run", action="store_true", help="list who is due; write nothing")

    def handle(self, *args, as_of=None, years=None, dry_run=False, **options):
        try:
            business_date = date.fromisoformat(as_of) if as_of else timezone.localdate()
        except ValueError:
            raise CommandError(f"--as-of must be a date as YYYY-MM-DD, got {as_of!r}.") from None
        if years is not None:
            try:
                years = int(years)
            except ValueError:
                years = 0
            if years < 1:
                raise CommandError("--years must be a whole number of years, at least 1.")
        result = retention_purge(as_of=business_date, years=years, dry_run=dry_run)
        self.stdout.write(result.line())
