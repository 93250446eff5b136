"""Contact rules that enforce: ``check_contact`` decides, before any contact, whether it may happen.

The borrower's region picks a jurisdiction profile (CN, US, UK as data); its rules, the borrower's
flags, opt-outs and the contact attempts already logged decide. The decision carries every reason
code that applies (not just the first), each with the rule's citation, and when contact becomes
allowed next (None when only a person can lift the bar). Missing data denies: no time zone, no
region, a region without a profile. Bad input (an unknown channel, a naive time, a contact point of
another borrower) is a ``ValidationError``.

Days are the borrower's local calendar days (``zoneinfo``, so a US day around a DST change is 23 or
25 hours long), and quiet hours are local wall-clock times.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from compliance.audit import audit_record
from compliance.models import (
    AuditEventType,
    BorrowerFlag,
    Channel,
    ChannelOptOut,
    ContactAttempt,
    ContactOverride,
    ContactRule,
    Direction,
    JurisdictionProfile,
    Purpose,
    Rule,
    ThirdPartyMode,
)
from loans.exceptions import field_error
from loans.models import Borrower, ContactPoint, Loan

# Which contact point kind each channel needs.
CHANNEL_KIND = {
    Channel.CALL: ContactPoint.Kind.PHONE,
    Channel.SMS: ContactPoint.Kind.PHONE,
    Channel.EMAIL: ContactPoint.Kind.EMAIL,
    Channel.LETTER: ContactPoint.Kind.ADDRESS,
    Channel.VISIT: ContactPoint.Kind.ADDRESS,
}
# Channels that reach someone at a moment (quiet hours apply); a letter does not.
TIMED_CHANNELS = {Channel.CALL, Channel.SMS, Channel.EMAIL, Channel.VISIT}
# Purposes still allowed after a cease-communication request (Reg F 1006.6(c)).
CEASE_PURPOSES = {Purpose.CEASE_CONFIRMATION, Purpose.REMEDY_NOTICE}
# US: the only third parties the debt may be discussed with (Reg F 1006.6(d)(1)); an attorney too.
PERMITTED_THIRD_PARTY_ROLES = {
    "spouse",
    "guardian",
    "executor",
    "administrator",
    "attorney",
    "lawyer",
    "parent",
}
# How far back "3 failed attempts" (China: borrower unreachable) looks.
UNREACHABLE_WINDOW_DAYS = 7
LOOKBACK_DAYS = 15

# Bars a supervisor may not lift: the law, not an operational limit, forbids the contact.
NOT_OVERRIDABLE = frozenset(
    {
        "missing_timezone", "missing_region", "unknown_region", "do_not_contact", "bankruptcy", "deceased",
        "legal_representation", "cease_communication", "dispute_hold", "time_barred", "channel_opt_out",
        "no_consent", "vulnerable_no_visit", "invalid_contact_point",
    }
)  # fmt: skip

FLAG_CODES = {
    BorrowerFlag.Kind.DO_NOT_CONTACT: "do_not_contact",
    BorrowerFlag.Kind.DISPUTE: "dispute_hold",
    BorrowerFlag.Kind.BANKRUPTCY: "bankruptcy",
}


class ContactDenied(ValidationError):
    """A contact the rules refuse; ``decision`` says why."""

    def __init__(self, decision: ContactDecision):
        self.decision = decision
        super().__init__(
            {"contact": [_("Contact not allowed: %(codes)s.") % {"codes": ", ".join(decision.reasons)}]},
        )


@dataclass(frozen=True)
class Reason:
    code: str
    citation: str
    # When this bar lifts by itself (None: only a person or new data can lift it).
    lifts_at: datetime | None = None


@dataclass(frozen=True)
class ContactDecision:
    allowed: bool
    reasons: tuple[str, ...]
    details: tuple[Reason, ...] = ()
    next_allowed_at: datetime | None = None
    profile: str | None = None
    local_time: datetime | None = None
    override_id: int | None = None
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {
            "allowed": self.allowed,
            "reasons": list(self.reasons),
            "citations": {r.code: r.citation for r in self.details},
            "next_allowed_at": self.next_allowed_at.isoformat() if self.next_allowed_at else None,
            "profile": self.profile,
            "local_time": self.local_time.isoformat() if self.local_time else None,
            "override_id": self.override_id,
        }


def profile_for(region: str) -> JurisdictionProfile | None:
    """The profile whose regions name the borrower's region, or its country ("US-NY" -> "US")."""
    region = (region or "").strip().upper()
    if not region:
        return None
    country = region.split("-")[0]
    for profile in JurisdictionProfile.objects.prefetch_related("rules"):
        codes = profile.region_codes
        if region in codes or country in codes:
            return profile
    return None


