"""``manage.py demo_collections``: staff the stage teams with demo collectors, run today's scan and
work a few cases the way collectors do (calls with their outcomes, a promise, the stage notices, a
restructuring proposal and a legal-referral request waiting for a supervisor), so the demo book comes
with worked cases (``make run`` calls it after ``seed_demo``). Everything goes through the services:
a call the contact rules refuse (quiet hours, say) is skipped and counted."""

from datetime import date, datetime, time, timedelta

from django.apps import apps
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from compliance.contact import ContactDenied
from compliance.models import ContactAttempt, ContactOverride, ScreeningFlag
from debt_collections.contacts import contact_log
from debt_collections.models import (
    Case,
    CaseContact,
    CaseHold,
    ContactOutcome,
    DueReminder,
    LegalReferral,
    Notice,
    OutboxEvent,
    PromiseToPay,
    Restructuring,
    ScanRun,
    StageTransition,
    Team,
    TeamMember,
)
from debt_collections.notices import notices_send_queued
from debt_collections.referrals import referral_request
from debt_collections.restructuring import restructuring_propose
from debt_collections.scan import ScanBusy, ScanRefused, scan_run
from loans.demo import DEMO_PARTNERS
from loans.money import quantize

# Two collectors a team; the demo user "collector" (from seed_demo) works early warning and calls.
DEMO_COLLECTORS = {
    "early_warning": ("collector", "ew2"),
    "follow_up_call": ("collector", "caller2"),
    "notice": ("notice1", "notice2"),
    "restructuring": ("desk1", "desk2"),
    "legal_referral": ("legal1", "legal2"),
}
DEMO_SUPERVISORS = ("supervisor", "senior")


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
            # The demo supervisors supervise every team: they see its cases, balance its workload and
            # decide its proposals in the back office.
            supervisors = user_model.objects.filter(username__in=DEMO_SUPERVISORS)
            for team in Team.objects.all():
                team.supervisors.add(*supervisors)
        try:
            summary = scan_run(as_of=business_date)
        except (ScanBusy, ScanRefused) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(summary.line())
        self.stdout.write(self.work(business_date))

    def work(self, as_of: date) -> str:
        """Calls on the four most urgent early cases, a restructuring proposal, a referral request and
        the queued notices."""
        user_model = get_user_model()
        collector = user_model.objects.filter(username="collector").first()
        if collector is None or not collector.has_perm("debt_collections.add_casecontact"):
            return "Demo case work skipped: no demo collector (run seed_demo first)."
        demo = Case.objects.filter(status=Case.Status.OPEN, loan__partner__code__in=self._codes())
        # The calls happen at 10:30 on the business date (now, if that is still to come): office hours.
        at = min(
            timezone.now(),
            datetime.combine(as_of, time(10, 30), tzinfo=timezone.get_current_timezone()),
        )
        outcomes = [
            (ContactOutcome.NO_ANSWER, "", None),
            (ContactOutcome.CALLBACK_REQUESTED, "Asked to be called back after work.", None),
            (ContactOutcome.PROMISE_TO_PAY, "Will pay in two parts from the next salaries.", "plan"),
            (ContactOutcome.RIGHT_PARTY, "Explained the arrears and the ways to pay.", None),
        ]
        logged = refused = 0
        calls = demo.filter(stage__in=["early_warning", "follow_up_call"], contacts__isnull=True).order_by(
            "-priority", "pk"
        )
        for case, (outcome, notes, plan) in zip(calls[: len(outcomes)], outcomes, strict=False):
            overdue = case.loan.overdue_total
            instalments = None
            if plan and overdue > 1:
                half = quantize(overdue / 2, case.loan.currency)
                instalments = [
                    (as_of + timedelta(days=7), half),
                    (as_of + timedelta(days=21), overdue - half),
                ]
            phone = case.loan.borrower.contact_points.filter(
                kind="phone", is_third_party=False, is_valid=True, opted_out=False
            ).first()
            callback = as_of + timedelta(days=1) if outcome == ContactOutcome.CALLBACK_REQUESTED else None
            try:
                contact_log(
                    case=case, channel="call", outcome=outcome, actor=collector, notes=notes,
                    contact_point=phone, callback_on=callback, promise_instalments=instalments,
                    occurred_at=at, as_of=as_of,
                )  # fmt: skip
                logged += 1
            except ContactDenied:  # refused by the contact rules (quiet hours, limits): skipped
                refused += 1
        proposed = requested = 0
        desk = demo.filter(stage="restructuring", restructurings__isnull=True).first()
        if desk is not None:
            try:
                restructuring_propose(
                    case=desk, kind="term_extension", actor=collector, new_term=desk.loan.term + 12,
                    first_due_date=as_of + timedelta(days=30), as_of=as_of,
                    reason="Income fell after a job change; asks for smaller instalments over a longer term.",
                )  # fmt: skip
                proposed = 1
            except ValidationError:
                pass
        recommended = demo.filter(referral_recommended_on__isnull=False, referrals__isnull=True)
        for case in recommended[:5]:
            try:
                referral_request(
                    case=case, actor=collector, as_of=as_of,
                    reason="No payment and no answer for three months despite the formal notice.",
                    forbearance_considered="Offered a term extension and a payment holiday; no reply.",
                )  # fmt: skip
                requested = 1
                break
            except ValidationError:  # time-barred or on hold: try the next one
                continue
        sent = notices_send_queued(as_of=as_of, at=at)
        return (
            f"Demo case work: {logged} calls logged ({refused} refused by the contact rules), "
            f"{proposed} restructuring proposed, {requested} legal referral requested; notices: "
            + ", ".join(f"{count} {name}" for name, count in sent.items())
            + "."
        )

    @staticmethod
    def _codes() -> list[str]:
        return [code for code, _name in DEMO_PARTNERS]

    @transaction.atomic
    def clear(self) -> str:
        demo_codes = self._codes()
        cases = Case.objects.filter(loan__partner__code__in=demo_codes)
        contacts = CaseContact.objects.filter(case__in=cases)
        ScreeningFlag.objects.filter(
            source="case_contact", source_id__in=[str(pk) for pk in contacts.values_list("pk", flat=True)]
        ).delete()
        contacts.delete()
        Notice.objects.filter(case__in=cases).delete()
        # The attempts of those contacts and notices, and any other on the demo loans; then overrides.
        ContactAttempt.objects.filter(loan__partner__code__in=demo_codes).delete()
        ContactOverride.objects.filter(borrower__partner__code__in=demo_codes, used_at__isnull=False).delete()
        Restructuring.objects.filter(case__in=cases).delete()
        LegalReferral.objects.filter(case__in=cases).delete()
        StageTransition.objects.filter(case__in=cases).delete()
        CaseHold.objects.filter(case__in=cases).delete()
        PromiseToPay.objects.filter(case__in=cases).delete()
        # The partner API's delivery log refers to the outbox (looked up by name: the api app builds on
        # this one, not the other way round).
        apps.get_model("api", "WebhookDelivery").objects.filter(event__partner__code__in=demo_codes).delete()
        OutboxEvent.objects.filter(partner__code__in=demo_codes).delete()
        DueReminder.objects.filter(loan__partner__code__in=demo_codes).delete()
        deleted = cases.delete()[0]
        if not StageTransition.objects.exists():  # runs are referred to only by transitions
            ScanRun.objects.all().delete()
        return f"Cleared {deleted:,} demo cases and their records."
