"""The collections workflow: policies, teams, cases and their stage transitions, holds, promises to
pay, the nightly scan's runs, and the outbox of events for partner webhooks.

Cases are written by ``debt_collections.scan`` (set-based, for the whole book) and by
``debt_collections.services`` (one case, by a person); both go through the same writer, so a
transition, its history row and its outbox event always land together.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import F, Q, Value
from django.db.models.functions import Coalesce
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy
from simple_history.models import HistoricalRecords

from debt_collections.stages import LADDER, Stage
from loans.models import Loan, LoanProduct, money_field


class StageChoices(models.TextChoices):
    EARLY_WARNING = Stage.EARLY_WARNING.value, _("early warning")
    FOLLOW_UP_CALL = Stage.FOLLOW_UP_CALL.value, _("follow-up call")
    NOTICE = Stage.NOTICE.value, _("notice")
    RESTRUCTURING = Stage.RESTRUCTURING.value, _("restructuring")
    LEGAL_REFERRAL = Stage.LEGAL_REFERRAL.value, _("legal referral")


assert StageChoices.values == [s.value for s in LADDER]  # noqa: S101 - the pure module and the model agree


class CollectionPolicy(models.Model):
    """Days past due at which each stage is entered, for one product or (the default) for all others."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    product = models.OneToOneField(
        LoanProduct,
        verbose_name=_("product"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="collection_policy",
        help_text=_("Empty for the default policy, which applies to every product without its own."),
    )
    early_warning_dpd = models.PositiveSmallIntegerField(_("early warning from DPD"), default=1)
    follow_up_call_dpd = models.PositiveSmallIntegerField(_("follow-up call from DPD"), default=8)
    notice_dpd = models.PositiveSmallIntegerField(_("notice from DPD"), default=31)
    restructuring_dpd = models.PositiveSmallIntegerField(_("restructuring from DPD"), default=61)
    legal_referral_dpd = models.PositiveSmallIntegerField(
        _("legal referral recommended from DPD"), default=91
    )
    pre_due_reminder_days = models.PositiveSmallIntegerField(
        _("pre-due reminder, days before the due date (loans at risk)"), default=3
    )
    # A promise instalment counts as kept when what was paid since the promise reaches what was
    # promised up to it less this amount, by its date plus these days.
    promise_tolerance_amount = money_field(_("promise tolerance (amount)"), default=Decimal("1.00"))
    promise_tolerance_days = models.PositiveSmallIntegerField(_("promise tolerance (days)"), default=1)
    # Waivers (penalty, interest, fees, a settlement discount) above this need a senior supervisor.
    supervisor_waiver_limit = money_field(
        _("largest waiver a supervisor may approve"), default=Decimal("5000.00")
    )
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("collection policy")
        verbose_name_plural = _("collection policies")
        ordering = [F("product").asc(nulls_first=True), "name"]
        constraints = [
            # One default policy: a unique index on COALESCE(product, 0), since NULLs never collide.
            models.UniqueConstraint(
                Coalesce("product", Value(0)),
                name="policy_one_default",
                violation_error_message=_("There is already a default policy (one without a product)."),
            ),
            models.CheckConstraint(
                condition=Q(promise_tolerance_amount__gte=0) & Q(supervisor_waiver_limit__gte=0),
                name="policy_limits_not_negative",
            ),
            models.CheckConstraint(
                condition=Q(early_warning_dpd__gte=1)
                & Q(follow_up_call_dpd__gt=F("early_warning_dpd"))
                & Q(notice_dpd__gt=F("follow_up_call_dpd"))
                & Q(restructuring_dpd__gt=F("notice_dpd"))
                & Q(legal_referral_dpd__gt=F("restructuring_dpd")),
                name="policy_thresholds_increasing",
                violation_error_message=_(
                    "Stage thresholds must start at 1 DPD or later and increase from stage to stage."
                ),
            ),
        ]

    def __str__(self):
        return self.name

    @property
    def is_default(self) -> bool:
        return self.product_id is None


class Team(models.Model):
    """A queue of collectors. Each stage's cases go to the team that works that stage."""

    code = models.SlugField(_("code"), max_length=50, unique=True)
    name = models.CharField(_("name"), max_length=100)
    stage = models.CharField(
        _("works stage"), max_length=20, choices=StageChoices.choices, unique=True, null=True, blank=True
    )
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="TeamMember", related_name="collection_teams", blank=True
    )
    # Supervisors of the team: they see and reassign its cases and approve its proposals in the back
    # office. They are not members (members take new cases).
    supervisors = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        verbose_name=_("supervisors"),
        related_name="supervised_teams",
        blank=True,
    )

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("team")
        verbose_name_plural = _("teams")
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(
                condition=Q(stage__isnull=True) | Q(stage__in=StageChoices.values), name="team_stage_valid"
            ),
        ]

    def __str__(self):
        return self.name


