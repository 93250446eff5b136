"""manage.py deliver_webhooks [--loop SECONDS] [--limit N]

Fans the outbox out to the webhook subscriptions and sends what is due, in this process: what the
Celery task ``api.webhooks_deliver`` does, for development and for operators (no broker needed).
With ``--loop`` it runs again every SECONDS until interrupted."""

import time

from django.core.management.base import BaseCommand, CommandError

from api.webhooks import webhooks_deliver


class Command(BaseCommand):
    help = "Dispatch outbox events to webhook subscriptions and send the due deliveries."

    def add_arguments(self, parser):
        parser.add_argument(
            "--loop", type=float, default=None, metavar="SECONDS", help="Run again every SECONDS."
        )
        parser.add_argument("--limit", type=int, default=None, help="Batch size (default WEBHOOK_BATCH).")

    def handle(self, *args, loop, limit, **options):
        if loop is not None and loop <= 0:
            raise CommandError("--loop needs a positive number of seconds.")
        if limit is not None and limit <= 0:
            raise CommandError("--limit needs a positive number.")
        try:
            while True:
                totals = webhooks_deliver(limit=limit)
                self.stdout.write(
                    "events {events}, sent {sent}: delivered {delivered}, retrying {retrying}, "
                    "failed {failed}".format(**totals)
                )
                if loop is None:
                    return
                time.sleep(loop)
        except KeyboardInterrupt:
            self.stderr.write("stopped")
