"""``manage.py snapshot_buckets``: keep every delinquent loan's bucket at a reporting date.

    manage.py snapshot_buckets                      # today (copies the loans' current state)
    manage.py snapshot_buckets --as-of 2026-10-31   # that date (replayed from schedules and payments)
    manage.py snapshot_buckets --months 6           # back-fill the 6 month ends before today

Each date's rows are replaced, so a rerun is harmless.
"""

from datetime import date

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from loans.snapshots import bucket_snapshot_take, month_ends


class Command(BaseCommand):
    help = (
        "Snapshot every active delinquent loan's bucket, days past due, amount overdue and outstanding "
        "principal as of a date (default today), or back-fill the last N month ends."
    )

    def add_arguments(self, parser):
        parser.add_argument("--as-of", dest="as_of", metavar="YYYY-MM-DD", help="default: today in TIME_ZONE")
        parser.add_argument(
            "--months",
            type=int,
            metavar="N",
            help="back-fill the N month ends before --as-of (on or before it) instead of the date itself",
        )
        parser.add_argument(
            "--replay",
            action="store_true",
            help="recompute from schedules and payments even for today (default: copy today's state)",
        )

    def handle(self, *args, as_of=None, months=None, replay=False, **options):
        today = timezone.localdate()
        try:
            day = date.fromisoformat(as_of) if as_of else today
        except ValueError:
            raise CommandError(f"--as-of must be a date as YYYY-MM-DD, got {as_of!r}.") from None
        if day > today:
            raise CommandError(f"--as-of {day} is in the future (today is {today}).")
        if months is not None and not 1 <= months <= 120:
            raise CommandError("--months must be between 1 and 120.")
        dates = month_ends(up_to=day, count=months) if months else [day]
        for snapshot_date in dates:
            result = bucket_snapshot_take(
                as_of=snapshot_date, today=today, source="replay" if replay else None
            )
            how = "replayed" if result.source == "replay" else "copied"
            self.stdout.write(f"{result.as_of}: {result.loans} delinquent loans ({how}).")