class TeamMember(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="team_memberships"
    )
    # An inactive member (on leave, say) keeps their cases but gets no new ones.
    is_active = models.BooleanField(_("takes new cases"), default=True)

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("team member")
        verbose_name_plural = _("team members")
        constraints = [models.UniqueConstraint(fields=["team", "user"], name="team_member_unique")]

    def __str__(self):
        return f"{self.user} @ {self.team}"


class StaffPreference(models.Model):
    """A back-office user's own settings: the time zone times are shown in and the interface language
    (chosen with the language switch, kept across sessions)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="staff_preference"
    )
    time_zone = models.CharField(_("time zone"), max_length=64, blank=True)
    language = models.CharField(_("language"), max_length=10, choices=settings.LANGUAGES, blank=True)

    class Meta:
        verbose_name = _("staff preference")
        verbose_name_plural = _("staff preferences")

    def __str__(self):
        return str(self.user)


class Case(models.Model):
    """One delinquent loan being worked. At most one open case per loan."""

    class Status(models.TextChoices):
        OPEN = "open", pgettext_lazy("case status", "open")
        CLOSED = "closed", pgettext_lazy("case status", "closed")

    class CloseReason(models.TextChoices):
        CURED = "cured", _("cured")
        RESTRUCTURED_PERFORMING = "restructured_performing", _("restructured, performing")
        SETTLED = "settled", _("settled")
        PAID_OFF = "paid_off", _("paid off")
        WRITTEN_OFF = "written_off", _("written off")
        LEGAL_CONCLUDED = "legal_concluded", _("legal proceedings concluded")

    loan = models.ForeignKey(Loan, verbose_name=_("loan"), on_delete=models.PROTECT, related_name="cases")
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.OPEN)
    stage = models.CharField(_("stage"), max_length=20, choices=StageChoices.choices)
    stage_entered_on = models.DateField(_("in this stage since"))
    team = models.ForeignKey(
        Team, verbose_name=_("team"), on_delete=models.PROTECT, null=True, blank=True, related_name="cases"
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("assignee"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="assigned_cases",
    )
    # Recomputed by every scan from stage, DPD, amount overdue and broken promises (stages.priority_score).
    priority = models.IntegerField(_("priority"), default=0)
    next_action_date = models.DateField(_("next action on"), null=True, blank=True)
    referral_recommended_on = models.DateField(_("legal referral recommended on"), null=True, blank=True)
    broken_promises = models.PositiveSmallIntegerField(_("promises broken"), default=0)
    opened_on = models.DateField(_("opened on"))
    closed_on = models.DateField(_("closed on"), null=True, blank=True)
    close_reason = models.CharField(_("close reason"), max_length=30, choices=CloseReason.choices, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    # Priority moves every day with DPD; its record is the scan run, not a history row a day.
    history = HistoricalRecords(excluded_fields=["priority", "updated_at"])

    class Meta:
        verbose_name = _("case")
        verbose_name_plural = _("cases")
        ordering = ["-priority", "id"]
        permissions = [
            ("reassign_case", _("Can reassign cases")),
            ("approve_referral", _("Can approve legal referrals")),
            ("run_scan", _("Can run the collections scan")),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["loan"],
                condition=Q(status="open"),
                name="case_one_open_per_loan",
                violation_error_message=_("This loan already has an open case."),
            ),
            models.CheckConstraint(condition=Q(status__in=["open", "closed"]), name="case_status_valid"),
            models.CheckConstraint(condition=Q(stage__in=StageChoices.values), name="case_stage_valid"),
            models.CheckConstraint(
                condition=(Q(status="open") & Q(closed_on__isnull=True) & Q(close_reason=""))
                | (
                    Q(status="closed")
                    & Q(closed_on__isnull=False)
                    & Q(
                        close_reason__in=[
                            "cured",
                            "restructured_performing",
                            "settled",
                            "paid_off",
                            "written_off",
                            "legal_concluded",
                        ]
                    )
                ),
                name="case_closed_iff_reason",
                violation_error_message=_(
                    "A closed case needs a closing date and reason; an open one has neither."
                ),
            ),  # fmt: skip
            models.CheckConstraint(
                condition=Q(closed_on__isnull=True) | Q(closed_on__gte=F("opened_on")),
                name="case_closed_after_opened",
            ),
            models.CheckConstraint(
                condition=Q(stage_entered_on__gte=F("opened_on")), name="case_stage_entered_after_opened"
            ),
        ]
        indexes = [
            # The dashboards: cases open during a period (cure rate, amount collected).
            models.Index(fields=["closed_on"], name="case_closed_on_idx"),
            models.Index(
                fields=["assignee", "-priority"], name="case_worklist_idx", condition=Q(status="open")
            ),
            models.Index(
                fields=["team", "-priority"], name="case_team_queue_idx", condition=Q(status="open")
            ),
            # The partner API's case list filtered by stage, in id order (a rare stage would otherwise
            # walk every case).
            models.Index(fields=["stage", "id"], name="case_open_stage_idx", condition=Q(status="open")),
        ]

    def __str__(self):
        return f"#{self.pk} {self.loan_id} {self.stage}"

    @property
    def is_open(self) -> bool:
        return self.status == self.Status.OPEN


class StageTransition(models.Model):
    """Every change of a case's stage, including opening (from nothing) and closing (to nothing)."""

    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="transitions")
    from_stage = models.CharField(_("from"), max_length=20, choices=StageChoices.choices, blank=True)
    to_stage = models.CharField(_("to"), max_length=20, choices=StageChoices.choices, blank=True)
    close_reason = models.CharField(
        _("close reason"), max_length=30, choices=Case.CloseReason.choices, blank=True
    )
    at = models.DateTimeField(_("at"))
    as_of = models.DateField(_("business date"))
    # NULL actor: the scan moved it; the run chunk names which scan.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("by"), on_delete=models.PROTECT, null=True, blank=True
    )
    scan_chunk = models.ForeignKey(
        "ScanChunk", on_delete=models.PROTECT, null=True, blank=True, related_name="transitions"
    )
    reason = models.CharField(_("reason"), max_length=300)

    class Meta:
        verbose_name = _("stage transition")
        verbose_name_plural = _("stage transitions")
        ordering = ["case_id", "at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(from_stage="") & ~Q(to_stage="") & ~Q(to_stage="legal_referral"))  # opened
                | (~Q(from_stage="") & Q(to_stage="") & ~Q(close_reason=""))  # closed
                | (
                    ~Q(from_stage="")
                    & ~Q(to_stage="")
                    & ~Q(from_stage=F("to_stage"))
                    & ~Q(from_stage="legal_referral")
                ),  # moved
                name="transition_move_allowed",
                violation_error_message=_("This stage move is not allowed."),
            ),  # fmt: skip
            models.CheckConstraint(
                condition=~Q(to_stage="legal_referral") | Q(actor__isnull=False),
                name="transition_referral_needs_a_person",
                violation_error_message=_("Only a supervisor's approval enters legal referral."),
            ),
            models.CheckConstraint(
                condition=Q(actor__isnull=False) | Q(scan_chunk__isnull=False),
                name="transition_has_an_actor",
            ),
            models.CheckConstraint(condition=~Q(reason=""), name="transition_reason_required"),
        ]

    def __str__(self):
        return f"{self.case_id}: {self.from_stage or '-'} -> {self.to_stage or '-'}"


