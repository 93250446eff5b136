"""``manage.py run_collections_scan``: the nightly collections scan, here and now (or on the workers)."""

from datetime import date

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from debt_collections.scan import ScanBusy, ScanRefused, scan_run


class Command(BaseCommand):
    help = (
        "Refresh the delinquency of loans that are late or have open cases, then open, escalate, step "
        "down and close cases, recommend legal referrals, decide promises and queue pre-due reminders, "
        "for one business date. Prints a one-line summary. A finished date is not run again; an "
        "unfinished one resumes."
    )

    def add_arguments(self, parser):
        parser.add_argument("--as-of", dest="as_of", metavar="YYYY-MM-DD", help="default: today in TIME_ZONE")
        parser.add_argument("--full", action="store_true", help="refresh every loan, not only late ones")
        parser.add_argument(
            "--force",
            action="store_true",
            help="allow a date before the latest scan, or run a done date again",
        )
        parser.add_argument(
            "--chunk-size", type=int, default=None, metavar="N",
            help=f"loans per chunk (default: {settings.COLLECTIONS_SCAN_CHUNK_SIZE})",
        )  # fmt: skip
        parser.add_argument(
            "--on-workers", action="store_true",
            help="hand the run to the Celery workers (chunks in parallel) instead of running it here",
        )  # fmt: skip

    def handle(
        self, *args, as_of=None, full=False, force=False, chunk_size=None, on_workers=False, **options
    ):
        try:
            business_date = date.fromisoformat(as_of) if as_of else timezone.localdate()
        except ValueError:
            raise CommandError(f"--as-of must be a date as YYYY-MM-DD, got {as_of!r}.") from None
        if chunk_size is not None and chunk_size < 1:
            raise CommandError("--chunk-size must be a positive number of loans.")
        chunk_size = chunk_size or settings.COLLECTIONS_SCAN_CHUNK_SIZE
        if on_workers:
            if settings.CELERY_TASK_ALWAYS_EAGER:
                raise CommandError("--on-workers needs CELERY_BROKER_URL; without it the scan runs here.")
            from debt_collections.tasks import scan

            result = scan.delay(
                as_of=business_date.isoformat(), full=full, force=force, chunk_size=chunk_size
            )
            self.stdout.write(f"Collections scan {business_date}: handed to the workers (task {result.id}).")
            return
        try:
            summary = scan_run(as_of=business_date, full=full, force=force, chunk_size=chunk_size)
        except ScanBusy:
            # Not an error: tonight's scan is already being done by someone else.
            self.stdout.write(f"Collections scan {business_date}: another scan is running; nothing done.")
            return
        except ScanRefused as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(summary.line())
