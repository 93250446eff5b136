"""Every compliance admin page renders for a superuser in bounded queries; rule edits are audited."""

from datetime import UTC, datetime
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from compliance.models import (
    AuditEvent,
    BorrowerFlag,
    ChannelOptOut,
    ContactAttempt,
    ContactOverride,
    ContactRule,
    JurisdictionProfile,
)
from loans.models import ContactPoint
from tests.factories import BorrowerFactory

pytestmark = pytest.mark.django_db

MODELS = [JurisdictionProfile, ContactRule, BorrowerFlag, ContactOverride, ChannelOptOut, ContactAttempt]


@pytest.fixture
def records(admin_user):
    borrower = BorrowerFactory()
    point = ContactPoint.objects.create(borrower=borrower, kind="phone", value="13812345678")
    at = datetime(2026, 6, 10, 2, 0, tzinfo=UTC)
    BorrowerFlag.objects.create(borrower=borrower, kind="dispute", reason="r", set_by=admin_user, set_at=at)
    ContactOverride.objects.create(
        borrower=borrower, channel="call", reasons=["quiet_hours"], reason="r", granted_by=admin_user,
        granted_at=at, valid_until=datetime(2026, 6, 11, tzinfo=UTC),
    )  # fmt: skip
    ChannelOptOut.objects.create(borrower=borrower, channel="sms", contact_point=point, at=at)
    ContactAttempt.objects.create(
        borrower=borrower, contact_point=point, channel="call", direction="outbound", at=at
    )


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_pages_render_and_never_show_a_phone_number(
    admin_client, records, model, django_assert_max_num_queries
):
    opts = model._meta
    with django_assert_max_num_queries(20):
        response = admin_client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"))
    assert response.status_code == 200
    assert "13812345678" not in response.content.decode()
    obj = model.objects.order_by("pk").last()
    response = admin_client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk]))
    assert response.status_code == 200
    assert "13812345678" not in response.content.decode()


def test_editing_a_rule_in_the_admin_is_audited(admin_client):
    rule = ContactRule.objects.get(profile__code="cn", rule="quiet_hours")
    response = admin_client.post(
        reverse("admin:compliance_contactrule_change", args=[rule.pk]),
        {"profile": rule.profile_id, "rule": "quiet_hours", "enabled": "on", "start": "21:30:00",
         "end": "08:00:00", "mode": "", "limit": "", "citation": rule.citation},
    )  # fmt: skip
    assert response.status_code == 302
    event = AuditEvent.objects.get(event_type="rule_edit")
    assert event.details["values"]["start"] == "21:30:00"
    assert event.actor.is_superuser


def test_a_supervisor_grants_an_override_in_the_admin_and_a_collector_cannot(client, records):
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group, Permission

    borrower = BorrowerFlag.objects.get().borrower
    url = reverse("admin:compliance_contactoverride_add")
    data = {
        "borrower": borrower.pk,
        "channel": "call",
        "codes": "quiet_hours",
        "reason": "Asked for a late call",
    }
    users = {}
    for name in ("supervisor", "collector"):
        user = get_user_model().objects.create_user(
            username=f"a-{name}", password="x-unused-x", is_staff=True
        )
        user.groups.add(Group.objects.get(name=name))
        user.user_permissions.add(Permission.objects.get(codename="add_contactoverride"))
        users[name] = user
    client.force_login(users["collector"])
    response = client.post(url, data)
    assert response.status_code == 200 and ContactOverride.objects.count() == 1  # the fixture's only
    client.force_login(users["supervisor"])
    response = client.post(url, {**data, "codes": "bankruptcy"})
    assert response.status_code == 200 and ContactOverride.objects.count() == 1
    response = client.post(url, data)
    assert response.status_code == 302
    granted = ContactOverride.objects.latest("pk")
    assert granted.granted_by == users["supervisor"] and granted.reasons == ["quiet_hours"]
    assert AuditEvent.objects.filter(event_type="override", actor=users["supervisor"]).exists()


def test_the_check_contact_command(records):
    borrower = BorrowerFlag.objects.get().borrower
    point = ContactPoint.objects.get(borrower=borrower)
    out = StringIO()
    with pytest.raises(SystemExit) as excinfo:
        call_command("check_contact", borrower.pk, "--channel", "call", "--contact-point", point.pk,
                     "--at", "2026-06-10T12:00+08:00", stdout=out)  # fmt: skip
    assert excinfo.value.code == 3
    assert out.getvalue().startswith("denied: dispute_hold")
    assert "not until a person lifts the bar" in out.getvalue()
    with pytest.raises(CommandError, match="needs an offset"):
        call_command("check_contact", borrower.pk, "--channel", "call", "--at", "2026-06-10T12:00")


def test_adding_a_flag_in_the_admin_goes_through_the_service(admin_client, records):
    borrower = BorrowerFlag.objects.get().borrower
    url = reverse("admin:compliance_borrowerflag_add")
    data = {"borrower": borrower.pk, "kind": "bankruptcy", "reason": "  "}
    response = admin_client.post(url, data)
    assert response.status_code == 200 and BorrowerFlag.objects.count() == 1
    response = admin_client.post(url, {**data, "reason": "Court filing"})
    assert response.status_code == 302
    flag = BorrowerFlag.objects.get(kind="bankruptcy")
    assert flag.set_by.is_superuser and AuditEvent.objects.filter(event_type="flag_set").count() == 1