class CaseHold(models.Model):
    """A hold freezes a case's escalation (it still steps down and closes as the loan pays)."""

    class Reason(models.TextChoices):
        DISPUTE = "dispute", _("dispute")
        BANKRUPTCY = "bankruptcy", _("bankruptcy")
        DECEASED = "deceased", _("deceased")
        LEGAL_REPRESENTATION = "legal_representation", _("legal representation")
        VULNERABILITY = "vulnerability", _("vulnerability")
        COMPLIANCE = "compliance", _("compliance hold")
        OTHER = "other", _("other")

    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="holds")
    reason = models.CharField(_("reason"), max_length=30, choices=Reason.choices)
    note = models.CharField(_("note"), max_length=500)
    until = models.DateField(_("until"), null=True, blank=True, help_text=_("Empty: until released."))
    set_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", verbose_name=_("set by")
    )
    set_at = models.DateTimeField(_("set at"))
    released_at = models.DateTimeField(_("released at"), null=True, blank=True)
    released_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("released by"),
    )

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("hold")
        verbose_name_plural = _("holds")
        constraints = [
            models.CheckConstraint(condition=~Q(note=""), name="hold_note_required"),
            models.CheckConstraint(
                condition=Q(released_at__isnull=True, released_by__isnull=True)
                | Q(released_at__isnull=False, released_by__isnull=False),
                name="hold_release_recorded",
            ),
        ]
        indexes = [
            models.Index(fields=["case"], name="hold_active_idx", condition=Q(released_at__isnull=True))
        ]

    def __str__(self):
        return f"{self.get_reason_display()} ({self.case_id})"