def _zone(name: str) -> ZoneInfo | None:
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _local_midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz)


def _in_window(local: time, start: time, end: time) -> bool:
    """Is ``local`` inside [start, end), a window that may wrap midnight (22:00-08:00)?"""
    if start <= end:
        return start <= local < end
    return local >= start or local < end


def _window_end(at_local: datetime, end: time, tz: ZoneInfo) -> datetime:
    """The next local ``end`` time after ``at_local`` (today's, or tomorrow's once past it)."""
    candidate = datetime.combine(at_local.date(), end, tzinfo=tz)
    if candidate <= at_local:
        candidate = datetime.combine(at_local.date() + timedelta(days=1), end, tzinfo=tz)
    return candidate


def _validate(*, borrower, channel, contact_point, at, purpose, direction, loan) -> None:
    if channel not in Channel.values:
        raise field_error("channel", _("Unknown channel %(c)s.") % {"c": channel})
    if purpose not in Purpose.values:
        raise field_error("purpose", _("Unknown purpose %(p)s.") % {"p": purpose})
    if direction not in Direction.values:
        raise field_error("direction", _("Unknown direction %(d)s.") % {"d": direction})
    if not isinstance(at, datetime) or timezone.is_naive(at):
        raise field_error("at", _("The time must be a datetime with a time zone."))
    if contact_point is not None:
        if contact_point.borrower_id != borrower.pk:
            raise field_error("contact_point", _("The contact point belongs to another borrower."))
        if contact_point.kind != CHANNEL_KIND[Channel(channel)]:
            raise field_error("contact_point", _("This channel cannot use this kind of contact point."))
    elif channel in (Channel.CALL, Channel.SMS, Channel.EMAIL):
        raise field_error("contact_point", _("Say which phone number or address is contacted."))
    if loan is not None and loan.borrower_id != borrower.pk:
        raise field_error("loan", _("The loan belongs to another borrower."))
    if purpose == Purpose.LEGAL and loan is None:
        raise field_error("loan", _("Legal action concerns a loan: say which."))


