"""The loan book's management commands, as an operator runs them."""

from datetime import date
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from loans.models import Loan
from tests.factories import LoanProductFactory, make_loan

pytestmark = pytest.mark.django_db


def run(*args):
    out = StringIO()
    call_command("refresh_delinquency", *args, stdout=out)
    return out.getvalue().strip()


def test_refresh_reports_what_changed_and_a_rerun_changes_nothing():
    loan = make_loan(product=LoanProductFactory(penalty_rate="0.0365"))
    assert run("--as-of", "2025-04-15") == (
        "Refreshed the whole book as of 2025-04-15: 1 loans changed, 3 installments repriced."
    )
    loan.refresh_from_db()
    assert loan.bucket == "61-90" and loan.days_past_due(date(2025, 4, 15)) == 73
    assert run("--as-of", "2025-04-15", "--loan", str(loan.pk)) == (
        "Refreshed 1 listed loans as of 2025-04-15: 0 loans changed, 0 installments repriced."
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--as-of", "2025-02-30"], "--as-of must be a date as YYYY-MM-DD, got '2025-02-30'."),
        (["--loan", "999999"], "No loan with id 999999."),
    ],
)
def test_bad_input_is_one_readable_line_and_writes_nothing(args, message):
    loan = make_loan()
    with pytest.raises(CommandError, match=message):
        run(*args)
    loan.refresh_from_db()
    assert Loan.objects.get(pk=loan.pk).bucket == "current"