class PromiseToPay(models.Model):
    """A borrower's promise: an amount by a date. Open, it freezes escalation; the scan decides it
    kept (payments since it was made reach the amount) or broken (the date passed first)."""

    class Status(models.TextChoices):
        OPEN = "open", pgettext_lazy("promise status", "open")
        KEPT = "kept", _("kept")
        PARTLY_KEPT = "partly_kept", _("partly kept")
        BROKEN = "broken", _("broken")
        # The case closed for another reason (restructured, settled, written off) while it was open.
        CANCELLED = "cancelled", _("cancelled with the case")

    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="promises")
    # The total of the instalments, and the last instalment's date.
    amount = money_field(_("amount"), default=None)
    promised_date = models.DateField(_("pay by"))
    # Paid towards it (posted payments valued since it was made) when the scan decided it.
    paid_amount = money_field(_("paid towards it"))
    made_on = models.DateField(_("made on"))
    status = models.CharField(_("status"), max_length=12, choices=Status.choices, default=Status.OPEN)
    resolved_on = models.DateField(_("resolved on"), null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("promise to pay")
        verbose_name_plural = _("promises to pay")
        constraints = [
            models.UniqueConstraint(
                fields=["case"],
                condition=Q(status="open"),
                name="promise_one_open_per_case",
                violation_error_message=_("This case already has an open promise to pay."),
            ),
            models.CheckConstraint(condition=Q(amount__gt=0), name="promise_amount_positive"),
            models.CheckConstraint(
                condition=Q(promised_date__gte=F("made_on")), name="promise_date_not_before_made"
            ),
            models.CheckConstraint(
                condition=(Q(status="open") & Q(resolved_on__isnull=True))
                | (
                    Q(status__in=["kept", "partly_kept", "broken", "cancelled"])
                    & Q(resolved_on__isnull=False)
                ),
                name="promise_resolved_iff_decided",
            ),
        ]
        indexes = [
            # The dashboards' promise kept rate and productivity over a period.
            models.Index(fields=["promised_date"], name="promise_promised_date_idx"),
            models.Index(fields=["made_on"], name="promise_made_on_idx"),
        ]

    def __str__(self):
        return f"{self.amount} by {self.promised_date}"


class PromiseInstalment(models.Model):
    """One payment of a promise: an amount by a date. A one-off promise has a single instalment."""

    promise = models.ForeignKey(PromiseToPay, on_delete=models.CASCADE, related_name="instalments")
    number = models.PositiveSmallIntegerField(pgettext_lazy("instalment", "number"))
    amount = money_field(_("amount"), default=None)
    due_date = models.DateField(_("pay by"))

    class Meta:
        verbose_name = _("promise instalment")
        verbose_name_plural = _("promise instalments")
        ordering = ["promise", "number"]
        constraints = [
            models.UniqueConstraint(fields=["promise", "number"], name="promise_instalment_unique_number"),
            models.UniqueConstraint(fields=["promise", "due_date"], name="promise_instalment_unique_date"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="promise_instalment_amount_positive"),
            models.CheckConstraint(condition=Q(number__gte=1), name="promise_instalment_number_positive"),
        ]

    def __str__(self):
        return f"{self.amount} by {self.due_date}"


class DueReminder(models.Model):
    """A pre-due reminder owed to a loan flagged at risk: one per loan and due date, queued by the
    scan ``pre_due_reminder_days`` before the date; the notice channels deliver it."""

    loan = models.ForeignKey(Loan, on_delete=models.PROTECT, related_name="due_reminders")
    due_date = models.DateField(_("due date"))
    amount_due = money_field(_("amount due"))
    queued_on = models.DateField(_("queued on"))
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)

    class Meta:
        verbose_name = _("pre-due reminder")
        verbose_name_plural = _("pre-due reminders")
        constraints = [models.UniqueConstraint(fields=["loan", "due_date"], name="reminder_one_per_due_date")]

    def __str__(self):
        return f"{self.loan_id} {self.due_date}"


class ScanRun(models.Model):
    """One nightly scan for a business date. Its chunks are the units of work and of recovery."""

    class Status(models.TextChoices):
        RUNNING = "running", _("running")
        DONE = "done", _("done")

    as_of = models.DateField(_("business date"), unique=True)
    full = models.BooleanField(_("whole book"), default=False)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.RUNNING)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=1)
    started_at = models.DateTimeField(_("started at"))
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    class Meta:
        verbose_name = _("scan run")
        verbose_name_plural = _("scan runs")
        ordering = ["-as_of"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(status="running") & Q(finished_at__isnull=True))
                | (Q(status="done") & Q(finished_at__isnull=False)),
                name="scan_run_finished_iff_done",
            ),
        ]

    def __str__(self):
        return f"{self.as_of} ({self.status})"


