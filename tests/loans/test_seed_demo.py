"""``manage.py seed_demo``: the demo book is realistic, internally consistent and reproducible.

Runs on SQLite and on PostgreSQL (COPY path). One 300-loan book per test keeps the file fast.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter, defaultdict
from datetime import date
from decimal import Decimal
from io import StringIO

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, F, Sum
from django.http import HttpRequest

from loans import allocation, demo, schedules, services
from loans.delinquency import bucket_for
from loans.models import Allocation, Borrower, ContactPoint, Installment, Loan, LoanProduct, Partner, Payment

pytestmark = pytest.mark.django_db

AS_OF = date(2025, 6, 30)
LOANS = 300
SEED = 7  # with LOANS and AS_OF: every bucket has loans (checked below, so a change of recipe shows)
ZERO = Decimal("0.00")


def seed(*args: str) -> str:
    out = StringIO()
    call_command(
        "seed_demo", "--loans", str(LOANS), "--seed", str(SEED), "--as-of", AS_OF.isoformat(),
        "--batch-size", "120", *args, stdout=out,
    )  # fmt: skip
    return out.getvalue()


def fingerprint() -> str:
    """Everything the seed decides, without the ids (which move on from run to run)."""
    digest = hashlib.sha256()
    rows = [
        Loan.objects.order_by("partner__code", "external_ref").values_list(
            "partner__code", "external_ref", "borrower__external_ref", "borrower__full_name",
            "borrower__national_id", "product__code", "principal", "annual_rate", "term", "start_date",
            "first_due_date", "status", "closed_on", "bucket", "oldest_unpaid_due_date",
            "outstanding_principal", "created_at",
        ),
        Installment.objects.order_by("loan__partner__code", "loan__external_ref", "number").values_list(
            "loan__external_ref", "number", "due_date", "principal_due", "interest_due", "fee_due",
            "penalty_due", "principal_paid", "interest_paid", "fee_paid",
        ),
        Payment.objects.order_by("partner__code", "external_ref").values_list(
            "external_ref", "loan__external_ref", "amount", "value_date", "received_at", "channel",
        ),
        ContactPoint.objects.order_by("borrower__partner__code", "borrower__external_ref", "kind", "value")
        .values_list("borrower__external_ref", "kind", "label", "value", "is_primary", "relationship"),
    ]  # fmt: skip
    for query in rows:
        for row in query:
            digest.update(repr(row).encode())
    return digest.hexdigest()


class TestTheBook:
    def test_counts_partners_products_and_borrowers(self):
        output = seed("--no-users")
        summary = output.strip().splitlines()[-1]
        assert Loan.objects.count() == LOANS
        assert f"Seeded {LOANS} loans" in summary
        numbers = {
            k: int(v.replace(",", ""))
            for v, k in re.findall(r"([\d,]+) (borrowers|payments|installments)", summary)
        }
        assert numbers == {
            "borrowers": Borrower.objects.count(),
            "payments": Payment.objects.count(),
            "installments": Installment.objects.count(),
        }
        assert set(Partner.objects.values_list("code", flat=True)) == {"huiyi-lending", "northbridge-credit"}

        products = LoanProduct.objects.all()
        assert len(products) >= 4
        kinds = {(p.repayment_method, p.frequency) for p in products}
        assert {("annuity", "monthly"), ("equal_principal", "monthly")} <= kinds
        assert kinds & {("interest_only", "monthly"), ("bullet", "weekly")}
        assert {f for _m, f in kinds} & {"biweekly", "weekly"}
        assert any(p.installment_fee > 0 for p in products)
        assert all(0 <= p.grace_days <= 3 and p.currency == "CNY" for p in products)
        assert Loan.objects.filter(product__in=products).values("product").distinct().count() == len(products)

        # Mostly one loan per borrower, some with two; every loan's borrower is its partner's.
        per_borrower = Counter(Loan.objects.values_list("borrower_id", flat=True))
        assert max(per_borrower.values()) >= 2
        assert sum(n == 1 for n in per_borrower.values()) > 0.8 * len(per_borrower)
        assert not Loan.objects.exclude(borrower__partner=F("partner")).exists()

        borrowers = list(Borrower.objects.all())
        chinese = [b for b in borrowers if b.region == "CN"]
        assert 0.75 < len(chinese) / len(borrowers) < 0.95
        assert all(b.time_zone == "Asia/Shanghai" and b.preferred_language == "zh-hans" for b in chinese)
        zones = {"US": {"America/New_York", "America/Los_Angeles"}, "GB": {"Europe/London"}}
        for b in borrowers:
            if b.region != "CN":
                assert b.time_zone in zones[b.region[:2]] and b.preferred_language == "en", b
            assert b.national_id and b.date_of_birth and b.full_name.strip() == b.full_name
        for b in chinese[:50]:  # 18-character resident ID: area, birth date, sequence, check character
            weights = [2 ** (17 - i) % 11 for i in range(17)]
            check = "10X98765432"[
                sum(int(c) * w for c, w in zip(b.national_id[:17], weights, strict=True)) % 11
            ]
            assert b.national_id[6:14] == b.date_of_birth.strftime("%Y%m%d") and b.national_id[17] == check

        # A primary mobile each; e-mails for some; third-party contacts for some, with a relationship.
        primaries = ContactPoint.objects.filter(kind="phone", is_primary=True, label="mobile")
        assert primaries.count() == len(borrowers)
        assert 0.2 * len(borrowers) < ContactPoint.objects.filter(kind="email").count() < len(borrowers)
        third = ContactPoint.objects.filter(is_third_party=True)
        assert third.exists()
        assert not third.filter(relationship="").exists() and not third.filter(is_primary=True).exists()
        assert set(third.values_list("relationship", flat=True)) & {"配偶", "父母", "同事"}
        assert not ContactPoint.objects.filter(kind="email").exclude(value__regex=r"@example\.(com|net|org)$")

    def test_delinquency_spread(self, monkeypatch):
        refreshes = []
        refresh = services.delinquency_refresh

        def spy(**kwargs):
            refreshes.append(refresh(**kwargs))
            return refreshes[-1]

        monkeypatch.setattr(demo.services, "delinquency_refresh", spy)
        seed("--no-users")
        # The seed wrote each loan's delinquency figures as the refresh computes them, penalty aside:
        # the one refresh at the end only changed the loans it gave penalty to.
        assert len(refreshes) == 1
        assert refreshes[0].loans_changed == Loan.objects.filter(overdue_penalty__gt=0).count() > 0
        buckets = dict(Loan.objects.values_list("bucket").annotate(n=Count("id")))
        assert set(buckets) == set(demo.BUCKETS), buckets  # current and all five arrears buckets
        delinquent = LOANS - buckets["current"]
        assert 0.05 <= delinquent / LOANS <= 0.20
        assert Loan.objects.filter(status="paid_off").exists()
        assert not Loan.objects.filter(status="paid_off", closed_on__isnull=True).exists()
        # a part-paid installment somewhere, and loans not yet due at all
        installments = Installment.objects.all()
        assert any(0 < i.total_paid < i.total_due for i in installments)
        # penalty comes from the refresh only, on late unpaid principal
        assert Installment.objects.filter(penalty_due__gt=0).exists()
        assert not Installment.objects.filter(penalty_due__gt=0, due_date__gte=AS_OF).exists()

        # The stored figures are the refresh's: a second refresh changes nothing ...
        assert services.delinquency_refresh(as_of=AS_OF) == services.RefreshResult(0, 0)
        # ... and each bucket matches the days past due.
        for loan in Loan.objects.select_related("product"):
            assert loan.bucket == bucket_for(loan.days_past_due(AS_OF), loan.product.grace_days), loan
            assert (loan.status == "paid_off") == (loan.oldest_unpaid_due_date is None)

    def test_schedules_payments_and_allocations_agree(self):
        seed("--no-users")
        loans = {loan.id: loan for loan in Loan.objects.select_related("product")}
        principal = dict(
            Installment.objects.values_list("loan_id")
            .annotate(total=Sum("principal_due"))
            .values_list("loan_id", "total")
        )
        assert principal == {loan_id: loan.principal for loan_id, loan in loans.items()}

        # The schedules are loans.schedules': compare a sample in full.
        by_loan = defaultdict(list)
        for inst in Installment.objects.order_by("loan_id", "number"):
            by_loan[inst.loan_id].append(inst)
        for loan in list(loans.values())[::15]:
            expected = schedules.generate_schedule(
                principal=loan.principal, annual_rate=loan.annual_rate, term=loan.term,
                method=loan.product.repayment_method, frequency=loan.product.frequency,
                first_due_date=loan.first_due_date, fee_per_installment=loan.product.installment_fee,
            )  # fmt: skip
            stored = [
                (i.number, i.due_date, i.principal_due, i.interest_due, i.fee_due) for i in by_loan[loan.id]
            ]
            assert stored == [(r.number, r.due_date, r.principal, r.interest, r.fee) for r in expected], loan

        # Paid amounts are the sum of their allocations, per installment and component (one query;
        # ROUND because SQLite sums decimals as floating point).
        with connection.cursor() as cursor:
            cursor.execute(
                """
                SELECT COUNT(*) FROM loans_installment AS i
                LEFT JOIN (SELECT installment_id, SUM(principal) AS p, SUM(interest) AS r, SUM(fee) AS f,
                                  SUM(penalty) AS n
                           FROM loans_allocation GROUP BY installment_id) AS a ON a.installment_id = i.id
                WHERE ROUND(i.principal_paid - COALESCE(a.p, 0), 2) <> 0
                   OR ROUND(i.interest_paid - COALESCE(a.r, 0), 2) <> 0
                   OR ROUND(i.fee_paid - COALESCE(a.f, 0), 2) <> 0
                   OR ROUND(i.penalty_paid - COALESCE(a.n, 0), 2) <> 0
                """
            )
            assert cursor.fetchone()[0] == 0
            # Each payment is its allocations plus what it left unapplied.
            cursor.execute(
                """
                SELECT COUNT(*) FROM loans_payment AS p
                LEFT JOIN (SELECT payment_id, SUM(principal + interest + fee + penalty) AS total
                           FROM loans_allocation GROUP BY payment_id) AS a ON a.payment_id = p.id
                WHERE ROUND(p.amount - COALESCE(a.total, 0) - p.unapplied_amount, 2) <> 0
                """
            )
            assert cursor.fetchone()[0] == 0
        assert not Payment.objects.exclude(value_date__lte=AS_OF).exists()
        assert not Payment.objects.filter(value_date__lt=F("loan__start_date")).exists()

    def test_replaying_the_payments_gives_the_stored_allocation(self):
        """loans.allocation.allocate over the payments gives what the seed stored.

        With the penalty the seed wrote (zero): the refresh adds penalty afterwards, and a replay
        today would send money to it first.
        """
        seed("--no-users")
        installments, payments, lines = defaultdict(list), defaultdict(list), defaultdict(list)
        for inst in Installment.objects.all():
            installments[inst.loan_id].append(inst)
        for payment in Payment.objects.all():
            payments[payment.loan_id].append(payment)
        for line in Allocation.objects.select_related("payment"):
            lines[line.payment.loan_id].append(line)
        loans = list(Loan.objects.select_related("product").order_by("id"))
        interesting = [loan for loan in loans if loan.bucket != "current" or any(
            0 < i.total_paid < i.total_due for i in installments[loan.id])]  # fmt: skip
        sample = interesting[:40] + loans[::10]
        assert len(interesting) > 20
        for loan in sample:
            result = allocation.allocate(
                installments=[
                    allocation.InstallmentDue(
                        key=i.pk, number=i.number, due_date=i.due_date, principal=i.principal_due,
                        interest=i.interest_due, fee=i.fee_due, penalty=ZERO,
                    )
                    for i in installments[loan.id]
                ],
                payments=[
                    allocation.PaymentIn(key=p.pk, value_date=p.value_date, amount=p.amount, sequence=p.pk)
                    for p in payments[loan.id]
                ],
                order=loan.product.waterfall,
                currency=loan.currency,
            )  # fmt: skip
            for inst in installments[loan.id]:
                stored = {
                    "principal": inst.principal_paid,
                    "interest": inst.interest_paid,
                    "fee": inst.fee_paid,
                    "penalty": inst.penalty_paid,
                }
                assert result.paid[inst.pk] == stored, (loan, inst.number)
            assert sorted(
                (x.payment_key, x.installment_key, x.principal, x.interest, x.fee, x.penalty)
                for x in result.lines
            ) == sorted(
                (x.payment_id, x.installment_id, x.principal, x.interest, x.fee, x.penalty)
                for x in lines[loan.id]
            ), loan
            assert result.excess == {}

    def test_same_seed_same_book(self):
        seed("--no-users")
        first = fingerprint()
        seed("--no-users", "--reset")
        assert fingerprint() == first
        call_command(
            "seed_demo", "--loans", str(LOANS), "--seed", str(SEED + 1), "--as-of", AS_OF.isoformat(),
            "--reset", "--no-users", stdout=StringIO(),
        )  # fmt: skip
        assert fingerprint() != first

    def test_refuses_a_book_with_loans_unless_reset(self):
        seed("--no-users")
        before = Loan.objects.count(), Payment.objects.count()
        with pytest.raises(CommandError, match="--reset"):
            seed("--no-users")
        assert (Loan.objects.count(), Payment.objects.count()) == before


class TestUsers:
    def test_printed_users_can_log_in_and_a_rerun_resets_passwords(self):
        output = seed()
        users = re.findall(r"^\s*(\w+) / (\S+) / (\w+)$", output, re.MULTILINE)
        assert [(u, role) for u, _p, role in users] == [
            ("collector", "collector"),
            ("supervisor", "supervisor"),
            ("senior", "senior_supervisor"),
            ("compliance", "compliance_officer"),
            ("admin", "superuser"),
        ]
        for username, password, role in users:
            user = authenticate(HttpRequest(), username=username, password=password)
            assert user is not None and user.is_staff, username
            if role == "superuser":
                assert user.is_superuser
            else:
                assert list(user.groups.values_list("name", flat=True)) == [role]
        assert set(Group.objects.values_list("name", flat=True)) >= {
            "collector",
            "supervisor",
            "senior_supervisor",
            "compliance_officer",
        }

        again = re.findall(r"^\s*(\w+) / (\S+) / (\w+)$", seed("--reset"), re.MULTILINE)
        assert authenticate(HttpRequest(), username="collector", password=users[0][1]) is None
        assert authenticate(HttpRequest(), username="collector", password=again[0][1]) is not None


class TestBadInput:
    @pytest.mark.parametrize(
        "args, message",
        [
            (["--loans", "0"], "--loans must be a whole number of at least 1"),
            (["--loans", "-5"], "--loans must be a whole number of at least 1"),
            (["--as-of", "2025-13-01"], "--as-of must be a date as YYYY-MM-DD"),
            (["--as-of", "yesterday"], "--as-of must be a date as YYYY-MM-DD"),
            (["--as-of", "1999-12-31"], "--as-of must be between"),
        ],
    )
    def test_one_readable_line_and_nothing_written(self, args, message):
        with pytest.raises(CommandError) as excinfo:
            call_command("seed_demo", *args, stdout=StringIO())
        assert message in str(excinfo.value) and "\n" not in str(excinfo.value)
        assert not Loan.objects.exists() and not Partner.objects.exists()
        # (The groups themselves come from the collections app's migration.)
        assert not get_user_model().objects.filter(username="collector").exists()


class TestPostgresBulkLoad:
    def schema(self):
        tables = list(demo.BOOK_TABLES)
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid), convalidated"
                " FROM pg_constraint WHERE conrelid = ANY(%s::regclass[]) ORDER BY 1, 2",
                [tables],
            )
            constraints = cursor.fetchall()
            cursor.execute(
                "SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid)"
                " FROM pg_index WHERE indrelid = ANY(%s::regclass[]) ORDER BY 1",
                [tables],
            )
            return constraints, cursor.fetchall()

    def test_indexes_and_constraints_come_back_as_they_were(self, on_postgres, monkeypatch):
        before = self.schema()
        assert any("EXCLUDE USING gist" in definition for _t, _n, definition, _v in before[0])
        dropped = []
        drop = demo._BulkLoad.drop

        def spy(self):
            drop(self)
            dropped.append(len(self.restore))

        monkeypatch.setattr(demo._BulkLoad, "drop", spy)
        monkeypatch.setattr(demo, "BULK_LOAD_MIN_LOANS", 1)
        seed("--no-users")
        assert dropped and dropped[0] >= 20  # the large-load path ran
        assert self.schema() == before
        assert Loan.objects.count() == LOANS
        # The rebuilt constraints hold, and the sequences moved past the ids written.
        loan = Loan.objects.order_by("id").first()
        terms = {
            "partner": loan.partner, "borrower": loan.borrower, "product": loan.product, "currency": "CNY",
            "principal": Decimal("1000.00"), "annual_rate": Decimal("0.1"), "term": 1, "start_date": AS_OF,
            "first_due_date": date(2025, 7, 30),
        }  # fmt: skip
        with pytest.raises(IntegrityError), transaction.atomic():
            Loan.objects.create(external_ref=loan.external_ref, **terms)
        new = Loan.objects.create(external_ref="NEW-1", **terms)
        assert new.id > Loan.objects.exclude(pk=new.pk).order_by("-id").first().id
