"""Collection stages, the moves allowed between them and the priority score, with no Django in it.

This module is the one place that knows the stage ladder. The scan's SQL is generated from it
(``stage_rank_sql``, ``priority_sql``), the single-case service checks moves with ``check_move``, and
the database repeats the two rules that matter most as constraints on ``StageTransition``: the scan
never enters legal referral, and nothing leaves legal referral but closing the case.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from decimal import Decimal


class Stage(enum.StrEnum):
    EARLY_WARNING = "early_warning"
    FOLLOW_UP_CALL = "follow_up_call"
    NOTICE = "notice"
    RESTRUCTURING = "restructuring"
    LEGAL_REFERRAL = "legal_referral"

    @property
    def rank(self) -> int:
        return LADDER.index(self) + 1


LADDER: tuple[Stage, ...] = tuple(Stage)

# The stages the scan may put a case in by itself; legal referral needs a supervisor's approval.
SCAN_STAGES: tuple[Stage, ...] = LADDER[:-1]


class Actor(enum.StrEnum):
    SCAN = "scan"
    USER = "user"


class MoveError(ValueError):
    pass


def check_move(from_stage: Stage | None, to_stage: Stage | None, *, actor: Actor) -> None:
    """Raise ``MoveError`` unless the move is allowed. ``None`` is "no open case".

    * opening (None -> stage) and closing (stage -> None) are always allowed, except that a case
      never opens in legal referral;
    * any stage may move up or down the ladder, except out of legal referral, which only closes;
    * legal referral is entered only by a user (a supervisor approving), never by the scan.
    """
    if from_stage is None and to_stage is None:
        raise MoveError("a move needs a stage on at least one side")
    if from_stage == to_stage:
        raise MoveError(f"the case is already in {to_stage}")
    if to_stage is None:
        return
    if to_stage is Stage.LEGAL_REFERRAL and actor is not Actor.USER:
        raise MoveError("only a supervisor's approval enters legal referral")
    if from_stage is None and to_stage is Stage.LEGAL_REFERRAL:
        raise MoveError("a case does not open in legal referral")
    if from_stage is Stage.LEGAL_REFERRAL:
        raise MoveError("a case in legal referral only closes")


@dataclass(frozen=True)
class Thresholds:
    """Days past due at which each stage is entered (a ``CollectionPolicy``'s figures)."""

    early_warning: int = 1
    follow_up_call: int = 8
    notice: int = 31
    restructuring: int = 61
    legal_referral: int = 91

    def __post_init__(self):
        values = [
            self.early_warning,
            self.follow_up_call,
            self.notice,
            self.restructuring,
            self.legal_referral,
        ]
        if values[0] < 1 or values != sorted(set(values)):
            raise ValueError("stage thresholds must be positive and strictly increasing")


def target_stage(dpd: int, thresholds: Thresholds) -> Stage | None:
    """The stage the scan puts a case in at this DPD: None below early warning, never legal referral."""
    stage = None
    for candidate in SCAN_STAGES:
        if dpd >= getattr(thresholds, candidate.value):
            stage = candidate
    return stage


def referral_recommended(dpd: int, thresholds: Thresholds) -> bool:
    return dpd >= thresholds.legal_referral


@dataclass(frozen=True)
class Decision:
    action: str  # open | up | down | close | none
    stage: Stage | None  # the case's stage after the scan (None: no case)
    close_reason: str  # for "close": cured, paid_off or written_off
    recommended: bool  # recommended for legal referral after the scan


def decide(
    *,
    case_stage: Stage | None,
    loan_status: str,
    delinquent: bool,
    dpd: int,
    frozen: bool,
    recommended: bool,
    thresholds: Thresholds,
) -> Decision:
    """What the scan does to one loan's case: the rules of ``scan._plan_scan_sql`` in plain Python.

    ``delinquent``: the loan's bucket is past grace; ``frozen``: a hold or an open promise;
    ``recommended``: the case was recommended for referral before. The tests hold the SQL to this.
    """
    qualifies = loan_status == "active" and delinquent and dpd >= thresholds.early_warning
    target = target_stage(dpd, thresholds)
    if case_stage is None:
        action = "open" if qualifies else "none"
    elif not qualifies:
        action = "close" if (case_stage is not Stage.LEGAL_REFERRAL or loan_status != "active") else "none"
    elif case_stage is Stage.LEGAL_REFERRAL:
        action = "none"
    elif target.rank > case_stage.rank and not frozen:
        action = "up"
    elif target.rank < case_stage.rank:
        action = "down"
    else:
        action = "none"
    stage = target if action in ("open", "up", "down") else case_stage
    close_reason = ""
    if action == "close":
        close_reason = loan_status if loan_status in ("paid_off", "written_off") else "cured"
    if action == "close" or case_stage is Stage.LEGAL_REFERRAL:
        now_recommended = recommended
    elif qualifies and referral_recommended(dpd, thresholds):
        now_recommended = recommended or not frozen
    else:
        now_recommended = False
    return Decision(action, stage, close_reason, now_recommended)


# --- priority ----------------------------------------------------------------------------------
# A worklist sorts by this integer, highest first. Later stages weigh more, then days past due
# (capped at a year), then the amount overdue (one point per 200 units, capped), then promises
# broken (each one a strong sign that calls alone will not cure the account).
PRIORITY_STAGE_WEIGHT = 100
PRIORITY_DPD_CAP = 365
PRIORITY_AMOUNT_STEP = 200
PRIORITY_AMOUNT_CAP = 250
PRIORITY_BROKEN_WEIGHT = 60
PRIORITY_BROKEN_CAP = 5


def priority_score(*, stage: Stage, dpd: int, overdue: Decimal, broken_promises: int) -> int:
    return (
        PRIORITY_STAGE_WEIGHT * stage.rank
        + min(max(dpd, 0), PRIORITY_DPD_CAP)
        + min(int(overdue // PRIORITY_AMOUNT_STEP), PRIORITY_AMOUNT_CAP)
        + PRIORITY_BROKEN_WEIGHT * min(broken_promises, PRIORITY_BROKEN_CAP)
    )


def stage_rank_sql(column: str) -> str:
    """SQL for the rank (1..5) of a stage column; 0 for NULL."""
    whens = " ".join(f"WHEN '{s.value}' THEN {s.rank}" for s in LADDER)
    return f"(CASE {column} {whens} ELSE 0 END)"


def priority_sql(
    *, stage: str, dpd: str, overdue: str, broken: str, least: str, greatest: str, floor_int: str
) -> str:
    """The same score as ``priority_score`` as a SQL expression over the given column expressions.

    ``floor_int`` is the dialect's "whole part of a non-negative number" with ``{}`` for it.
    """
    return (
        f"({PRIORITY_STAGE_WEIGHT} * {stage_rank_sql(stage)}"
        f" + {least}({greatest}({dpd}, 0), {PRIORITY_DPD_CAP})"
        f" + {least}({floor_int.format(f'{overdue} / {PRIORITY_AMOUNT_STEP}')}, {PRIORITY_AMOUNT_CAP})"
        f" + {PRIORITY_BROKEN_WEIGHT} * {least}({broken}, {PRIORITY_BROKEN_CAP}))"
    )