class ScanChunk(models.Model):
    """A range of loan ids of one scan run, processed in one transaction (refresh, cases, events)."""

    class Status(models.TextChoices):
        PENDING = "pending", _("pending")
        DONE = "done", _("done")

    COUNTERS = (
        "loans_refreshed",
        "loans_changed",
        "cases_opened",
        "escalated",
        "deescalated",
        "closed",
        "referrals_recommended",
        "promises_kept",
        "promises_broken",
        "reminders_queued",
    )

    run = models.ForeignKey(ScanRun, on_delete=models.CASCADE, related_name="chunks")
    number = models.PositiveIntegerField(pgettext_lazy("scan chunk", "number"))
    first_loan_id = models.BigIntegerField(_("from loan id"))
    # NULL: no upper bound (the last chunk also takes loans booked after the run was planned).
    end_loan_id = models.BigIntegerField(_("to loan id (exclusive)"), null=True, blank=True)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.PENDING)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    seconds = models.FloatField(_("seconds"), null=True, blank=True)
    loans_refreshed = models.PositiveIntegerField(_("loans refreshed"), default=0)
    loans_changed = models.PositiveIntegerField(_("loans with new figures"), default=0)
    cases_opened = models.PositiveIntegerField(_("cases opened"), default=0)
    escalated = models.PositiveIntegerField(_("escalated"), default=0)
    deescalated = models.PositiveIntegerField(_("de-escalated"), default=0)
    closed = models.PositiveIntegerField(_("closed"), default=0)
    referrals_recommended = models.PositiveIntegerField(_("referrals recommended"), default=0)
    promises_kept = models.PositiveIntegerField(_("promises kept"), default=0)
    promises_broken = models.PositiveIntegerField(_("promises broken"), default=0)
    reminders_queued = models.PositiveIntegerField(_("reminders queued"), default=0)

    class Meta:
        verbose_name = _("scan chunk")
        verbose_name_plural = _("scan chunks")
        ordering = ["run", "number"]
        constraints = [
            models.UniqueConstraint(fields=["run", "number"], name="scan_chunk_unique_number"),
            models.CheckConstraint(
                condition=Q(end_loan_id__isnull=True) | Q(end_loan_id__gt=F("first_loan_id")),
                name="scan_chunk_range_valid",
            ),
            models.CheckConstraint(
                condition=(Q(status="pending") & Q(finished_at__isnull=True))
                | (Q(status="done") & Q(finished_at__isnull=False)),
                name="scan_chunk_finished_iff_done",
            ),
        ]

    def __str__(self):
        return f"{self.run.as_of} #{self.number}"


