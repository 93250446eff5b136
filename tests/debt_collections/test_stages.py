"""The stage ladder, the allowed moves and the priority score, with no database."""

import sqlite3
from decimal import Decimal as D

import pytest
from hypothesis import given
from hypothesis import strategies as st

from debt_collections import stages
from debt_collections.stages import Actor, MoveError, Stage, Thresholds

EW, FU, NO, RE, LR = Stage


@pytest.mark.parametrize(
    ("dpd", "stage"),
    [
        (0, None),
        (1, EW),
        (7, EW),
        (8, FU),
        (30, FU),
        (31, NO),
        (60, NO),
        (61, RE),
        (90, RE),
        (91, RE),
        (400, RE),
    ],
)
def test_target_stage_follows_the_default_thresholds_and_never_reaches_legal_referral(dpd, stage):
    assert stages.target_stage(dpd, Thresholds()) == stage


def test_referral_is_recommended_from_the_legal_threshold():
    assert not stages.referral_recommended(90, Thresholds())
    assert stages.referral_recommended(91, Thresholds())


def test_thresholds_must_increase():
    with pytest.raises(ValueError, match="increasing"):
        Thresholds(follow_up_call=40, notice=31)
    with pytest.raises(ValueError):
        Thresholds(early_warning=0)


@pytest.mark.parametrize(
    ("from_stage", "to_stage", "actor"),
    [(None, EW, Actor.SCAN), (None, NO, Actor.SCAN), (EW, RE, Actor.SCAN), (RE, FU, Actor.SCAN),
     (NO, None, Actor.SCAN), (RE, LR, Actor.USER), (EW, LR, Actor.USER), (LR, None, Actor.USER),
     (NO, EW, Actor.USER)],
)  # fmt: skip
def test_allowed_moves(from_stage, to_stage, actor):
    stages.check_move(from_stage, to_stage, actor=actor)


@pytest.mark.parametrize(
    ("from_stage", "to_stage", "actor", "why"),
    [
        (RE, LR, Actor.SCAN, "only a supervisor"),
        (None, LR, Actor.USER, "does not open in legal referral"),
        (LR, RE, Actor.USER, "only closes"),
        (LR, EW, Actor.SCAN, "only closes"),
        (NO, NO, Actor.USER, "already"),
        (None, None, Actor.SCAN, "at least one side"),
    ],
)
def test_refused_moves(from_stage, to_stage, actor, why):
    with pytest.raises(MoveError, match=why):
        stages.check_move(from_stage, to_stage, actor=actor)


def test_priority_weighs_stage_then_days_then_amount_then_broken_promises():
    base = dict(stage=NO, dpd=40, overdue=D("1000"), broken_promises=0)
    score = stages.priority_score(**base)
    assert score == 300 + 40 + 5
    assert stages.priority_score(**{**base, "stage": RE}) > score
    assert stages.priority_score(**{**base, "dpd": 41}) == score + 1
    assert stages.priority_score(**{**base, "overdue": D("1200")}) == score + 1
    assert stages.priority_score(**{**base, "broken_promises": 1}) == score + 60
    # Caps keep one factor from swamping the others.
    assert stages.priority_score(**{**base, "dpd": 5000}) == 300 + 365 + 5
    assert stages.priority_score(**{**base, "overdue": D("10000000")}) == 300 + 40 + 250


@given(
    stage=st.sampled_from(list(Stage)),
    dpd=st.integers(min_value=0, max_value=2000),
    overdue=st.decimals(min_value=0, max_value=10**9, places=2, allow_nan=False, allow_infinity=False),
    broken=st.integers(min_value=0, max_value=20),
)
def test_the_sql_score_is_the_python_score(stage, dpd, overdue, broken):
    """The scan computes the score in SQL; the expression is generated from the same constants."""
    expression = stages.priority_sql(
        stage="?",
        dpd="?",
        overdue="?",
        broken="?",
        least="MIN",
        greatest="MAX",
        floor_int="CAST({} AS INTEGER)",
    )
    # Each placeholder appears once, in this order: stage (in the CASE), dpd, overdue, broken.
    with sqlite3.connect(":memory:") as db:
        (value,) = db.execute(f"SELECT {expression}", (stage.value, dpd, str(overdue), broken)).fetchone()
    assert value == stages.priority_score(stage=stage, dpd=dpd, overdue=overdue, broken_promises=broken)
