"""The loan book's admin screens: every page renders in bounded queries; bad input is a form error."""

from datetime import date

import pytest
from django.core.management import call_command
from django.urls import reverse

from loans.models import Allocation, Borrower, ContactPoint, Installment, Loan, LoanProduct, Partner, Payment

pytestmark = pytest.mark.django_db

MODELS = [Partner, Borrower, LoanProduct, Loan, Installment, Payment, Allocation]


@pytest.fixture
def book():
    call_command(
        "seed_demo", "--loans", "60", "--seed", "3", "--as-of", "2026-06-30", "--no-users", stdout=None
    )


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_list_and_change_pages_render_in_bounded_queries(
    admin_client, book, model, django_assert_max_num_queries
):
    opts = model._meta
    with django_assert_max_num_queries(15):  # no query per row: a page of 100 rows costs the same
        response = admin_client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"))
    assert response.status_code == 200
    obj = model.objects.order_by("pk").last()
    response = admin_client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk]))
    assert response.status_code == 200
    response = admin_client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_history", args=[obj.pk]))
    assert response.status_code == 200


def test_money_records_are_read_only_in_the_admin(admin_client, book):
    loan = Loan.objects.first()
    response = admin_client.post(reverse("admin:loans_loan_change", args=[loan.pk]), {"principal": "1.00"})
    assert response.status_code == 403
    assert admin_client.get(reverse("admin:loans_payment_add")).status_code == 403


def test_a_product_with_an_impossible_range_is_a_form_error(admin_client):
    response = admin_client.post(
        reverse("admin:loans_loanproduct_add"),
        {
            "code": "bad",
            "name": "Bad",
            "currency": "CNY",
            "repayment_method": "annuity",
            "frequency": "monthly",
            "min_principal": "5000.00",
            "max_principal": "1000.00",
            "min_rate": "0",
            "max_rate": "0.24",
            "min_term": "1",
            "max_term": "12",
            "grace_days": "0",
            "penalty_rate": "0",
            "installment_fee": "0",
            "allocation_order": "penalty,fee,interest,principal",
            "is_active": "on",
        },
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert response.status_code == 200
    assert "The minimum principal must be positive and not above the maximum." in response.content.decode()
    assert not LoanProduct.objects.filter(code="bad").exists()


def test_ticking_opted_out_in_the_admin_records_when(admin_client):
    from tests.factories import BorrowerFactory

    borrower = BorrowerFactory()
    point = ContactPoint.objects.create(borrower=borrower, kind="phone", value="13800000000", is_primary=True)
    prefix = "contact_points"
    data = {
        "partner": borrower.partner_id,
        "external_ref": borrower.external_ref,
        "full_name": borrower.full_name,
        "national_id": "",
        "time_zone": "Asia/Shanghai",
        "preferred_language": "zh-hans",
        "region": "CN",
        f"{prefix}-TOTAL_FORMS": "1",
        f"{prefix}-INITIAL_FORMS": "1",
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
        f"{prefix}-0-id": point.pk,
        f"{prefix}-0-borrower": borrower.pk,
        f"{prefix}-0-kind": "phone",
        f"{prefix}-0-label": "mobile",
        f"{prefix}-0-value": "13800000000",
        f"{prefix}-0-is_primary": "on",
        f"{prefix}-0-consent_given": "on",
        f"{prefix}-0-opted_out": "on",
        f"{prefix}-0-is_valid": "on",
    }
    response = admin_client.post(reverse("admin:loans_borrower_change", args=[borrower.pk]), data)
    assert response.status_code == 302, response.content.decode()[:2000]
    point.refresh_from_db()
    assert point.opted_out and point.opted_out_at is not None
    assert date.today() >= point.opted_out_at.date()