class _Evaluation:
    """The rules of one profile applied to one contact at one moment."""

    def __init__(self, *, borrower, profile, tz, channel, contact_point, purpose, direction, loan,
                 staff_count, recording, at):  # fmt: skip
        self.borrower, self.profile, self.tz = borrower, profile, tz
        self.channel, self.contact_point, self.purpose = Channel(channel), contact_point, purpose
        self.direction, self.loan = direction, loan
        self.staff_count, self.recording = staff_count, recording
        self.rules: dict[str, ContactRule] = {r.rule: r for r in profile.rules.all() if r.enabled}
        # Every rule looks back at most 8 local days (7-in-7, the cooldown, "3 failed attempts").
        attempts = ContactAttempt.objects.filter(
            borrower=borrower, channel=Channel.CALL, at__gte=at - timedelta(days=LOOKBACK_DAYS)
        )
        self.calls = list(attempts.values("at", "direction", "connected", "answered", "right_party",
                                          "consented", "contact_point_id", "purpose"))  # fmt: skip
        # Read once: the evaluation may be repeated at later moments to find when contact is allowed.
        self.flag_rows = list(
            BorrowerFlag.objects.filter(borrower=borrower, released_at__isnull=True).values_list(
                "kind", "until"
            )
        )
        opt_outs = ChannelOptOut.objects.filter(borrower=borrower, channel=self.channel)
        point_filter = Q(contact_point__isnull=True)
        if contact_point is not None:
            point_filter |= Q(contact_point=contact_point)
        self.opted_out = (contact_point is not None and contact_point.opted_out) or opt_outs.filter(
            point_filter
        ).exists()
        # Earlier contacts with this third party (US: a location call is made once).
        self.attempts_to_point = (
            list(ContactAttempt.objects.filter(contact_point=contact_point).values("at", "purpose"))
            if contact_point is not None and contact_point.is_third_party
            else []
        )

    def flags_on(self, day: date) -> set[str]:
        """The borrower's flags in force on a local day."""
        return {kind for kind, until in self.flag_rows if until is None or until >= day}

    def cite(self, rule: str, default: str) -> str:
        found = self.rules.get(rule)
        return found.citation if found else default

    def reasons_at(self, at: datetime) -> list[Reason]:
        local = at.astimezone(self.tz)
        today = local.date()
        flags = self.flags_on(today)
        out: list[Reason] = []
        outbound = self.direction == Direction.OUTBOUND
        own_point = self.contact_point is None or not self.contact_point.is_third_party

        # Holds and flags on the borrower.
        for kind, code in FLAG_CODES.items():
            if kind in flags and not (code == "dispute_hold" and self.purpose in CEASE_PURPOSES):
                out.append(Reason(code, _("Borrower flag: %(k)s") % {"k": BorrowerFlag.Kind(kind).label}))
        if BorrowerFlag.Kind.DECEASED in flags and own_point:
            out.append(Reason("deceased", _("Borrower flag: deceased")))
        if BorrowerFlag.Kind.LEGAL_REPRESENTATION in flags and own_point:
            out.append(
                Reason("legal_representation", "Reg F 1006.6(b)(2); borrower flag: represented by a lawyer")
            )
        if BorrowerFlag.Kind.CEASE_COMMUNICATION in flags and self.purpose not in CEASE_PURPOSES:
            out.append(Reason("cease_communication", self.cite(Rule.CEASE_COMMUNICATION, "Reg F 1006.6(c)")))
        if BorrowerFlag.Kind.VULNERABLE in flags and self.channel == Channel.VISIT:
            out.append(Reason("vulnerable_no_visit", self.cite(Rule.FIELD_VISIT, "FCA CONC 7.2; FG21/1")))

        # The contact point: opted out, without consent, known to be wrong.
        point = self.contact_point
        if self.opted_out:
            out.append(Reason("channel_opt_out", "Reg F 1006.14(h); PIPL art. 15"))
        if point is not None:
            if not point.consent_given:
                out.append(Reason("no_consent", "PIPL art. 13-14"))
            if not point.is_valid:
                out.append(Reason("invalid_contact_point", _("The number or address is known to be wrong.")))

        # Time-barred debt: no legal action, no threat of it.
        if (
            self.purpose == Purpose.LEGAL
            and Rule.TIME_BARRED in self.rules
            and self.loan.limitation_date is not None
            and today > self.loan.limitation_date
        ):
            out.append(Reason("time_barred", self.rules[Rule.TIME_BARRED].citation))

        # Third parties.
        if point is not None and point.is_third_party:
            out.extend(self._third_party(at, flags))

        # Field visits.
        visit_rule = self.rules.get(Rule.FIELD_VISIT)
        needs_team = self.channel == Channel.VISIT and visit_rule and (visit_rule.limit or 0) > 1
        if needs_team and (self.staff_count < visit_rule.limit or not self.recording):
            out.append(Reason("field_visit_requirements", visit_rule.citation))

        if not outbound:
            return out

        # Quiet hours, in the borrower's local wall-clock time.
        quiet = self.rules.get(Rule.QUIET_HOURS)
        if quiet and self.channel in TIMED_CHANNELS and _in_window(local.time(), quiet.start, quiet.end):
            out.append(Reason("quiet_hours", quiet.citation, _window_end(local, quiet.end, self.tz)))

        if self.channel == Channel.CALL:
            out.extend(self._call_limits(local, today))
        return out

    def _call_limits(self, local: datetime, today: date) -> list[Reason]:
        out = []
        tz = self.tz
        tomorrow = _local_midnight(today + timedelta(days=1), tz)
        start_today = _local_midnight(today, tz)
        outbound = [c for c in self.calls if c["direction"] == Direction.OUTBOUND and c["at"] < local]
        todays = [c for c in outbound if c["at"] >= start_today]

        cap = self.rules.get(Rule.DAILY_CONNECTED_CAP)
        if cap and sum(c["answered"] for c in todays) >= cap.limit:
            out.append(Reason("daily_connected_cap", cap.citation, tomorrow))
        attempts = self.rules.get(Rule.DAILY_ATTEMPT_CAP)
        if attempts and self.contact_point is not None:
            unanswered = [
                c for c in todays if not c["answered"] and c["contact_point_id"] == self.contact_point.pk
            ]
            if len(unanswered) >= attempts.limit:
                out.append(Reason("daily_attempt_cap", attempts.citation, tomorrow))

        seven = self.rules.get(Rule.SEVEN_IN_SEVEN)
        if seven:
            # Calls that reached the number, without the borrower's consent, on local days today-6..today.
            counted = sorted(
                c["at"].astimezone(tz).date()
                for c in outbound
                if c["connected"]
                and not c["consented"]
                and c["at"].astimezone(tz).date() > today - timedelta(days=7)
            )
            if len(counted) >= seven.limit:
                # Allowed again on the first day whose 7-day window holds fewer than the limit.
                day = today
                while sum(d > day - timedelta(days=7) for d in counted) >= seven.limit:
                    day += timedelta(days=1)
                out.append(Reason("seven_in_seven", seven.citation, _local_midnight(day, tz)))

        cooldown = self.rules.get(Rule.POST_CONVERSATION_COOLDOWN)
        if cooldown:
            conversations = [
                c["at"].astimezone(tz).date() for c in self.calls if c["right_party"] and c["at"] < local
            ]
            if conversations:
                last = max(conversations)
                # The conversation's day is day 1: no call through day N, allowed from day N + 1.
                free_from = last + timedelta(days=cooldown.limit)
                if today < free_from:
                    out.append(
                        Reason(
                            "post_conversation_cooldown", cooldown.citation, _local_midnight(free_from, tz)
                        )
                    )
        return out

    def _third_party(self, at: datetime, flags: set[str]) -> list[Reason]:
        rule = self.rules.get(Rule.THIRD_PARTY)
        code = "third_party_not_allowed"
        if rule is None:
            return [Reason(code, _("No third-party rule in this profile: denied."))]
        mode = rule.mode
        if mode == ThirdPartyMode.UNREACHABLE_ONLY:
            if BorrowerFlag.Kind.DECEASED in flags or BorrowerFlag.Kind.LACKS_CAPACITY in flags:
                return []
            own_phones = list(
                self.borrower.contact_points.filter(kind=ContactPoint.Kind.PHONE, is_third_party=False)
            )
            if own_phones and all(not p.is_valid for p in own_phones):
                return []
            since = at - timedelta(days=UNREACHABLE_WINDOW_DAYS)
            own_ids = {p.pk for p in own_phones}
            failed = sum(
                1
                for c in self.calls
                if c["direction"] == Direction.OUTBOUND
                and not c["answered"]
                and c["contact_point_id"] in own_ids
                and since <= c["at"] < at
            )
            if not own_phones or failed >= (rule.limit or 3):
                return []
            return [Reason(code, rule.citation)]
        if mode == ThirdPartyMode.PERMITTED_ROLES:
            role = (self.contact_point.relationship or "").strip().lower()
            if self.purpose == Purpose.LOCATION:
                earlier = [
                    a for a in self.attempts_to_point if a["purpose"] == Purpose.LOCATION and a["at"] < at
                ]
                return [Reason(code, rule.citation)] if earlier else []
            return [] if role in PERMITTED_THIRD_PARTY_ROLES else [Reason(code, rule.citation)]
        if mode == ThirdPartyMode.LOCATION_ONLY:
            return [] if self.purpose == Purpose.LOCATION else [Reason(code, rule.citation)]
        return [Reason(code, rule.citation)]


