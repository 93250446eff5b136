"""``manage.py seed_demo``: a realistic demo loan book in bulk (the logic is in ``loans.demo``)."""

from django.core.management.base import BaseCommand, CommandError

from loans import demo


class Command(BaseCommand):
    help = (
        "Build a demo loan book: 2 partners, a few products, N loans with borrowers, schedules, payments and "
        "allocations as of a business date, then refresh delinquency. Same --seed, same book."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--loans", type=int, default=2000, metavar="N", help="number of loans (default 2000)"
        )
        parser.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
        parser.add_argument(
            "--as-of",
            dest="as_of",
            metavar="YYYY-MM-DD",
            help="business date the book is as of (default: today in settings.TIME_ZONE)",
        )
        parser.add_argument(
            "--reset",
            action="store_true",
            help="delete the demo partners' loan book first (without it the command refuses to run on a book "
            "that has loans)",
        )
        parser.add_argument(
            "--no-users", action="store_true", dest="no_users", help="do not create demo users"
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=demo.DEFAULT_BATCH_SIZE,
            metavar="LOANS",
            help=f"loans generated and written per batch (default {demo.DEFAULT_BATCH_SIZE:,})",
        )

    def handle(self, *args, **options):
        tty = self.stdout.isatty()
        try:
            result = demo.seed_demo(
                loans=options["loans"],
                seed=options["seed"],
                as_of=demo.parse_as_of(options["as_of"]),
                reset=options["reset"],
                users=not options["no_users"],
                progress=tty,
                batch_size=options["batch_size"],
                notify=self.stdout.write if tty else None,
            )
        except demo.DemoError as exc:
            raise CommandError(str(exc)) from None
        if result.users:
            self.stdout.write("Demo users (user / password / role):")
            for username, password, role in result.users:
                self.stdout.write(f"  {username} / {password} / {role}")
        self.stdout.write(self.style.SUCCESS(result.summary()))
