"""``manage.py check_contact``: may this borrower be contacted on this channel now (or at a time)?"""

import json
from datetime import datetime

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from compliance.contact import check_contact
from compliance.models import Channel, Purpose
from loans.models import Borrower, ContactPoint, Loan


class Command(BaseCommand):
    help = (
        "Print the compliance decision for a contact: allowed or not, every reason code with its "
        "citation, and when contact is next allowed. Exit 0 when allowed, 3 when denied."
    )

    def add_arguments(self, parser):
        parser.add_argument("borrower", type=int, metavar="BORROWER_ID")
        parser.add_argument("--channel", required=True, choices=Channel.values)
        parser.add_argument("--contact-point", type=int, metavar="ID")
        parser.add_argument(
            "--at", metavar="ISO-8601", help="with an offset, e.g. 2026-06-10T21:30+08:00; default now"
        )
        parser.add_argument("--purpose", default=Purpose.COLLECTION, choices=Purpose.values)
        parser.add_argument("--loan", type=int, metavar="ID")
        parser.add_argument("--staff", type=int, default=1, help="staff on a field visit")
        parser.add_argument("--recording", action="store_true", help="a field visit is recorded")
        parser.add_argument("--json", action="store_true", help="print the decision as JSON")

    def handle(self, *args, **o):
        borrower = Borrower.objects.filter(pk=o["borrower"]).first()
        if borrower is None:
            raise CommandError(f"No borrower with id {o['borrower']}.")
        point = None
        if o["contact_point"] is not None:
            point = ContactPoint.objects.filter(pk=o["contact_point"]).first()
            if point is None:
                raise CommandError(f"No contact point with id {o['contact_point']}.")
        loan = None
        if o["loan"] is not None:
            loan = Loan.objects.filter(pk=o["loan"]).first()
            if loan is None:
                raise CommandError(f"No loan with id {o['loan']}.")
        if o["at"]:
            try:
                at = datetime.fromisoformat(o["at"])
            except ValueError:
                raise CommandError(
                    f"--at must be an ISO 8601 time with an offset, got {o['at']!r}."
                ) from None
            if timezone.is_naive(at):
                raise CommandError("--at needs an offset (e.g. +08:00): a time without one is ambiguous.")
        else:
            at = timezone.now()
        try:
            decision = check_contact(
                borrower=borrower, channel=o["channel"], at=at, contact_point=point, purpose=o["purpose"],
                loan=loan, staff_count=o["staff"], recording=o["recording"],
            )  # fmt: skip
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from None
        if o["json"]:
            self.stdout.write(json.dumps(decision.as_dict(), ensure_ascii=False))
        elif decision.allowed:
            self.stdout.write(
                f"allowed (profile {decision.profile}, local time {decision.local_time:%Y-%m-%d %H:%M %Z})"
            )
        else:
            self.stdout.write(f"denied: {', '.join(decision.reasons)}")
            for reason in decision.details:
                self.stdout.write(f"  {reason.code}: {reason.citation}")
            nxt = decision.next_allowed_at
            self.stdout.write(
                f"next allowed: {nxt.isoformat() if nxt else 'not until a person lifts the bar'}"
            )
        if not decision.allowed:
            raise SystemExit(3)
