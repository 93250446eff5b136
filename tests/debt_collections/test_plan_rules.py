"""The scan's SQL decides every case as the plain-Python rules in ``stages.decide`` do.

Hundreds of loans, each in a different combination of case stage, loan status, delinquency, days
past due, freeze and recommendation, are planned by the scan's SQL in one statement and compared
with the rules, one by one.
"""

import itertools
import random
from datetime import date, timedelta

import pytest
from django.db import connection
from django.utils import timezone

from debt_collections import scan as scanning
from debt_collections import stages
from debt_collections.models import Case, CaseHold, PromiseToPay
from debt_collections.stages import Stage, Thresholds
from loans.models import Loan
from tests.factories import LoanProductFactory, make_loan

AS_OF = date(2026, 3, 1)
DPDS = (0, 1, 7, 8, 30, 31, 60, 61, 90, 91, 200)
COMBOS = list(
    itertools.product(
        [None, *Stage],  # the open case's stage, or no case
        ["active", "paid_off", "written_off"],
        [True, False],  # delinquent (bucket past grace)
        DPDS,
        [None, "hold", "expired_hold", "promise"],
        [False, True],  # recommended before
    )
)


@pytest.mark.django_db
def test_the_sql_plan_follows_the_rules(supervisor):
    combos = random.Random(11).sample(COMBOS, 180)
    product = LoanProductFactory()
    loans = {}
    for case_stage, status, delinquent, dpd, freeze, recommended in combos:
        if case_stage is None and (freeze or recommended):
            freeze, recommended = None, False  # both belong to a case
        loan = make_loan(product=product)
        Loan.objects.filter(pk=loan.pk).update(
            status=status,
            closed_on=None if status == "active" else AS_OF,
            oldest_unpaid_due_date=AS_OF - timedelta(days=dpd),
            bucket="1-30" if delinquent else "current",
        )
        frozen = freeze in ("hold", "promise")
        if case_stage is not None:
            case = Case.objects.create(
                loan=loan, stage=case_stage.value, stage_entered_on=date(2025, 1, 1),
                opened_on=date(2025, 1, 1), referral_recommended_on=date(2026, 1, 1) if recommended else None,
            )  # fmt: skip
            if freeze in ("hold", "expired_hold"):
                CaseHold.objects.create(
                    case=case, reason="dispute", note="n", set_by=supervisor, set_at=timezone.now(),
                    until=AS_OF - timedelta(days=1) if freeze == "expired_hold" else None,
                )  # fmt: skip
            elif freeze == "promise":
                PromiseToPay.objects.create(
                    case=case, amount="10", made_on=AS_OF, promised_date=AS_OF + timedelta(days=5),
                    created_by=supervisor,
                )  # fmt: skip
        loans[loan.pk] = stages.decide(
            case_stage=case_stage, loan_status=status, delinquent=delinquent, dpd=dpd, frozen=frozen,
            recommended=recommended, thresholds=Thresholds(),
        )  # fmt: skip

    d = scanning._d()
    with connection.cursor() as cursor:
        scanning._create_temp(cursor, "scan_candidates", "loan_id bigint PRIMARY KEY")
        cursor.execute("INSERT INTO scan_candidates SELECT id FROM loans_loan")
        scanning._create_temp(cursor, scanning.PLAN_TABLE, scanning.PLAN_COLUMNS)
        cursor.execute(
            scanning._plan_scan_sql(d), {"as_of": AS_OF.isoformat(), "first_id": 0, "end_id": 2**62}
        )
        assert scanning.PLAN_TABLE == "scan_plan"
        cursor.execute("SELECT loan_id, action, new_stage, close_reason, new_recommended FROM scan_plan")
        planned = {row[0]: row[1:] for row in cursor.fetchall()}
        scanning._drop_temp(cursor, scanning.PLAN_TABLE, "scan_candidates")

    checked = set()
    for loan_id, expected in loans.items():
        if expected.action == "none" and expected.stage is None:
            assert loan_id not in planned  # no case, none to open: nothing to write
            continue
        action, stage, close_reason, recommended_on = planned[loan_id]
        assert (action, stage, close_reason, recommended_on is not None) == (
            expected.action, expected.stage.value, expected.close_reason, expected.recommended,
        ), loan_id  # fmt: skip
        checked.add(expected.action)
    assert checked == {"open", "up", "down", "close", "none"}  # the sample covers every action
