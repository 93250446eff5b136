"""``manage.py demo_collections``: staff the stage teams with demo collectors and run today's scan,
so the demo book comes with worked cases (``make run`` calls it after ``seed_demo``)."""

from datetime import date

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from debt_collections.models import (
    Case,
    CaseHold,
    DueReminder,
    OutboxEvent,
    PromiseToPay,
    ScanRun,
    StageTransition,
    Team,
    TeamMember,
)
from debt_collections.scan import ScanBusy, ScanRefused, scan_run
from loans.demo import DEMO_PARTNERS

# Two collectors a team; the demo user "collector" (from seed_demo) works early warning and calls.
DEMO_COLLECTORS = {
    "early_warning": ("collector", "ew2"),
    "follow_up_call": ("collector", "caller2"),
    "notice": ("notice1", "notice2"),
    "restructuring": ("desk1", "desk2"),
    "legal_referral": ("legal1", "legal2"),
}


class Command(BaseCommand):
    help = "Put demo collectors in every stage's team and run the collections scan for the demo date."

    def add_arguments(self, parser):
        parser.add_argument("--as-of", dest="as_of", metavar="YYYY-MM-DD", help="default: today in TIME_ZONE")
        parser.add_argument(
            "--clear",
            action="store_true",
            help="only delete the demo partners' cases and their records and every scan run (before "
            "`seed_demo --reset`, which cannot delete loans that cases refer to)",
        )

    def handle(self, *args, as_of=None, clear=False, **options):
        if clear:
            self.stdout.write(self.clear())
            return
        try:
            business_date = date.fromisoformat(as_of) if as_of else timezone.localdate()
        except ValueError:
            raise CommandError(f"--as-of must be a date as YYYY-MM-DD, got {as_of!r}.") from None
        with transaction.atomic():
            group = Group.objects.get_or_create(name="collector")[0]
            user_model = get_user_model()
            for stage, usernames in DEMO_COLLECTORS.items():
                team = Team.objects.filter(stage=stage).first()
                if team is None:
                    continue
                for username in usernames:
                    user, created = user_model.objects.get_or_create(username=username)
                    if created:  # the extra collectors only carry a load; they do not sign in
                        user.set_unusable_password()
                        user.save()
                        user.groups.add(group)
                    TeamMember.objects.get_or_create(team=team, user=user)
        try:
            summary = scan_run(as_of=business_date)
        except (ScanBusy, ScanRefused) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(summary.line())

    @transaction.atomic
    def clear(self) -> str:
        demo_codes = [code for code, _name in DEMO_PARTNERS]
        cases = Case.objects.filter(loan__partner__code__in=demo_codes)
        StageTransition.objects.filter(case__in=cases).delete()
        CaseHold.objects.filter(case__in=cases).delete()
        PromiseToPay.objects.filter(case__in=cases).delete()
        OutboxEvent.objects.filter(partner__code__in=demo_codes).delete()
        DueReminder.objects.filter(loan__partner__code__in=demo_codes).delete()
        deleted = cases.delete()[0]
        if not StageTransition.objects.exists():  # runs are referred to only by transitions
            ScanRun.objects.all().delete()
        return f"Cleared {deleted:,} demo cases and their records."