class OutboxEvent(models.Model):
    """An event for partner webhooks, written in the same transaction as the change it reports."""

    event_type = models.CharField(_("event type"), max_length=50)
    partner = models.ForeignKey("loans.Partner", on_delete=models.PROTECT, related_name="+")
    subject_id = models.BigIntegerField(_("subject id"))
    payload = models.JSONField(_("payload"))
    created_at = models.DateTimeField(_("created at"))
    delivered_at = models.DateTimeField(_("delivered at"), null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(_("delivery attempts"), default=0)

    class Meta:
        verbose_name = _("outbox event")
        verbose_name_plural = _("outbox events")
        ordering = ["id"]
        indexes = [
            models.Index(fields=["id"], name="outbox_undelivered_idx", condition=Q(delivered_at__isnull=True))
        ]
        constraints = [models.CheckConstraint(condition=~Q(event_type=""), name="outbox_type_required")]

    def __str__(self):
        return f"{self.event_type} {self.subject_id}"


# --- case work: contacts, notices, restructurings, legal referrals --------------------------------


class ContactOutcome(models.TextChoices):
    NO_ANSWER = "no_answer", _("no answer")
    BUSY = "busy", _("busy")
    WRONG_NUMBER = "wrong_number", _("wrong number")
    RIGHT_PARTY = "right_party", _("right-party contact")
    THIRD_PARTY = "third_party", _("third party")
    PROMISE_TO_PAY = "promise_to_pay", _("promise to pay")
    REFUSED_TO_PAY = "refused_to_pay", _("refused to pay")
    DISPUTE = "dispute", _("dispute")
    HARDSHIP = "hardship", _("hardship")
    CALLBACK_REQUESTED = "callback_requested", _("callback requested")


class CaseContact(models.Model):
    """A collector's contact on a case: the compliance log's attempt (with the decision taken before
    it) plus what only the case needs: the coded outcome, notes, the second member of staff and the
    recording of a field visit."""

    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="contacts")
    attempt = models.OneToOneField(
        "compliance.ContactAttempt", on_delete=models.PROTECT, related_name="case_contact"
    )
    outcome = models.CharField(_("outcome"), max_length=30, choices=ContactOutcome.choices)
    notes = models.TextField(_("notes"), blank=True)
    # A field visit: two staff and a recording (CBA 2026).
    second_staff = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("second member of staff"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    recording = models.FileField(_("recording"), upload_to="recordings/%Y/%m/", blank=True)
    recording_sha256 = models.CharField(_("recording SHA-256"), max_length=64, blank=True)
    callback_on = models.DateField(_("call back on"), null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("by"), on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("case contact")
        verbose_name_plural = _("case contacts")
        ordering = ["case", "-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(outcome__in=ContactOutcome.values), name="case_contact_outcome_valid"
            ),
            models.CheckConstraint(
                condition=Q(recording="") | ~Q(recording_sha256=""), name="case_contact_recording_hashed"
            ),
            models.CheckConstraint(
                condition=Q(second_staff__isnull=True) | ~Q(second_staff=F("created_by")),
                name="case_contact_two_different_staff",
                violation_error_message=_("The second member of staff must be someone else."),
            ),
        ]
        indexes = [
            # The dashboards' collector productivity over a period.
            models.Index(fields=["created_at"], name="case_contact_created_idx"),
        ]

    def __str__(self):
        return f"{self.case_id} {self.get_outcome_display()}"


class NoticeChannel(models.TextChoices):
    SMS = "sms", _("SMS")
    EMAIL = "email", _("e-mail")
    LETTER = "letter", _("letter")


class NoticeLanguage(models.TextChoices):
    ZH_HANS = "zh-hans", "简体中文"
    EN = "en", "English"


class NoticeTemplate(models.Model):
    """The text of a notice for one stage, channel and language. Every save is a new version (the
    history keeps the old ones); a sent notice keeps the version it was rendered from."""

    stage = models.CharField(_("stage"), max_length=20, choices=StageChoices.choices)
    channel = models.CharField(_("channel"), max_length=10, choices=NoticeChannel.choices)
    language = models.CharField(_("language"), max_length=10, choices=NoticeLanguage.choices)
    version = models.PositiveIntegerField(_("version"), default=1)
    subject = models.CharField(_("subject"), max_length=200, blank=True)
    body = models.TextField(_("body"))
    is_active = models.BooleanField(_("active"), default=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("notice template")
        verbose_name_plural = _("notice templates")
        ordering = ["stage", "channel", "language"]
        constraints = [
            models.UniqueConstraint(
                fields=["stage", "channel", "language"],
                name="notice_template_one_per_stage_channel_language",
                violation_error_message=_(
                    "There is already a template for this stage, channel and language."
                ),
            ),
            models.CheckConstraint(condition=Q(stage__in=StageChoices.values), name="notice_template_stage"),
            models.CheckConstraint(
                condition=Q(channel__in=NoticeChannel.values), name="notice_template_channel"
            ),
            models.CheckConstraint(
                condition=Q(language__in=NoticeLanguage.values), name="notice_template_language"
            ),
            models.CheckConstraint(condition=~Q(body=""), name="notice_template_body_required"),
            models.CheckConstraint(
                condition=Q(channel="sms") | ~Q(subject=""), name="notice_template_subject_required"
            ),
        ]

    def __str__(self):
        return f"{self.get_stage_display()} / {self.get_channel_display()} / {self.language} v{self.version}"


class Notice(models.Model):
    """A notice to a borrower: queued (by the scan on stage entry, or by a person), then sent with its
    rendered text frozen here, or refused by the contact rules, or failed in delivery."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("queued")
        SENT = "sent", pgettext_lazy("notice status", "sent")
        REFUSED = "refused", _("refused by the contact rules")
        FAILED = "failed", _("delivery failed")

    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="notices")
    stage = models.CharField(_("stage"), max_length=20, choices=StageChoices.choices)
    channel = models.CharField(_("channel"), max_length=10, choices=NoticeChannel.choices)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.QUEUED)
    queued_on = models.DateField(_("queued on"))
    # Set when rendered and sent: the template version and the text exactly as the borrower got it.
    template = models.ForeignKey(
        NoticeTemplate, on_delete=models.PROTECT, null=True, blank=True, related_name="notices"
    )
    template_version = models.PositiveIntegerField(_("template version"), null=True, blank=True)
    language = models.CharField(_("language"), max_length=10, choices=NoticeLanguage.choices, blank=True)
    contact_point = models.ForeignKey(
        "loans.ContactPoint", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    subject = models.CharField(_("subject"), max_length=300, blank=True)
    body = models.TextField(_("body"), blank=True)
    figures = models.JSONField(_("figures"), default=dict, blank=True)
    attempt = models.OneToOneField(
        "compliance.ContactAttempt", on_delete=models.PROTECT, null=True, blank=True, related_name="notice"
    )
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    # Why it was refused (the contact rules' reason codes) or why delivery failed.
    reason_codes = models.JSONField(_("reason codes"), default=list, blank=True)
    failure = models.CharField(_("failure"), max_length=500, blank=True)
    # A queued notice the contact rules hold back until a moment (quiet hours end): not tried before.
    not_before = models.DateTimeField(_("not before"), null=True, blank=True)
    provider_ref = models.CharField(_("provider reference"), max_length=200, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("notice")
        verbose_name_plural = _("notices")
        ordering = ["-queued_on", "-id"]
        constraints = [
            # The scan queues a stage's notices once per case, stage entry and channel.
            models.UniqueConstraint(
                fields=["case", "stage", "channel", "queued_on"],
                condition=Q(created_by__isnull=True),
                name="notice_scan_queues_once",
            ),
            models.CheckConstraint(
                condition=Q(channel__in=NoticeChannel.values), name="notice_channel_valid"
            ),
            models.CheckConstraint(
                condition=Q(status__in=["queued", "sent", "refused", "failed"]), name="notice_status_valid"
            ),
            models.CheckConstraint(
                condition=~Q(status="sent")
                | (
                    Q(sent_at__isnull=False)
                    & Q(template__isnull=False)
                    & Q(template_version__isnull=False)
                    & ~Q(body="")
                ),
                name="notice_sent_is_frozen",
                violation_error_message=_("A sent notice keeps its template version and its text."),
            ),
        ]
        indexes = [models.Index(fields=["queued_on"], name="notice_queued_idx", condition=Q(status="queued"))]

    def __str__(self):
        return f"{self.case_id} {self.stage} {self.channel} ({self.status})"


class Restructuring(models.Model):
    """A change to a loan's terms, proposed by a collector and decided by a supervisor who did not
    propose it (maker-checker). Approval writes a new schedule version."""

    class Kind(models.TextChoices):
        TERM_EXTENSION = "term_extension", _("term extension")
        RATE_REDUCTION = "rate_reduction", _("rate reduction")
        PENALTY_WAIVER = "penalty_waiver", _("penalty waiver")
        PAYMENT_HOLIDAY = "payment_holiday", _("payment holiday")
        SETTLEMENT = "settlement", _("settlement (discounted payoff)")

    class Status(models.TextChoices):
        PROPOSED = "proposed", _("proposed")
        APPROVED = "approved", _("approved")
        REJECTED = "rejected", _("rejected")
        WITHDRAWN = "withdrawn", _("withdrawn")

    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="restructurings")
    loan = models.ForeignKey(Loan, on_delete=models.PROTECT, related_name="restructurings")
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.PROPOSED)
    # The terms asked for; which apply depends on the kind.
    new_term = models.PositiveSmallIntegerField(_("new number of instalments"), null=True, blank=True)
    new_annual_rate = models.DecimalField(
        _("new annual rate"), max_digits=9, decimal_places=6, null=True, blank=True
    )
    holiday_periods = models.PositiveSmallIntegerField(_("payment holiday (periods)"), null=True, blank=True)
    settlement_amount = money_field(_("settlement amount"), null=True, blank=True, default=None)
    first_due_date = models.DateField(_("first due date of the new schedule"))
    # What is forgiven on approval (penalty, interest and fees in arrears, or a settlement's discount).
    waived_amount = money_field(_("amount waived"))
    reason = models.TextField(_("why"))
    # The schedule as it stood and as proposed, frozen at proposal for the approver to compare:
    # {"installment": .., "total_cost": .., "end_date": .., "rows": [...]} each.
    current_summary = models.JSONField(_("current schedule"))
    proposed_summary = models.JSONField(_("proposed schedule"))
    proposed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("proposed by"), on_delete=models.PROTECT, related_name="+"
    )
    proposed_at = models.DateTimeField(_("proposed at"))
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("decided by"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    decision_reason = models.TextField(_("decision reason"), blank=True)
    schedule_version = models.PositiveSmallIntegerField(_("schedule version written"), null=True, blank=True)

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("restructuring")
        verbose_name_plural = _("restructurings")
        ordering = ["-proposed_at"]
        permissions = [
            ("approve_restructuring", _("Can approve restructurings")),
            ("approve_large_waiver", _("Can approve waivers above the supervisor limit")),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["case"],
                condition=Q(status="proposed"),
                name="restructuring_one_proposed_per_case",
                violation_error_message=_("This case already has a restructuring waiting for a decision."),
            ),
            models.CheckConstraint(
                condition=Q(
                    kind__in=[
                        "term_extension",
                        "rate_reduction",
                        "penalty_waiver",
                        "payment_holiday",
                        "settlement",
                    ]
                ),
                name="restructuring_kind_valid",
            ),  # fmt: skip
            models.CheckConstraint(
                condition=Q(decided_by__isnull=True) | ~Q(decided_by=F("proposed_by")),
                name="restructuring_four_eyes",
                violation_error_message=_("The person who proposed a restructuring cannot decide it."),
            ),
            models.CheckConstraint(
                condition=(Q(status__in=["proposed", "withdrawn"]) & Q(decided_by__isnull=True))
                | (
                    Q(status__in=["approved", "rejected"])
                    & Q(decided_by__isnull=False)
                    & Q(decided_at__isnull=False)
                    & ~Q(decision_reason="")
                ),
                name="restructuring_decided_iff_decision",
            ),  # fmt: skip
            models.CheckConstraint(
                condition=~Q(status="approved") | Q(schedule_version__isnull=False),
                name="restructuring_approved_writes_schedule",
            ),
            models.CheckConstraint(
                condition=Q(waived_amount__gte=0), name="restructuring_waiver_not_negative"
            ),
            models.CheckConstraint(
                condition=~Q(kind="settlement") | Q(settlement_amount__gt=0),
                name="restructuring_settlement_amount",
            ),
            models.CheckConstraint(condition=~Q(reason=""), name="restructuring_reason_required"),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} ({self.get_status_display()}) #{self.case_id}"


class LegalReferral(models.Model):
    """A case sent to lawyers: requested by a collector or supervisor, approved by a supervisor who did
    not request it, then followed through filing and judgment to its end."""

    class Status(models.TextChoices):
        REQUESTED = "requested", _("requested")
        REJECTED = "rejected", _("rejected")
        REFERRED = "referred", _("referred")
        FILED = "filed", _("filed")
        JUDGMENT = "judgment", _("judgment")
        SETTLED = "settled", _("settled")
        WITHDRAWN = "withdrawn", _("withdrawn")

    ACTIVE = ("requested", "referred", "filed", "judgment")

    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="referrals")
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.REQUESTED)
    reason = models.TextField(_("why"))
    # UK CONC 7.3 / EU CCD art. 35: forbearance considered before legal action.
    forbearance_considered = models.TextField(_("forbearance considered"))
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("requested by"), on_delete=models.PROTECT, related_name="+"
    )
    requested_at = models.DateTimeField(_("requested at"))
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("decided by"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    decision_reason = models.TextField(_("decision reason"), blank=True)
    referred_on = models.DateField(_("referred on"), null=True, blank=True)
    filed_on = models.DateField(_("filed on"), null=True, blank=True)
    judgment_on = models.DateField(_("judgment on"), null=True, blank=True)
    concluded_on = models.DateField(_("concluded on"), null=True, blank=True)
    outcome = models.TextField(_("outcome"), blank=True)
    evidence_pack = models.FileField(_("evidence pack"), upload_to="evidence/%Y/%m/", blank=True)
    evidence_sha256 = models.CharField(_("evidence pack SHA-256"), max_length=64, blank=True)

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("legal referral")
        verbose_name_plural = _("legal referrals")
        ordering = ["-requested_at"]
        permissions = [("download_evidence_pack", _("Can download legal evidence packs"))]
        constraints = [
            models.UniqueConstraint(
                fields=["case"],
                condition=Q(status__in=["requested", "referred", "filed", "judgment"]),
                name="referral_one_active_per_case",
                violation_error_message=_("This case already has a legal referral under way."),
            ),
            models.CheckConstraint(
                condition=Q(
                    status__in=[
                        "requested",
                        "rejected",
                        "referred",
                        "filed",
                        "judgment",
                        "settled",
                        "withdrawn",
                    ]
                ),
                name="referral_status_valid",
            ),  # fmt: skip
            models.CheckConstraint(
                condition=Q(decided_by__isnull=True) | ~Q(decided_by=F("requested_by")),
                name="referral_four_eyes",
                violation_error_message=_("The person who requested a referral cannot approve it."),
            ),
            models.CheckConstraint(
                condition=Q(status="requested") | Q(decided_by__isnull=False) | Q(status="withdrawn"),
                name="referral_decided_after_request",
            ),
            models.CheckConstraint(
                condition=Q(status__in=["requested", "rejected", "withdrawn"])
                | (Q(referred_on__isnull=False) & ~Q(evidence_sha256="")),
                name="referral_referred_has_evidence",
            ),
            models.CheckConstraint(
                condition=Q(filed_on__isnull=True) | Q(filed_on__gte=F("referred_on")),
                name="referral_filed_after_referred",
            ),
            models.CheckConstraint(
                condition=Q(judgment_on__isnull=True) | Q(judgment_on__gte=F("filed_on")),
                name="referral_judgment_after_filed",
            ),
            models.CheckConstraint(condition=~Q(reason=""), name="referral_reason_required"),
        ]

    def __str__(self):
        return f"{self.case_id} {self.get_status_display()}"
