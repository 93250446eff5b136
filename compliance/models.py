"""Compliance: jurisdiction contact rules, borrower flags and holds, the contact log the rules count,
supervisor overrides, screening lexicons and flags, and the hash-chained audit log.

``compliance`` may import ``loans`` and never imports ``debt_collections``: the workflow calls it
through plain functions (``compliance.contact.check_contact``, ``compliance.audit.audit_record``).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy
from simple_history.models import HistoricalRecords

from loans.models import Borrower, ContactPoint, Loan


class Channel(models.TextChoices):
    CALL = "call", _("phone call")
    SMS = "sms", _("SMS")
    EMAIL = "email", _("e-mail")
    LETTER = "letter", _("letter")
    VISIT = "visit", _("field visit")


class Direction(models.TextChoices):
    OUTBOUND = "outbound", _("outbound")
    INBOUND = "inbound", _("inbound")


class Purpose(models.TextChoices):
    COLLECTION = "collection", _("collection")
    # A call to a third party to find the borrower: never mentions the debt.
    LOCATION = "location", _("locating the borrower")
    # After a cease-communication request only these may still go out (Reg F 1006.6(c)).
    CEASE_CONFIRMATION = "cease_confirmation", _("confirming that collection stops")
    REMEDY_NOTICE = "remedy_notice", _("notice of a remedy that may or will be used")
    # Anything that threatens or starts legal action.
    LEGAL = "legal", _("legal action")


class JurisdictionProfile(models.Model):
    """The contact rules of one jurisdiction. A borrower's region ("CN", "US-NY", "GB-SCT") picks the
    profile whose region codes include the region or its country."""

    code = models.SlugField(_("code"), max_length=20, unique=True)
    name = models.CharField(_("name"), max_length=100)
    # Comma-separated ISO 3166 codes: "CN" or "GB,UK"; a subdivision ("US-NY") falls back to its country.
    regions = models.CharField(_("regions"), max_length=200)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("jurisdiction profile")
        verbose_name_plural = _("jurisdiction profiles")
        ordering = ["code"]
        constraints = [models.CheckConstraint(condition=~Q(regions=""), name="profile_regions_required")]

    def __str__(self):
        return self.name

    @property
    def region_codes(self) -> list[str]:
        return [code.strip().upper() for code in self.regions.split(",") if code.strip()]


class Rule(models.TextChoices):
    QUIET_HOURS = "quiet_hours", _("quiet hours (borrower's local time)")
    DAILY_CONNECTED_CAP = "daily_connected_cap", _("answered calls a day per borrower")
    DAILY_ATTEMPT_CAP = "daily_attempt_cap", _("unanswered calls a day per contact method")
    SEVEN_IN_SEVEN = "seven_in_seven", _("calls in 7 consecutive days")
    POST_CONVERSATION_COOLDOWN = "post_conversation_cooldown", _("days without calls after a conversation")
    THIRD_PARTY = "third_party", _("third-party contact")
    FIELD_VISIT = "field_visit", _("field visits")
    CEASE_COMMUNICATION = "cease_communication", _("cease communication")
    TIME_BARRED = "time_barred", _("time-barred debt")


class ThirdPartyMode(models.TextChoices):
    # China: only when the borrower is unreachable (invalid number, or N failed attempts), deceased or
    # lacks capacity; never told of the debt.
    UNREACHABLE_ONLY = "unreachable_only", _("only when the borrower is unreachable")
    # US: location calls (no debt mentioned); debt talk only with spouse, guardian, executor, attorney.
    PERMITTED_ROLES = "permitted_roles", _("location calls; the debt only with permitted roles")
    # UK: third parties never learn of the debt; location only.
    LOCATION_ONLY = "location_only", _("location calls only")


class ContactRule(models.Model):
    """One rule of a profile, with the source it comes from. ``limit`` is a count or a number of days;
    ``start``/``end`` a local time window; ``mode`` a choice for rules that have one."""

    profile = models.ForeignKey(JurisdictionProfile, on_delete=models.CASCADE, related_name="rules")
    rule = models.CharField(_("rule"), max_length=40, choices=Rule.choices)
    enabled = models.BooleanField(_("enabled"), default=True)
    limit = models.PositiveSmallIntegerField(_("limit"), null=True, blank=True)
    start = models.TimeField(pgettext_lazy("time window", "from"), null=True, blank=True)
    end = models.TimeField(pgettext_lazy("time window", "until"), null=True, blank=True)
    mode = models.CharField(_("mode"), max_length=30, blank=True)
    citation = models.CharField(_("citation"), max_length=300)

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("contact rule")
        verbose_name_plural = _("contact rules")
        ordering = ["profile", "rule"]
        constraints = [
            models.UniqueConstraint(
                fields=["profile", "rule"],
                name="contact_rule_once_per_profile",
                violation_error_message=_("This profile has this rule already."),
            ),
            models.CheckConstraint(
                condition=~Q(citation=""),
                name="contact_rule_citation_required",
                violation_error_message=_("Every rule cites its source."),
            ),
            models.CheckConstraint(
                condition=~Q(rule="quiet_hours") | (Q(start__isnull=False) & Q(end__isnull=False)),
                name="contact_rule_quiet_hours_window",
                violation_error_message=_("Quiet hours need a start and an end."),
            ),
            models.CheckConstraint(
                condition=~Q(
                    rule__in=[
                        "daily_connected_cap",
                        "daily_attempt_cap",
                        "seven_in_seven",
                        "post_conversation_cooldown",
                    ]
                )
                | Q(limit__gte=1),
                name="contact_rule_limit_required",
                violation_error_message=_("This rule needs a limit of at least 1."),
            ),  # fmt: skip
        ]

    def __str__(self):
        return f"{self.profile.code}: {self.get_rule_display()}"


class BorrowerFlag(models.Model):
    """A hold or flag on a borrower, with who set it, when, why and until when."""

    class Kind(models.TextChoices):
        DISPUTE = "dispute", _("dispute")
        BANKRUPTCY = "bankruptcy", _("bankruptcy")
        DECEASED = "deceased", _("deceased")
        LEGAL_REPRESENTATION = "legal_representation", _("represented by a lawyer")
        VULNERABLE = "vulnerable", _("vulnerable")
        LACKS_CAPACITY = "lacks_capacity", _("lacks capacity")
        CEASE_COMMUNICATION = "cease_communication", _("asked to cease communication")
        DO_NOT_CONTACT = "do_not_contact", _("do not contact")
        LEGAL_HOLD = "legal_hold", _("legal hold (keep all records)")

    borrower = models.ForeignKey(Borrower, on_delete=models.PROTECT, related_name="flags")
    kind = models.CharField(_("kind"), max_length=30, choices=Kind.choices)
    reason = models.CharField(_("reason"), max_length=500)
    until = models.DateField(_("until"), null=True, blank=True, help_text=_("Empty: until released."))
    set_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    set_at = models.DateTimeField(_("set at"))
    released_at = models.DateTimeField(_("released at"), null=True, blank=True)
    released_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("borrower flag")
        verbose_name_plural = _("borrower flags")
        ordering = ["-set_at"]
        constraints = [
            models.CheckConstraint(condition=~Q(reason=""), name="flag_reason_required"),
            models.CheckConstraint(
                condition=Q(released_at__isnull=True, released_by__isnull=True)
                | Q(released_at__isnull=False, released_by__isnull=False),
                name="flag_release_recorded",
            ),
        ]
        indexes = [
            models.Index(
                fields=["borrower", "kind"], name="flag_active_idx", condition=Q(released_at__isnull=True)
            )
        ]

    def __str__(self):
        return f"{self.get_kind_display()} ({self.borrower_id})"


# Flags that hold a borrower's cases where they are: escalation waits (DESIGN.md section 5 and 6).
ESCALATION_HOLDS = (
    BorrowerFlag.Kind.DISPUTE,
    BorrowerFlag.Kind.BANKRUPTCY,
    BorrowerFlag.Kind.DECEASED,
    BorrowerFlag.Kind.LEGAL_REPRESENTATION,
    BorrowerFlag.Kind.VULNERABLE,
)


class ChannelOptOut(models.Model):
    """The borrower asked not to be contacted on a channel, at one address or on every one."""

    borrower = models.ForeignKey(Borrower, on_delete=models.PROTECT, related_name="channel_opt_outs")
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices)
    contact_point = models.ForeignKey(
        ContactPoint, on_delete=models.PROTECT, null=True, blank=True, related_name="opt_outs",
        help_text=_("Empty: the channel at every address."),
    )  # fmt: skip
    at = models.DateTimeField(_("at"))
    note = models.CharField(_("note"), max_length=300, blank=True)

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("channel opt-out")
        verbose_name_plural = _("channel opt-outs")

    def __str__(self):
        return f"{self.borrower_id} {self.channel}"


class ContactOverride(models.Model):
    """A supervisor lets one denied contact go ahead, with a written reason. Used once."""

    borrower = models.ForeignKey(Borrower, on_delete=models.PROTECT, related_name="contact_overrides")
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices)
    contact_point = models.ForeignKey(
        ContactPoint, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    reasons = models.JSONField(_("reason codes overridden"))
    reason = models.CharField(_("why"), max_length=500)
    granted_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    granted_at = models.DateTimeField(_("granted at"))
    valid_until = models.DateTimeField(_("valid until"))
    used_at = models.DateTimeField(_("used at"), null=True, blank=True)

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("contact override")
        verbose_name_plural = _("contact overrides")
        constraints = [
            models.CheckConstraint(condition=~Q(reason=""), name="override_reason_required"),
            models.CheckConstraint(
                condition=Q(valid_until__gt=models.F("granted_at")), name="override_window"
            ),
        ]

    def __str__(self):
        return f"{self.borrower_id} {self.channel} {self.reasons}"


class OverrideRequest(models.Model):
    """A collector refused by the contact rules asks a supervisor to let that contact go ahead.

    Granting creates the ``ContactOverride`` (used once, for a limited time); declining records why.
    The requester never decides their own request.
    """

    class Status(models.TextChoices):
        PENDING = "pending", pgettext_lazy("override request", "pending")
        GRANTED = "granted", pgettext_lazy("override request", "granted")
        DECLINED = "declined", pgettext_lazy("override request", "declined")

    borrower = models.ForeignKey(Borrower, on_delete=models.PROTECT, related_name="override_requests")
    loan = models.ForeignKey(Loan, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices)
    contact_point = models.ForeignKey(
        ContactPoint, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    reasons = models.JSONField(_("reason codes to override"))
    note = models.CharField(_("why the contact is needed"), max_length=500)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    requested_at = models.DateTimeField(_("requested at"))
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.PENDING)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    decision_reason = models.CharField(_("decision reason"), max_length=500, blank=True)
    override = models.OneToOneField(
        ContactOverride, on_delete=models.PROTECT, null=True, blank=True, related_name="request"
    )

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("override request")
        verbose_name_plural = _("override requests")
        ordering = ["-requested_at"]
        constraints = [
            models.CheckConstraint(condition=~Q(note=""), name="override_request_note_required"),
            models.CheckConstraint(
                condition=Q(status__in=["pending", "granted", "declined"]),
                name="override_request_status_valid",
            ),
            models.CheckConstraint(
                condition=(Q(status="pending") & Q(decided_at__isnull=True) & Q(decided_by__isnull=True))
                | (~Q(status="pending") & Q(decided_at__isnull=False) & Q(decided_by__isnull=False)),
                name="override_request_decided_iff_not_pending",
            ),
            models.CheckConstraint(
                condition=Q(status="granted", override__isnull=False)
                | (~Q(status="granted") & Q(override__isnull=True)),
                name="override_request_granted_iff_override",
            ),
            models.CheckConstraint(
                condition=Q(decided_by__isnull=True) | ~Q(decided_by=models.F("requested_by")),
                name="override_request_not_own",
            ),
        ]
        indexes = [
            models.Index(
                fields=["requested_at"], name="override_request_pending_idx", condition=Q(status="pending")
            )
        ]

    def __str__(self):
        return f"{self.borrower_id} {self.channel} {self.reasons} ({self.status})"


class ContactAttempt(models.Model):
    """Every contact with a borrower or about them, outbound or inbound: what the rules count.

    ``connected``: the call reached the number (it rang, or was answered); ``answered``: a person
    spoke; ``right_party``: that person was the borrower (a conversation, in Reg F's words).
    """

    borrower = models.ForeignKey(Borrower, on_delete=models.PROTECT, related_name="contact_attempts")
    loan = models.ForeignKey(Loan, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    contact_point = models.ForeignKey(
        ContactPoint, on_delete=models.PROTECT, null=True, blank=True, related_name="attempts"
    )
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices)
    direction = models.CharField(_("direction"), max_length=10, choices=Direction.choices)
    purpose = models.CharField(
        _("purpose"), max_length=30, choices=Purpose.choices, default=Purpose.COLLECTION
    )
    at = models.DateTimeField(_("at"))
    connected = models.BooleanField(_("connected"), default=False)
    answered = models.BooleanField(_("answered"), default=False)
    right_party = models.BooleanField(_("right party"), default=False)
    # Reg F 1006.14(b)(3): calls with the consumer's prior consent given directly, within 7 days.
    consented = models.BooleanField(_("with the borrower's consent"), default=False)
    outcome = models.CharField(_("outcome"), max_length=30, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    override = models.ForeignKey(
        ContactOverride, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    # The compliance decision taken before the contact, frozen with it.
    decision = models.JSONField(_("compliance decision"), default=dict, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("contact attempt")
        verbose_name_plural = _("contact attempts")
        ordering = ["-at"]
        indexes = [models.Index(fields=["borrower", "at"], name="attempt_borrower_at_idx")]
        constraints = [
            models.CheckConstraint(
                condition=Q(answered=False) | Q(connected=True), name="attempt_answered_connected"
            ),
            models.CheckConstraint(
                condition=Q(right_party=False) | Q(answered=True), name="attempt_right_party_answered"
            ),
        ]

    def __str__(self):
        return f"{self.borrower_id} {self.channel} {self.at:%Y-%m-%d %H:%M}"


class LexiconTerm(models.Model):
    """A phrase (or regular expression) that screening looks for, by category and language."""

    class Category(models.TextChoices):
        VIOLENCE = "violence", _("threat of violence")
        ARREST = "arrest", _("threat of arrest or prosecution")
        INSULT = "insult", _("insult or obscenity")
        IMPERSONATION = "impersonation", _("impersonating police, courts, lawyers or government")
        THIRD_PARTY_PRESSURE = "third_party_pressure", _("telling family, friends or employer as pressure")
        FALSE_LEGAL_CLAIM = "false_legal_claim", _("false legal claim")

    class Language(models.TextChoices):
        ZH = "zh", _("Chinese")
        EN = "en", _("English")

    category = models.CharField(_("category"), max_length=30, choices=Category.choices)
    language = models.CharField(_("language"), max_length=5, choices=Language.choices)
    phrase = models.CharField(_("phrase"), max_length=200)
    is_regex = models.BooleanField(_("regular expression"), default=False)
    is_active = models.BooleanField(_("active"), default=True)
    note = models.CharField(_("note"), max_length=300, blank=True)

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("lexicon term")
        verbose_name_plural = _("lexicon terms")
        ordering = ["language", "category", "phrase"]
        constraints = [
            models.UniqueConstraint(fields=["language", "phrase"], name="lexicon_phrase_unique"),
            models.CheckConstraint(condition=~Q(phrase=""), name="lexicon_phrase_required"),
        ]

    def __str__(self):
        return self.phrase


class ScreeningFlag(models.Model):
    """A free-text note that matched the lexicon, waiting for a compliance officer's review."""

    source = models.CharField(_("source"), max_length=50)  # e.g. "contact_attempt"
    source_id = models.CharField(_("source id"), max_length=50)
    excerpt = models.TextField(_("text"))
    matches = models.JSONField(_("matches"))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    reviewed_at = models.DateTimeField(_("reviewed at"), null=True, blank=True)
    review_note = models.CharField(_("review note"), max_length=500, blank=True)

    class Meta:
        verbose_name = _("screening flag")
        verbose_name_plural = _("screening flags")
        ordering = ["-created_at"]
        indexes = [
            models.Index(
                fields=["created_at"], name="flag_unreviewed_idx", condition=Q(reviewed_at__isnull=True)
            )
        ]

    def __str__(self):
        return f"{self.source} {self.source_id}"


class AuditEventType(models.TextChoices):
    LOGIN = "login", _("login")
    LOGIN_FAILED = "login_failed", _("failed login")
    PII_REVEAL = "pii_reveal", _("personal data revealed")
    EXPORT = "export", _("export")
    DATA_SUBJECT_EXPORT = "data_subject_export", _("data-subject export")
    STAGE_CHANGE = "stage_change", _("stage change")
    SCAN_RUN = "scan_run", _("collections scan")
    APPROVAL = "approval", _("approval")
    REASSIGNMENT = "reassignment", _("reassignment")
    OVERRIDE = "override", _("contact rule override")
    FLAG_SET = "flag_set", _("borrower flag set")
    FLAG_RELEASED = "flag_released", _("borrower flag released")
    RULE_EDIT = "rule_edit", _("rule or policy edited")
    TEMPLATE_EDIT = "template_edit", _("template edited")
    LEXICON_EDIT = "lexicon_edit", _("lexicon edited")
    SCREENING_REVIEW = "screening_review", _("flagged note reviewed")
    RETENTION = "retention", _("retention purge")
    RESTRUCTURING = "restructuring", _("restructuring proposed or withdrawn")
    LEGAL_REFERRAL = "legal_referral", _("legal referral step")
    API_KEY = "api_key", _("partner API key created or revoked")


class AuditQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise PermissionError("audit events are append-only")

    def delete(self):
        raise PermissionError("audit events are append-only")


class AuditEvent(models.Model):
    """Append-only, hash-chained: each row carries the hash of the one before. Written by services in
    the same transaction as what it records (``compliance.audit.audit_record``); never updated or
    deleted (the ORM refuses, and on PostgreSQL a trigger refuses)."""

    event_type = models.CharField(_("event"), max_length=30, choices=AuditEventType.choices)
    at = models.DateTimeField(_("at"), db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    # Who, as text too: the username at the time (or "system", "scan"), kept if the user is renamed.
    actor_label = models.CharField(_("actor"), max_length=150)
    subject_type = models.CharField(_("subject type"), max_length=50, blank=True)
    subject_id = models.CharField(_("subject id"), max_length=50, blank=True)
    details = models.JSONField(_("details"), default=dict)
    # Unique: two events can never follow the same one, so the chain cannot fork.
    prev_hash = models.CharField(_("previous hash"), max_length=64, unique=True)
    hash = models.CharField(_("hash"), max_length=64, unique=True)

    Type = AuditEventType
    objects = AuditQuerySet.as_manager()

    class Meta:
        verbose_name = _("audit event")
        verbose_name_plural = _("audit events")
        permissions = [
            ("reveal_pii", _("Can reveal national ID numbers and phone numbers")),
            ("export_personal_data", _("Can export everything held on a borrower")),
            ("override_contact_rules", _("Can override a denied contact")),
            ("review_screening_flags", _("Can review flagged notes")),
        ]
        ordering = ["id"]
        indexes = [models.Index(fields=["subject_type", "subject_id"], name="audit_subject_idx")]
        constraints = [
            models.CheckConstraint(condition=Q(event_type__in=AuditEventType.values), name="audit_type_valid")
        ]

    def __str__(self):
        return f"#{self.pk} {self.event_type} {self.subject_type}:{self.subject_id}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise PermissionError("audit events are append-only")
        return super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("audit events are append-only")
