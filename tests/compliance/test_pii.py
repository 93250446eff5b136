"""Personal data in the collector UI: the masks, and revealing one value with a permission, a reason and
an audit event; the admin's reveal page."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse

from compliance.audit import verify_chain
from compliance.models import AuditEvent
from compliance.pii import (
    mask_contact_value,
    mask_email,
    mask_national_id,
    mask_phone,
    mask_text,
    pii_reveal,
)
from loans import services
from tests.factories import PartnerFactory

NUMBER = "110101199001011234"
PHONE = "13812345678"


class TestMasks:
    @pytest.mark.parametrize(
        ("value", "masked"),
        [
            ("110101199001011234", "110***********1234"),
            ("11010119900101123X", "110***********123X"),
            (" 110101900101123 ", "110********1123"),  # the old 15-digit number
            ("AB123456C", "AB*****6C"),  # a UK National Insurance number
            ("123-45-6789", "12*-**-**89"),  # a US SSN: the hyphens stay
            ("12345", "****5"),
            ("12", "**"),
            ("", ""),
            (None, ""),
        ],
    )
    def test_national_id(self, value, masked):
        assert mask_national_id(value) == masked
        if value and len(value.strip()) > 2:
            assert len(masked) == len(value.strip())

    @pytest.mark.parametrize(
        ("value", "masked"),
        [
            ("13812345678", "138****5678"),
            ("+8613812345678", "+86 138****5678"),
            ("+86 138 1234 5678", "+86 138****5678"),
            ("008613812345678", "+86 138****5678"),
            ("8613812345678", "+86 138****5678"),
            ("010-12345678", "010****5678"),  # a Beijing landline
            ("+12125550123", "+1 21******23"),
            ("+44 7700 900123", "+44 77******23"),
            ("+85291234567", "+852 91****67"),
            ("12345", "****5"),
            ("12", "**"),
            ("n/a", "***"),
            ("", ""),
            (None, ""),
        ],
    )
    def test_phone(self, value, masked):
        assert mask_phone(value) == masked

    @pytest.mark.parametrize(
        ("value", "masked"),
        [
            ("zhangsan@example.com", "z***n@example.com"),
            ("ab@example.com", "***@example.com"),
            ("not-an-address", "not-****"),
            ("", ""),
        ],
    )
    def test_email(self, value, masked):
        assert mask_email(value) == masked

    def test_contact_value_by_kind(self):
        assert mask_contact_value("phone", PHONE) == "138****5678"
        assert mask_contact_value("email", "li.na@example.org") == "l***a@example.org"
        assert mask_contact_value("address", "北京市朝阳区建国路88号院3号楼") == "北京市朝阳****"
        assert mask_text("Flat 2, 10 Downing Street, London") == "Flat 2****"


@pytest.fixture
def borrower(db):
    return services.borrower_create(
        partner=PartnerFactory(),
        external_ref="B-1",
        full_name="张三",
        national_id=NUMBER,
        time_zone="Asia/Shanghai",
        region="CN",
        contact_points=[
            services.ContactPointIn(kind="phone", value=PHONE, is_primary=True),
            services.ContactPointIn(kind="email", value="zhangsan@example.com", is_primary=True),
        ],
    )


def user(django_user_model, username, *codenames, **extra):
    person = django_user_model.objects.create_user(username, password="pw-for-tests-only", **extra)
    person.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    return django_user_model.objects.get(pk=person.pk)  # a fresh permission cache


@pytest.mark.django_db
class TestReveal:
    def test_needs_the_permission_and_writes_nothing_without_it(self, borrower, django_user_model):
        clerk = user(django_user_model, "clerk", "view_borrower", "change_borrower")
        with pytest.raises(PermissionDenied):
            pii_reveal(borrower=borrower, field="national_id", actor=clerk, reason="the borrower called")
        assert not AuditEvent.objects.filter(event_type="pii_reveal").exists()

    @pytest.mark.parametrize("reason", ["", "   ", None])
    def test_needs_a_reason(self, borrower, django_user_model, reason):
        officer = user(django_user_model, "officer", "reveal_pii")
        with pytest.raises(ValidationError) as excinfo:
            pii_reveal(borrower=borrower, field="national_id", actor=officer, reason=reason)
        assert "reason" in excinfo.value.message_dict
        assert not AuditEvent.objects.filter(event_type="pii_reveal").exists()

    def test_a_reason_has_a_length_limit(self, borrower, django_user_model):
        officer = user(django_user_model, "officer", "reveal_pii")
        with pytest.raises(ValidationError) as excinfo:
            pii_reveal(borrower=borrower, field="national_id", actor=officer, reason="x" * 501)
        assert "reason" in excinfo.value.message_dict

    def test_reveals_the_number_and_audits_the_field_and_reason_not_the_value(
        self, borrower, django_user_model
    ):
        officer = user(django_user_model, "officer", "reveal_pii")
        value = pii_reveal(borrower=borrower, field="national_id", actor=officer, reason="  identity check  ")
        assert value == NUMBER
        event = AuditEvent.objects.get(event_type="pii_reveal")
        assert event.actor == officer and event.actor_label == "officer"
        assert (event.subject_type, event.subject_id) == ("loans.borrower", str(borrower.pk))
        assert event.details == {"field": "national_id", "reason": "identity check"}
        assert NUMBER not in repr(AuditEvent.objects.values_list()[::1])
        assert verify_chain() is None

    def test_reveals_a_contact_point_of_this_borrower_only(self, borrower, django_user_model):
        officer = user(django_user_model, "officer", "reveal_pii")
        phone = borrower.contact_points.get(kind="phone")
        field = f"contact_point:{phone.pk}"
        assert pii_reveal(borrower=borrower, field=field, actor=officer, reason="callback") == PHONE
        event = AuditEvent.objects.get(event_type="pii_reveal")
        assert event.details == {"field": field, "reason": "callback", "kind": "phone"}
        assert PHONE not in repr(event.details)

        other = services.borrower_create(partner=borrower.partner, external_ref="B-2", full_name="李四")
        for bad in (field, "contact_point:x", "contact_point:", "full_name", "national_id"):
            with pytest.raises(ValidationError) as excinfo:
                pii_reveal(borrower=other, field=bad, actor=officer, reason="callback")
            assert "field" in excinfo.value.message_dict, bad
        assert AuditEvent.objects.filter(event_type="pii_reveal").count() == 1

    def test_a_superuser_may_reveal_and_an_inactive_user_may_not(self, borrower, django_user_model):
        boss = django_user_model.objects.create_superuser("boss", "boss@example.com", "pw-for-tests-only")
        assert pii_reveal(borrower=borrower, field="national_id", actor=boss, reason="audit sample") == NUMBER
        boss.is_active = False
        with pytest.raises(PermissionDenied):
            pii_reveal(borrower=borrower, field="national_id", actor=boss, reason="audit sample")

    def test_the_value_and_the_event_go_together(self, borrower, django_user_model, monkeypatch):
        officer = user(django_user_model, "officer", "reveal_pii")

        def broken(**kwargs):
            raise RuntimeError("the audit log is down")

        monkeypatch.setattr("compliance.pii.audit_record", broken)
        with pytest.raises(RuntimeError):
            pii_reveal(borrower=borrower, field="national_id", actor=officer, reason="identity check")


@pytest.mark.django_db
class TestAdminReveal:
    BORROWER = ("view_borrower", "change_borrower", "view_contactpoint", "change_contactpoint")

    def test_the_link_asks_for_a_reason_then_shows_the_value_once(self, client, borrower, django_user_model):
        client.force_login(user(django_user_model, "officer", *self.BORROWER, "reveal_pii", is_staff=True))
        change = client.get(
            reverse("admin:loans_borrower_change", args=[borrower.pk]), HTTP_ACCEPT_LANGUAGE="en"
        )
        page = change.content.decode()
        url = reverse("admin:loans_borrower_reveal", args=[borrower.pk, "national_id"])
        phone = borrower.contact_points.get(kind="phone")
        phone_url = reverse("admin:loans_borrower_reveal", args=[borrower.pk, f"contact_point:{phone.pk}"])
        assert url in page and phone_url in page
        assert NUMBER not in page and PHONE not in page

        form = client.get(url, HTTP_ACCEPT_LANGUAGE="en")
        assert form.status_code == 200
        assert "110***********1234" in form.content.decode() and NUMBER not in form.content.decode()
        assert "no-store" in form["Cache-Control"]

        refused = client.post(url, {"reason": "  "}, HTTP_ACCEPT_LANGUAGE="en")
        assert refused.status_code == 200 and NUMBER not in refused.content.decode()
        assert refused.context["form"].errors["reason"]
        assert not AuditEvent.objects.filter(event_type="pii_reveal").exists()

        shown = client.post(
            url, {"reason": "the borrower asked for their records"}, HTTP_ACCEPT_LANGUAGE="en"
        )
        assert shown.status_code == 200 and NUMBER in shown.content.decode()
        assert "no-store" in shown["Cache-Control"]
        event = AuditEvent.objects.get(event_type="pii_reveal")
        assert event.details == {"field": "national_id", "reason": "the borrower asked for their records"}

        shown = client.post(phone_url, {"reason": "callback"}, HTTP_ACCEPT_LANGUAGE="en")
        assert PHONE in shown.content.decode() and "138****5678" in shown.content.decode()
        assert AuditEvent.objects.filter(event_type="pii_reveal").count() == 2
        assert client.get(url, HTTP_ACCEPT_LANGUAGE="en").content.decode().count(NUMBER) == 0

    def test_a_staff_member_without_the_permission_gets_no_link_and_a_403(
        self, client, borrower, django_user_model
    ):
        client.force_login(user(django_user_model, "clerk", *self.BORROWER, is_staff=True))
        page = client.get(reverse("admin:loans_borrower_change", args=[borrower.pk])).content.decode()
        assert "/reveal/" not in page
        url = reverse("admin:loans_borrower_reveal", args=[borrower.pk, "national_id"])
        assert client.get(url).status_code == 403
        assert client.post(url, {"reason": "curious"}).status_code == 403
        assert not AuditEvent.objects.filter(event_type="pii_reveal").exists()

    def test_the_permission_alone_does_not_open_a_borrower_one_cannot_view(
        self, client, borrower, django_user_model
    ):
        client.force_login(user(django_user_model, "outsider", "reveal_pii", is_staff=True))
        url = reverse("admin:loans_borrower_reveal", args=[borrower.pk, "national_id"])
        assert client.post(url, {"reason": "curious"}).status_code == 403

    def test_unknown_fields_and_borrowers_are_not_found(self, admin_client, borrower):
        for args in (
            [borrower.pk, "full_name"],
            [borrower.pk, "contact_point:999999"],
            [999999, "national_id"],
        ):
            response = admin_client.get(reverse("admin:loans_borrower_reveal", args=args))
            assert response.status_code in (302, 404), args
        assert not AuditEvent.objects.filter(event_type="pii_reveal").exists()
