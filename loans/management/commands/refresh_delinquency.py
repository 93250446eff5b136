"""``manage.py refresh_delinquency``: recompute penalty and delinquency figures as of a business date."""

from datetime import date

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from loans.models import Loan
from loans.services import delinquency_refresh


class Command(BaseCommand):
    help = (
        "Recompute penalty interest and the delinquency state (oldest unpaid due date, overdue amounts, "
        "outstanding principal, bucket) of every loan, or of the listed ones, as of a date."
    )

    def add_arguments(self, parser):
        parser.add_argument("--as-of", dest="as_of", metavar="YYYY-MM-DD", help="default: today in TIME_ZONE")
        parser.add_argument("--loan", dest="loans", type=int, action="append", metavar="ID")

    def handle(self, *args, as_of=None, loans=None, **options):
        try:
            business_date = date.fromisoformat(as_of) if as_of else timezone.localdate()
        except ValueError:
            raise CommandError(f"--as-of must be a date as YYYY-MM-DD, got {as_of!r}.") from None
        if loans:
            missing = sorted(set(loans) - set(Loan.objects.filter(pk__in=loans).values_list("pk", flat=True)))
            if missing:
                raise CommandError(f"No loan with id {', '.join(map(str, missing))}.")
        result = delinquency_refresh(as_of=business_date, loan_ids=loans)
        scope = f"{len(set(loans))} listed loans" if loans else "the whole book"
        self.stdout.write(
            f"Refreshed {scope} as of {business_date}: {result.loans_changed} loans changed, "
            f"{result.installments_repriced} installments repriced."
        )