def check_contact(
    *,
    borrower: Borrower,
    channel: str,
    at: datetime,
    contact_point: ContactPoint | None = None,
    purpose: str = Purpose.COLLECTION,
    direction: str = Direction.OUTBOUND,
    loan: Loan | None = None,
    staff_count: int = 1,
    recording: bool = False,
) -> ContactDecision:
    """May this contact happen at ``at``? Every reason that applies, and when it may happen next."""
    _validate(
        borrower=borrower, channel=channel, contact_point=contact_point, at=at, purpose=purpose,
        direction=direction, loan=loan,
    )  # fmt: skip
    tz = _zone(borrower.time_zone)
    missing = []
    if tz is None:
        missing.append(
            Reason("missing_timezone", _("The borrower's time zone is unknown: contact fails closed."))
        )
    profile = profile_for(borrower.region)
    if not borrower.region:
        missing.append(Reason("missing_region", _("The borrower's region is unknown: contact fails closed.")))
    elif profile is None:
        missing.append(
            Reason("unknown_region", _("No rule profile covers region %(r)s.") % {"r": borrower.region})
        )
    if missing:
        return ContactDecision(
            False, tuple(r.code for r in missing), tuple(missing), None, profile and profile.code
        )

    evaluation = _Evaluation(
        borrower=borrower, profile=profile, tz=tz, channel=channel, contact_point=contact_point,
        purpose=purpose, direction=direction, loan=loan, staff_count=staff_count, recording=recording, at=at,
    )  # fmt: skip
    reasons = evaluation.reasons_at(at)
    local = at.astimezone(tz)
    if not reasons:
        return ContactDecision(True, (), (), at, profile.code, local)
    return ContactDecision(
        False,
        tuple(dict.fromkeys(r.code for r in reasons)),
        tuple(reasons),
        _next_allowed(evaluation, reasons),
        profile.code,
        local,
    )


