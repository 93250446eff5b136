"""The authorisation matrix: every endpoint x (anonymous, a key without the scope, a key of another
partner, a key with the scope, collector, supervisor, compliance officer).

Expected: anonymous 401; the wrong scope 403; another partner's record 404; the partner's own key
allowed where partner keys may act at all (403 where only staff may: decisions, referrals, audit);
each staff role allowed exactly where its Django permissions say (403 elsewhere). "Allowed" means the
request got past authentication and authorisation: 2xx, or a 4xx about the body or the state (400,
409, 422), never 401, 403 or 404."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from api.models import SCOPES, WebhookDelivery, WebhookSubscription
from debt_collections import referrals, restructuring
from debt_collections.models import OutboxEvent, Team, TeamMember
from tests.api.conftest import idem, key_client, staff_client
from tests.api.test_cases import case_of, loan_late, scan
from tests.factories import pay

pytestmark = pytest.mark.django_db

C, S, K = "collector", "supervisor", "compliance_officer"


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # {name} placeholders filled from the book
    scope: str | None  # the partner scope needed; None: partner keys may not
    staff: frozenset  # staff roles allowed
    body: dict | None = None
    owned: bool = True  # names one of the partner's records (another partner's answers 404)

    def url(self, book: dict) -> str:
        return "/api/v1/" + self.path.format(**book)


def _in_ten_days() -> str:
    return (timezone.localdate() + timedelta(days=10)).isoformat()


TERMS = {"case": "{case}", "kind": "term_extension", "new_term": 24, "first_due_date": _in_ten_days()}
READ_ALL = frozenset({C, S, K})
CASE_WORK = frozenset({C, S})
NOBODY = frozenset()

ENDPOINTS = [
    Endpoint("get", "borrowers/", "borrowers:read", READ_ALL, owned=False),
    Endpoint("get", "borrowers/{borrower}/", "borrowers:read", READ_ALL),
    Endpoint(
        "post", "borrowers/", "borrowers:write", NOBODY, {"external_ref": "NEW", "full_name": "李四"}, False
    ),
    Endpoint("get", "loans/", "loans:read", READ_ALL, owned=False),
    Endpoint("get", "loans/{loan}/", "loans:read", READ_ALL),
    Endpoint("get", "loans/{loan}/schedule/", "loans:read", READ_ALL),
    Endpoint("post", "loans/", "loans:write", NOBODY, {"external_ref": "NEW"}, False),
    Endpoint("get", "payments/", "payments:read", READ_ALL, owned=False),
    Endpoint("get", "payments/{payment}/", "payments:read", READ_ALL),
    Endpoint("post", "payments/", "payments:write", NOBODY, {"external_ref": "NEW"}, False),
    Endpoint("post", "payments/batch/", "payments:write", NOBODY, {"payments": []}, False),
    Endpoint("post", "payments/{payment}/reverse/", "payments:write", NOBODY, {"reason": "bounced"}),
    Endpoint("get", "cases/", "cases:read", READ_ALL, owned=False),
    Endpoint("get", "cases/{case}/", "cases:read", READ_ALL),
    Endpoint("get", "cases/{case}/contacts/", "cases:read", READ_ALL),
    Endpoint(
        "post",
        "cases/{case}/contacts/",
        "cases:write",
        CASE_WORK,
        {"channel": "call", "outcome": "no_answer"},
    ),
    Endpoint("get", "cases/{case}/promises/", "cases:read", READ_ALL),
    Endpoint("post", "cases/{case}/promises/", "cases:write", CASE_WORK, {"amount": "100.00"}),
    Endpoint("get", "cases/{case}/notices/", "cases:read", READ_ALL),
    Endpoint("post", "cases/{case}/notices/", "cases:write", CASE_WORK, {"channel": "sms"}),
    Endpoint("get", "restructurings/", "cases:read", READ_ALL, owned=False),
    Endpoint("get", "restructurings/{restructuring}/", "cases:read", READ_ALL),
    Endpoint("post", "restructurings/", "cases:write", CASE_WORK, {**TERMS, "reason": "lost his job"}),
    Endpoint("post", "restructurings/preview/", "cases:read", READ_ALL, TERMS),
    Endpoint(
        "post", "restructurings/{restructuring}/reject/", None, frozenset({S}), {"reason": "not affordable"}
    ),
    Endpoint(
        "post", "restructurings/{restructuring}/approve/", None, frozenset({S}), {"reason": "affordable"}
    ),
    Endpoint("get", "legal-referrals/", "cases:read", READ_ALL, owned=False),
    Endpoint("get", "legal-referrals/{referral}/", "cases:read", READ_ALL),
    Endpoint("post", "legal-referrals/", None, CASE_WORK, {"case": "{case}"}),
    Endpoint(
        "post", "legal-referrals/{referral}/reject/", None, frozenset({S}), {"reason": "pay plan first"}
    ),
    Endpoint("post", "legal-referrals/{referral}/approve/", None, frozenset({S}), {"reason": "no contact"}),
    Endpoint(
        "post", "contact-checks/", "cases:read", READ_ALL, {"borrower": "{borrower}", "channel": "call"}
    ),
    Endpoint("get", "audit-events/", None, frozenset({K}), owned=False),
    Endpoint("get", "audit-events/{audit_event}/", None, frozenset({K}), owned=False),
    Endpoint("get", "audit-events/verify/", None, frozenset({K}), owned=False),
    Endpoint("get", "webhooks/", "webhooks:manage", NOBODY, owned=False),
    Endpoint("post", "webhooks/", "webhooks:manage", NOBODY, {"url": "https://example.com/hook"}, False),
    Endpoint("get", "webhooks/{webhook}/", "webhooks:manage", NOBODY),
    Endpoint("patch", "webhooks/{webhook}/", "webhooks:manage", NOBODY, {"description": "dialer"}),
    Endpoint("get", "webhooks/{webhook}/deliveries/", "webhooks:manage", NOBODY),
    Endpoint("post", "webhooks/{webhook}/deliveries/{delivery}/redeliver/", "webhooks:manage", NOBODY, {}),
    Endpoint("delete", "webhooks/{webhook}/", "webhooks:manage", NOBODY),
]


def _loans(partner):
    loan, referred = loan_late(partner, 100), loan_late(partner, 100)
    return loan, referred, pay(loan, "10.00", timezone.localdate() - timedelta(days=1))


def _book(partner, loans, staff: dict) -> dict:
    """One of everything for ``partner``: a case at 100 days (restructuring desk) with a proposal by
    a second collector, another with a referral requested by a second supervisor, a payment, a
    webhook subscription with one delivery."""
    loan, referred, payment = loans
    case, referral_case = case_of(loan), case_of(referred)
    proposal = restructuring.restructuring_propose(
        case=case, kind="term_extension", actor=staff["collector2"], reason="hardship",
        first_due_date=timezone.localdate() + timedelta(days=10), new_term=24,
    )  # fmt: skip
    referral = referrals.referral_request(
        case=referral_case, actor=staff["supervisor2"], reason="no contact for 90 days",
        forbearance_considered="a longer term was offered and refused",
    )  # fmt: skip
    hook = WebhookSubscription.objects.create(partner=partner, url="https://example.com/in", secret="s" * 32)
    event = OutboxEvent.objects.create(
        event_type="case.opened", partner=partner, subject_id=case.pk, payload={}, created_at=timezone.now()
    )
    delivery = WebhookDelivery.objects.create(subscription=hook, event=event, next_attempt_at=timezone.now())
    from compliance.models import AuditEvent

    return {
        "borrower": loan.borrower_id, "loan": loan.pk, "payment": payment.pk, "case": case.pk,
        "restructuring": proposal.pk, "referral": referral.pk, "webhook": hook.pk, "delivery": delivery.pk,
        "audit_event": AuditEvent.objects.order_by("id").values_list("pk", flat=True).first(),
    }  # fmt: skip


@pytest.fixture
def world(partner, other_partner):
    roles = {C: staff_client(C), S: staff_client(S), K: staff_client(K)}
    helpers = {"collector2": staff_client(C).user, "supervisor2": staff_client(S).user}
    for team in Team.objects.all():  # the collectors work every team's cases
        for client in (roles[C], staff_client(C)):
            TeamMember.objects.get_or_create(team=team, user=client.user)
        TeamMember.objects.get_or_create(team=team, user=helpers["collector2"])
    my_loans, their_loans = _loans(partner), _loans(other_partner)
    scan()  # one scan a day: both partners' cases open in it
    mine = _book(partner, my_loans, helpers)
    theirs = _book(other_partner, their_loans, helpers)
    return {"mine": mine, "theirs": theirs, "roles": roles}


def _call(client, endpoint: Endpoint, book: dict):
    body = None
    if endpoint.body is not None:
        body = {
            k: (book[v[1:-1]] if isinstance(v, str) and v.startswith("{") else v)
            for k, v in endpoint.body.items()
        }
    kwargs = {"format": "json", **idem()} if endpoint.method in ("post", "patch") else {}
    return getattr(client, endpoint.method)(endpoint.url(book), body, **kwargs)


def _allowed(response) -> bool:
    return response.status_code not in (401, 403, 404) and response.status_code < 500


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: f"{e.method.upper()} {e.path}")
def test_authorisation_matrix(endpoint, world, partner, other_partner):
    mine, theirs, roles = world["mine"], world["theirs"], world["roles"]
    outcome = {}

    outcome["anonymous"] = _call(APIClient(HTTP_ACCEPT_LANGUAGE="en"), endpoint, mine).status_code
    other_scopes = [s for s in SCOPES if s != endpoint.scope]
    outcome["wrong scope"] = _call(key_client(partner, other_scopes), endpoint, mine).status_code
    if endpoint.owned and endpoint.scope:
        outcome["other partner"] = _call(key_client(other_partner), endpoint, mine).status_code
    for role, client in roles.items():
        response = _call(client, endpoint, mine)
        outcome[role] = "allowed" if _allowed(response) else response.status_code
    own = _call(key_client(partner), endpoint, mine)
    outcome["own key"] = "allowed" if _allowed(own) else own.status_code

    expected = {"anonymous": 401, "wrong scope": 403}
    if endpoint.owned and endpoint.scope:
        expected["other partner"] = 404
    for role in roles:
        expected[role] = "allowed" if role in endpoint.staff else 403
    expected["own key"] = "allowed" if endpoint.scope else 403
    assert outcome == expected
    # The other partner's book was never touched through this partner's key.
    assert theirs
