"""``manage.py verify_audit_chain``: walk the audit log's hash chain and say whether it is intact."""

from __future__ import annotations

import re

from django.core.management.base import BaseCommand, CommandError

from compliance.audit import chain_problems
from compliance.models import AuditEvent

# How much of a hash is printed, and the least an operator may give back to --expect-hash.
SHORT_HASH = 16
HEX = re.compile(r"[0-9a-f]+")


def _short(value: str) -> str:
    return f"{value[:SHORT_HASH]}…"


class Command(BaseCommand):
    help = (
        "Walk the audit log in id order, checking that each event links to the one before and matches "
        "its own hash. Exits 0 with one line when the chain is intact; otherwise exits 1 with one line "
        "naming the first bad event (edited, or following a deleted or moved one). Limit: the chain "
        "cannot see the loss of its newest events (nothing follows them to break a link) or of all of "
        "them. Against that, note the head an intact run prints and give it back later with "
        "--expect-hash (the event must still be in the chain) and --expect-count (at least that many)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--expect-hash", metavar="HASH",
            help=f"a hash an earlier run printed (at least its first {SHORT_HASH} hex digits): an event "
            "with this hash must still be in the chain",
        )  # fmt: skip
        parser.add_argument(
            "--expect-count", type=int, metavar="N", help="the chain must hold at least N events"
        )

    def handle(self, *args, expect_hash=None, expect_count=None, **options):
        if expect_hash is not None:
            expect_hash = expect_hash.strip().lower().rstrip("…").rstrip(".")
            if len(expect_hash) < SHORT_HASH or len(expect_hash) > 64 or not HEX.fullmatch(expect_hash):
                raise CommandError(f"--expect-hash must be {SHORT_HASH} to 64 hex digits.")
        if expect_count is not None and expect_count < 0:
            raise CommandError("--expect-count must be 0 or more.")

        walked = {"count": 0, "last": None, "expected_at": None}

        def events():
            for event in AuditEvent.objects.order_by("id").iterator(chunk_size=2000):
                walked["count"] += 1
                walked["last"] = event
                if expect_hash and walked["expected_at"] is None and event.hash.startswith(expect_hash):
                    walked["expected_at"] = event.pk
                yield event

        problem = next(chain_problems(events()), None)
        if problem is not None:
            raise CommandError(f"Audit chain broken at event #{problem.event_id}: {problem.problem}.")
        count, last = walked["count"], walked["last"]
        if expect_hash and walked["expected_at"] is None:
            raise CommandError(
                f"Audit chain intact but incomplete: no event has hash {_short(expect_hash)} any more "
                f"(the newest events were deleted); {count} events, last "
                + (f"#{last.pk}." if last else "none.")
            )
        if expect_count is not None and count < expect_count:
            raise CommandError(
                f"Audit chain intact but incomplete: {count} events, {expect_count} expected "
                "(the newest events were deleted)."
            )
        if last is None:
            self.stdout.write("Audit chain intact: 0 events.")
        else:
            shown = last.hash if options["verbosity"] >= 2 else _short(last.hash)
            self.stdout.write(f"Audit chain intact: {count} events (last #{last.pk}, hash {shown})")