def _next_allowed(evaluation: _Evaluation, reasons: list[Reason]) -> datetime | None:
    """The first moment every bar has lifted by itself; None if any bar needs a person."""
    for _round in range(12):
        if any(r.lifts_at is None for r in reasons):
            return None
        at = max(r.lifts_at for r in reasons)
        reasons = evaluation.reasons_at(at)
        if not reasons:
            return at
    return None


# --- overrides, flags, opt-outs, the contact log -------------------------------------------------


@transaction.atomic
def contact_override_grant(
    *,
    borrower: Borrower,
    channel: str,
    reasons: list[str],
    reason: str,
    actor,
    contact_point: ContactPoint | None = None,
    valid_for: timedelta = timedelta(hours=24),
) -> ContactOverride:
    """A supervisor lets one denied contact go ahead, with a written reason; audited."""
    if actor is None or not actor.is_active or not actor.has_perm("compliance.override_contact_rules"):
        raise PermissionDenied(_("Only a supervisor may override a contact rule."))
    reason = (reason or "").strip()
    if not reason:
        raise field_error("reason", _("Write why the rule is overridden."))
    if channel not in Channel.values:
        raise field_error("channel", _("Unknown channel %(c)s.") % {"c": channel})
    codes = sorted(set(reasons or []))
    if not codes:
        raise field_error("reasons", _("Name the denial reasons to override."))
    barred = sorted(set(codes) & NOT_OVERRIDABLE)
    if barred:
        raise field_error(
            "reasons", _("These cannot be overridden: %(codes)s.") % {"codes": ", ".join(barred)}
        )
    now = timezone.now()
    override = ContactOverride.objects.create(
        borrower=borrower, channel=channel, contact_point=contact_point, reasons=codes, reason=reason[:500],
        granted_by=actor, granted_at=now, valid_until=now + valid_for,
    )  # fmt: skip
    audit_record(
        event_type=AuditEventType.OVERRIDE,
        actor=actor,
        subject=override,
        details={"borrower": borrower.pk, "channel": channel, "reasons": codes, "reason": reason},
    )
    return override


def _usable_override(*, borrower, channel, contact_point, codes, at) -> ContactOverride | None:
    candidates = ContactOverride.objects.select_for_update().filter(
        borrower=borrower, channel=channel, used_at__isnull=True, granted_at__lte=at, valid_until__gt=at
    )
    candidates = candidates.filter(Q(contact_point=contact_point) | Q(contact_point__isnull=True))
    for override in candidates.order_by("granted_at"):
        if set(codes) <= set(override.reasons):
            return override
    return None


