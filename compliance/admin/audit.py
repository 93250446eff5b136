"""Admin screens: audit. The log, read-only, with the state of its hash chain on the list page.

What the list page costs on a large log: the page itself is an index scan on the primary key (newest
first); the paginator's COUNT(*) of the filtered rows is a scan (``show_full_result_count`` is off,
so there is no second count of the whole table); the type and date filters need no query of their
own (no ``date_hierarchy``, which would read every row's date). Searching is a sequential scan:
``subject_id`` is matched exactly but is indexed only after ``subject_type``, ``actor_label`` not at
all. The chain check reads the newest ``CHAIN_WINDOW`` events (one query) and hashes them, some
tens of milliseconds whatever the size of the log; the whole chain is ``manage.py
verify_audit_chain``'s job (about half a minute per million events), run from cron or by an operator.
"""

from __future__ import annotations

import json

from django.contrib import admin, messages
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from collections_site.admin_tools import ReadOnlyAdminMixin
from compliance.audit import ChainProblem, chain_problems
from compliance.models import AuditEvent

CHAIN_WINDOW = 1000


def tail_status(window: int = CHAIN_WINDOW) -> tuple[ChainProblem | None, list[AuditEvent]]:
    """The first problem among the newest ``window`` events (None if they hold), and those events.

    The event just before the window is read too, as the anchor the window's first link is checked
    against; it is not judged itself (its own predecessor is not read). When the window reaches the
    start of the log, the first event must follow the genesis hash."""
    rows = list(AuditEvent.objects.order_by("-id")[: window + 1])[::-1]
    if len(rows) <= window:
        return next(chain_problems(iter(rows)), None), rows
    anchor, checked = rows[0], rows[1:]
    problem = next((p for p in chain_problems(iter(rows)) if p.event_id != anchor.pk), None)
    return problem, checked


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["id", "at", "event_type", "actor_label", "subject_type", "subject_id", "short_details"]
    list_display_links = ["id", "at"]
    list_filter = ["event_type", "at"]
    search_fields = ["=subject_id", "=actor_label"]
    search_help_text = _("An exact subject id or actor (username, “scan”, “system”).")
    ordering = ["-id"]
    show_full_result_count = False
    list_per_page = 100
    fields = [
        "id", "event_type", "at", "actor", "actor_label", "subject_type", "subject_id", "pretty_details",
        "prev_hash", "hash",
    ]  # fmt: skip
    readonly_fields = fields

    @admin.display(description=_("details"))
    def short_details(self, obj):
        text = json.dumps(obj.details, ensure_ascii=False, sort_keys=True)
        return text if len(text) <= 120 else f"{text[:119]}…"

    @admin.display(description=_("details"))
    def pretty_details(self, obj):
        return format_html(
            "<pre>{}</pre>", json.dumps(obj.details, ensure_ascii=False, sort_keys=True, indent=2)
        )

    def changelist_view(self, request, extra_context=None):
        if request.method == "GET":
            problem, checked = tail_status()
            extra_context = {**(extra_context or {}), "audit_chain_problem": problem}
            if problem is not None:
                self.message_user(
                    request,
                    _("Audit chain broken at event #%(id)s: %(problem)s. Run manage.py verify_audit_chain.")
                    % {"id": problem.event_id, "problem": problem.problem},
                    messages.ERROR,
                )
            elif checked:
                self.message_user(
                    request,
                    _(
                        "Audit chain: the newest %(n)s events (#%(first)s to #%(last)s) link to each other "
                        "and match their hashes. manage.py verify_audit_chain checks the whole log."
                    )
                    % {"n": len(checked), "first": checked[0].pk, "last": checked[-1].pk},
                    messages.INFO,
                )
        return super().changelist_view(request, extra_context)
