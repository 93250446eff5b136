"""Retention purge: a due borrower is anonymised, history rows included (checked in raw SQL); an
active loan, recent activity, an open case or a legal hold each keep a borrower; the collection
records stay; a dry run writes nothing; a rerun is a no-op; the command, the task and the beat entry."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal
from io import StringIO

import pytest
from dateutil.relativedelta import relativedelta
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from compliance import tasks
from compliance.audit import verify_chain
from compliance.models import AuditEvent, BorrowerFlag, ContactAttempt
from compliance.retention import anonymised_borrowers, retention_purge
from debt_collections.models import Case, StageTransition
from loans import services
from loans.models import Allocation, Borrower, ContactPoint, Installment, Loan, Payment
from tests.factories import PartnerFactory, make_loan, pay

pytestmark = pytest.mark.django_db

# Borrowers are recorded today; loans in the factories close in 2025. Six years from now, with five
# years kept, the cutoff is a year from today: everything made by the tests is older, unless a test
# dates an activity on or after it.
AS_OF = timezone.localdate() + relativedelta(years=6)
CUTOFF = AS_OF - relativedelta(years=5)


@pytest.fixture
def staff(db):
    return get_user_model().objects.create_user("officer", password="x-unused-x")


def aware(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time(10)))


def borrower_with_closed_loan(name: str, ref: str, staff, *, national_id="110101199003071234"):
    """A borrower whose one-installment loan was paid off on 2025-02-01, with a closed case, its
    transitions and a contact attempt from back then; a phone and a third-party contact; two history
    rows with personal data (created, then the date of birth corrected)."""
    borrower = services.borrower_create(
        partner=PartnerFactory(code="p-retention"),
        external_ref=ref,
        full_name=name,
        national_id=national_id,
        date_of_birth=date(1990, 3, 7),
        time_zone="Asia/Shanghai",
        region="CN",
        contact_points=[
            services.ContactPointIn(kind="phone", value="13800138000", is_primary=True),
            services.ContactPointIn(
                kind="phone", value="13900139000", label="other", is_third_party=True,
                third_party_name="李娜", relationship="母亲",
            ),
        ],
    )  # fmt: skip
    borrower.date_of_birth = date(1990, 3, 8)
    borrower.save()
    loan = make_loan(borrower=borrower, principal="1000.00", term=1)
    pay(loan, "1010.00", date(2025, 2, 1))
    loan.refresh_from_db()
    assert (loan.status, loan.closed_on) == ("paid_off", date(2025, 2, 1))
    case = Case.objects.create(
        loan=loan, status="closed", stage="early_warning", stage_entered_on=date(2025, 1, 20),
        opened_on=date(2025, 1, 20), closed_on=date(2025, 2, 1), close_reason="paid_off",
    )  # fmt: skip
    for from_stage, to_stage, reason in (("", "early_warning", "opened"), ("early_warning", "", "paid off")):
        StageTransition.objects.create(
            case=case, from_stage=from_stage, to_stage=to_stage, close_reason="" if to_stage else "paid_off",
            at=aware(date(2025, 1, 20)), as_of=date(2025, 1, 20), actor=staff, reason=reason,
        )  # fmt: skip
    ContactAttempt.objects.create(
        borrower=borrower, loan=loan, contact_point=borrower.contact_points.get(is_primary=True),
        channel="call", direction="outbound", at=aware(date(2025, 1, 25)), connected=True,
    )  # fmt: skip
    return borrower


def snapshot() -> dict:
    """Every collection record, to compare before and after a purge."""
    return {
        model.__name__: sorted(model.objects.values_list(*fields))
        for model, fields in (
            (Loan, ("id", "borrower_id", "status", "principal", "closed_on", "external_ref")),
            (Installment, ("id", "loan_id", "principal_due", "principal_paid", "interest_paid")),
            (Payment, ("id", "loan_id", "amount", "value_date", "status")),
            (Allocation, ("id", "payment_id", "installment_id", "principal", "interest")),
            (Case, ("id", "loan_id", "status", "closed_on", "close_reason")),
            (StageTransition, ("id", "case_id", "from_stage", "to_stage", "reason")),
            (ContactAttempt, ("id", "borrower_id", "loan_id", "contact_point_id", "at", "channel")),
        )
    }


def select(table: str, columns: str, where: str = "", params=()) -> list[tuple]:
    """Rows read with plain SQL, past the ORM and its decrypting fields. ``table``: a model's history
    table by the model (``"Borrower"``) or a table name; names come from the test, values are params."""
    model = {"Borrower": Borrower, "ContactPoint": ContactPoint}.get(table)
    name = connection.ops.quote_name(model.history.model._meta.db_table if model else table)
    sql = f"SELECT {columns} FROM {name}" + (f" WHERE {where}" if where else "")  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def test_a_due_borrower_is_anonymised_in_live_and_history_rows(staff):
    borrower = borrower_with_closed_loan("张伟", "B-OLD", staff)
    before = snapshot()
    assert len(select("Borrower", "1", "id = %s", [borrower.pk])) == 2

    result = retention_purge(as_of=AS_OF, years=5)

    assert result.borrower_ids == (borrower.pk,) and result.cutoff == CUTOFF
    borrower.refresh_from_db()
    assert borrower.full_name == f"已匿名化 #{borrower.pk}"
    assert borrower.national_id == "" and borrower.date_of_birth is None
    assert borrower.external_ref == "B-OLD" and borrower.region == "CN"
    points = list(ContactPoint.objects.filter(borrower=borrower).order_by("pk"))
    assert [p.value for p in points] == [f"已匿名化 #{p.pk}" for p in points]
    assert [p.third_party_name for p in points] == ["", ""]
    assert [p.relationship for p in points] == ["", "母亲"]  # a category, not a person

    # The historical tables, read without the ORM: no name, birth date, number or third party left.
    rows = select("Borrower", "full_name, date_of_birth, national_id", "id = %s", [borrower.pk])
    assert rows == [(f"已匿名化 #{borrower.pk}", None, "")] * 2
    assert not select("Borrower", "1", "full_name LIKE %s", ["%张伟%"])
    assert {h.national_id for h in Borrower.history.filter(id=borrower.pk)} == {""}
    if any(f.name == "national_id_hash" for f in Borrower._meta.get_fields()):  # stored encrypted + hash
        for table in ("loans_borrower", Borrower.history.model._meta.db_table):
            rows = select(table, "national_id_hash", "id = %s", [borrower.pk])
            assert rows and {value for (value,) in rows} <= {"", None}, table
    rows = select("ContactPoint", "id, value, third_party_name", "borrower_id = %s", [borrower.pk])
    assert len(rows) == 2 and all(value == f"已匿名化 #{pk}" and name == "" for pk, value, name in rows)
    assert not select(
        "ContactPoint", "1", "value LIKE %s OR third_party_name LIKE %s", ["%1380013%", "%李娜%"]
    )

    # The collection records are all still there, unchanged.
    assert snapshot() == before

    event = AuditEvent.objects.get(event_type="retention")
    assert event.pk == result.audit_event_id and event.actor_id is None and event.actor_label == "retention"
    assert event.details == {
        "as_of": AS_OF.isoformat(), "years": 5, "cutoff": CUTOFF.isoformat(), "count": 1,
        "borrower_ids": [borrower.pk], "contact_points": 2, "history_rows": 4,
    }  # fmt: skip
    assert list(anonymised_borrowers()) == [borrower]
    assert verify_chain() is None


def make_kept(kind: str, staff) -> Borrower:
    borrower = borrower_with_closed_loan(f"保留{kind}", f"B-{kind}", staff)
    loan = borrower.loans.get()
    if kind == "active-loan":
        make_loan(borrower=borrower)
    elif kind == "loan-closed-on-cutoff":  # exactly five years: not more than five
        Loan.objects.filter(pk=loan.pk).update(closed_on=CUTOFF)
    elif kind == "recent-case":
        Case.objects.filter(loan=loan).update(closed_on=CUTOFF + timedelta(days=1))
    elif kind == "open-case":
        Case.objects.create(
            loan=loan, stage="notice", stage_entered_on=date(2025, 2, 1), opened_on=date(2025, 2, 1)
        )
    elif kind == "recent-contact":
        ContactAttempt.objects.create(borrower=borrower, channel="sms", direction="inbound", at=aware(CUTOFF))
    elif kind == "legal-hold":
        BorrowerFlag.objects.create(
            borrower=borrower, kind="legal_hold", reason="诉讼保全", set_by=staff, set_at=timezone.now(),
            until=date(2025, 6, 1),  # past its date, yet unreleased: still holds
        )  # fmt: skip
    elif kind == "recorded-recently":
        Borrower.objects.filter(pk=borrower.pk).update(created_at=aware(CUTOFF))
    return borrower


KEPT = [
    "active-loan",
    "loan-closed-on-cutoff",
    "recent-case",
    "open-case",
    "recent-contact",
    "legal-hold",
    "recorded-recently",
]


@pytest.mark.parametrize("kind", KEPT)
def test_each_reason_to_keep_a_borrower(staff, kind):
    kept = make_kept(kind, staff)
    due = borrower_with_closed_loan("到期", "B-DUE", staff)

    result = retention_purge(as_of=AS_OF, years=5)

    assert result.borrower_ids == (due.pk,)
    kept.refresh_from_db()
    assert kept.full_name == f"保留{kind}" and kept.national_id and kept.date_of_birth == date(1990, 3, 8)
    assert {p.value for p in kept.contact_points.all()} == {"13800138000", "13900139000"}
    assert {h.full_name for h in Borrower.history.filter(id=kept.pk)} == {f"保留{kind}"}


def test_a_released_legal_hold_no_longer_keeps_the_borrower(staff):
    borrower = borrower_with_closed_loan("王芳", "B-RELEASED", staff)
    BorrowerFlag.objects.create(
        borrower=borrower, kind="legal_hold", reason="诉讼保全", set_by=staff, set_at=timezone.now(),
        released_at=timezone.now(), released_by=staff,
    )  # fmt: skip
    BorrowerFlag.objects.create(
        borrower=borrower, kind="dispute", reason="争议", set_by=staff, set_at=timezone.now()
    )
    assert retention_purge(as_of=AS_OF, years=5).borrower_ids == (borrower.pk,)


def test_the_years_decide_the_cutoff(staff):
    borrower = borrower_with_closed_loan("张伟", "B-YEARS", staff)
    # A year from today, 2025-02-01 is not yet 3 years back; 20 years on it is more than 5.
    soon = timezone.localdate() + relativedelta(years=1)
    assert retention_purge(as_of=soon, years=3, dry_run=True).borrower_ids == ()
    with override_settings(RETENTION_YEARS=10):
        assert retention_purge(as_of=AS_OF, dry_run=True).years == 10
        assert retention_purge(as_of=AS_OF, dry_run=True).borrower_ids == ()
        assert retention_purge(as_of=AS_OF + relativedelta(years=5), dry_run=True).borrower_ids == (
            borrower.pk,
        )
    assert settings.RETENTION_YEARS == 5
    with pytest.raises(ValueError, match="years"):
        retention_purge(as_of=AS_OF, years=0)


def test_a_dry_run_writes_nothing(staff):
    borrower = borrower_with_closed_loan("张伟", "B-DRY", staff)
    history = sorted(select("Borrower", "*"))
    points = sorted(select("ContactPoint", "*"))

    result = retention_purge(as_of=AS_OF, years=5, dry_run=True)

    assert result.dry_run and result.borrower_ids == (borrower.pk,) and result.audit_event_id is None
    borrower.refresh_from_db()
    assert borrower.full_name == "张伟" and borrower.national_id
    assert sorted(select("Borrower", "*")) == history
    assert sorted(select("ContactPoint", "*")) == points
    assert not AuditEvent.objects.exists()


def test_a_rerun_is_a_no_op(staff):
    first = borrower_with_closed_loan("张伟", "B-1", staff)
    retention_purge(as_of=AS_OF, years=5)
    second = borrower_with_closed_loan("李雷", "B-2", staff)
    history = sorted(select("Borrower", "history_id, id, full_name, date_of_birth, national_id"))
    before = snapshot()

    again = retention_purge(as_of=AS_OF, years=5)
    assert again.borrower_ids == (second.pk,)  # only the newcomer
    columns = "history_id, id, full_name, date_of_birth, national_id"
    assert sorted(select("Borrower", columns, "id = %s", [first.pk])) == [
        r for r in history if r[1] == first.pk
    ]
    third = retention_purge(as_of=AS_OF, years=5)
    assert third.borrower_ids == () and third.audit_event_id is None
    assert AuditEvent.objects.filter(event_type="retention").count() == 2
    assert snapshot() == before
    assert set(anonymised_borrowers()) == {first, second}


def test_the_export_of_an_anonymised_borrower_holds_no_personal_data(staff):
    from django.contrib.auth.models import Permission

    from compliance.export import borrower_export
    from tests.compliance.test_export import read_zip

    borrower = borrower_with_closed_loan("张伟", "B-EXP", staff, national_id="110101199003079999")
    retention_purge(as_of=AS_OF, years=5)
    staff.user_permissions.add(Permission.objects.get(codename="export_personal_data"))
    staff = get_user_model().objects.get(pk=staff.pk)
    files = read_zip(borrower_export(borrower=borrower, actor=staff, reason="检查"))
    everything = "".join(files.values())
    for personal in ("张伟", "110101199003079999", "1990-03-0", "13800138000", "李娜"):
        assert personal not in everything
    assert "loans.csv" in files and "paid_off" in files["loans.csv"]


class TestCommandAndTask:
    def run(self, *args) -> str:
        out = StringIO()
        call_command("retention_purge", *args, stdout=out)
        return out.getvalue()

    def test_the_command_prints_one_line(self, staff):
        borrower = borrower_with_closed_loan("张伟", "B-CMD", staff)
        dry = self.run("--as-of", AS_OF.isoformat(), "--dry-run")
        assert dry.count("\n") == 1
        assert f"dry run: 1 borrowers due (ids {borrower.pk}); nothing written." in dry
        assert not AuditEvent.objects.exists()
        out = self.run("--as-of", AS_OF.isoformat(), "--years", "5")
        assert out.count("\n") == 1
        assert out.startswith(f"Retention purge as of {AS_OF} (5 years: last activity before {CUTOFF}): 1 ")
        assert f"(ids {borrower.pk})" in out and "2 contact points and 4 history rows scrubbed" in out
        assert "no borrower due; nothing written." in self.run("--as-of", AS_OF.isoformat())

    @pytest.mark.parametrize(
        ("args", "message"),
        [
            (["--as-of", "2031-02-30"], "--as-of must be a date as YYYY-MM-DD"),
            (["--years", "0"], "--years must be a whole number of years, at least 1."),
            (["--years", "five"], "--years must be a whole number of years, at least 1."),
        ],
    )
    def test_bad_input_is_one_readable_line(self, staff, args, message):
        borrower_with_closed_loan("张伟", "B-BAD", staff)
        with pytest.raises(CommandError) as excinfo:
            self.run(*args)
        assert message in str(excinfo.value) and "\n" not in str(excinfo.value)
        assert not anonymised_borrowers().exists()

    def test_the_task_and_its_weekly_beat_entry(self, staff):
        borrower = borrower_with_closed_loan("张伟", "B-TASK", staff)
        dry = tasks.retention_purge.delay(as_of=AS_OF.isoformat(), dry_run=True).get()
        assert dry["dry_run"] and dry["borrower_ids"] == [borrower.pk]
        result = tasks.retention_purge.delay(as_of=AS_OF.isoformat(), years=5).get()
        assert result["count"] == 1 and result["audit_event_id"]
        assert tasks.retention_purge.delay(as_of=AS_OF.isoformat()).get()["count"] == 0
        entry = settings.CELERY_BEAT_SCHEDULE["retention-purge"]
        assert entry["task"] == tasks.retention_purge.name == "compliance.retention_purge"
        assert entry["schedule"].day_of_week == {0}  # Sunday

    def test_the_task_defaults_to_today(self, staff):
        borrower_with_closed_loan("张伟", "B-TODAY", staff)
        result = tasks.retention_purge.delay(dry_run=True).get()
        assert result["as_of"] == timezone.localdate().isoformat() and result["count"] == 0


def test_amounts_survive_to_the_cent(staff):
    borrower = borrower_with_closed_loan("张伟", "B-CENT", staff)
    retention_purge(as_of=AS_OF, years=5)
    assert Payment.objects.get(loan__borrower=borrower).amount == Decimal("1010.00")