@transaction.atomic
def contact_attempt_record(
    *,
    borrower: Borrower,
    channel: str,
    at: datetime,
    direction: str = Direction.OUTBOUND,
    contact_point: ContactPoint | None = None,
    purpose: str = Purpose.COLLECTION,
    loan: Loan | None = None,
    connected: bool = False,
    answered: bool = False,
    right_party: bool = False,
    consented: bool = False,
    outcome: str = "",
    actor=None,
    staff_count: int = 1,
    recording: bool = False,
) -> ContactAttempt:
    """Log a contact. An outbound one is checked first and refused (``ContactDenied``) unless allowed
    or covered by a supervisor's unused override, which it then uses up."""
    if answered and not connected:
        raise field_error("answered", _("An answered call is a connected call."))
    if right_party and not answered:
        raise field_error("right_party", _("Speaking to the borrower means the call was answered."))
    decision = check_contact(
        borrower=borrower, channel=channel, at=at, contact_point=contact_point, purpose=purpose,
        direction=direction, loan=loan, staff_count=staff_count, recording=recording,
    )  # fmt: skip
    override = None
    if direction == Direction.OUTBOUND and not decision.allowed:
        override = _usable_override(
            borrower=borrower, channel=channel, contact_point=contact_point, codes=decision.reasons, at=at
        )
        if override is None:
            raise ContactDenied(decision)
        override.used_at = timezone.now()
        override.save(update_fields=["used_at"])
    return ContactAttempt.objects.create(
        borrower=borrower, loan=loan, contact_point=contact_point, channel=channel, direction=direction,
        purpose=purpose, at=at, connected=connected, answered=answered, right_party=right_party,
        consented=consented, outcome=outcome, actor=actor, override=override,
        decision={**decision.as_dict(), "override_id": override.pk if override else None},
    )  # fmt: skip


@transaction.atomic
def borrower_flag_set(
    *, borrower: Borrower, kind: str, reason: str, actor, until: date | None = None
) -> BorrowerFlag:
    """Put a hold or flag on a borrower (who, when, why, until when); audited."""
    if actor is None or not actor.has_perm("compliance.add_borrowerflag"):
        raise PermissionDenied(_("You are not allowed to do this."))
    if kind not in BorrowerFlag.Kind.values:
        raise field_error("kind", _("Unknown flag."))
    reason = (reason or "").strip()
    if not reason:
        raise field_error("reason", _("Say why."))
    if until is not None and until < timezone.localdate():
        raise field_error("until", _("The flag cannot end in the past."))
    flag = BorrowerFlag(
        borrower=borrower, kind=kind, reason=reason[:500], until=until, set_by=actor, set_at=timezone.now()
    )
    flag._change_reason = "flag set"
    flag.save()
    audit_record(
        event_type=AuditEventType.FLAG_SET,
        actor=actor,
        subject=borrower,
        details={"flag": flag.pk, "kind": kind, "reason": reason, "until": until},
    )
    return flag


@transaction.atomic
def borrower_flag_release(*, flag: BorrowerFlag, actor, reason: str = "") -> BorrowerFlag:
    if actor is None or not actor.has_perm("compliance.change_borrowerflag"):
        raise PermissionDenied(_("You are not allowed to do this."))
    flag = BorrowerFlag.objects.select_for_update().get(pk=flag.pk)
    if flag.released_at is not None:
        raise field_error("flag", _("The flag was released already."))
    flag.released_at, flag.released_by = timezone.now(), actor
    flag._change_reason = "flag released"
    flag.save()
    audit_record(
        event_type=AuditEventType.FLAG_RELEASED,
        actor=actor,
        subject=flag.borrower,
        details={"flag": flag.pk, "kind": flag.kind, "reason": reason},
    )
    return flag


@transaction.atomic
def channel_opt_out_record(
    *, borrower: Borrower, channel: str, contact_point: ContactPoint | None = None, note: str = "", at=None
) -> ChannelOptOut:
    """The borrower opted out of a channel (at one address, or everywhere)."""
    if channel not in Channel.values:
        raise field_error("channel", _("Unknown channel %(c)s.") % {"c": channel})
    if contact_point is not None and contact_point.borrower_id != borrower.pk:
        raise field_error("contact_point", _("The contact point belongs to another borrower."))
    return ChannelOptOut.objects.create(
        borrower=borrower,
        channel=channel,
        contact_point=contact_point,
        at=at or timezone.now(),
        note=note[:300],
    )
