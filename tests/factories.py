"""factory-boy factories for the plain records; loans and payments are made through services."""

from datetime import date
from decimal import Decimal

import factory

from loans import services
from loans.models import Borrower, LoanProduct, Partner


class PartnerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Partner
        django_get_or_create = ["code"]

    code = factory.Sequence(lambda n: f"partner-{n}")
    name = factory.LazyAttribute(lambda o: o.code.title())


class BorrowerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Borrower

    partner = factory.SubFactory(PartnerFactory)
    external_ref = factory.Sequence(lambda n: f"B{n:06d}")
    full_name = factory.Faker("name", locale="zh_CN")
    national_id = factory.Faker("ssn", locale="zh_CN")
    time_zone = "Asia/Shanghai"
    region = "CN"


class LoanProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = LoanProduct

    code = factory.Sequence(lambda n: f"product-{n}")
    name = factory.LazyAttribute(lambda o: o.code.title())
    currency = "CNY"
    repayment_method = "annuity"
    frequency = "monthly"
    min_principal = Decimal("100.00")
    max_principal = Decimal("500000.00")
    min_rate = Decimal("0")
    max_rate = Decimal("0.24")
    min_term = 1
    max_term = 60
    grace_days = 0
    penalty_rate = Decimal("0")


def make_loan(
    *,
    borrower=None,
    product=None,
    external_ref=None,
    principal="12000.00",
    annual_rate="0.12",
    term=12,
    start_date=date(2025, 1, 1),
    first_due_date=date(2025, 2, 1),
    schedule=None,
):
    borrower = borrower or BorrowerFactory()
    product = product or LoanProductFactory()
    make_loan.counter += 1
    return services.loan_create(
        partner=borrower.partner,
        borrower=borrower,
        product=product,
        external_ref=external_ref or f"L{make_loan.counter:07d}",
        principal=principal,
        annual_rate=annual_rate,
        term=term,
        start_date=start_date,
        first_due_date=first_due_date,
        schedule=schedule,
    )


make_loan.counter = 0


def pay(loan, amount, value_date, *, ref=None, as_of=None):
    pay.counter += 1
    return services.payment_post(
        loan=loan,
        external_ref=ref or f"P{pay.counter:07d}",
        amount=amount,
        currency=loan.currency,
        value_date=value_date,
        as_of=as_of or value_date,
    )


pay.counter = 0
