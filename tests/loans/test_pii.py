"""National ID numbers at rest and on the loan book's admin pages.

Encrypted in the database (live and historical rows, SQLite and PostgreSQL), found through a keyed
hash, refused as a lookup, re-encrypted by ``rotate_encryption_keys``, encrypted by the data
migration and the demo seed; masked on every admin page a staff member sees.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from io import StringIO
from pathlib import Path
from types import SimpleNamespace

import pytest
from cryptography.fernet import Fernet, InvalidToken
from django.apps import apps
from django.contrib.auth.models import Permission
from django.core.exceptions import FieldError
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import override_settings
from django.urls import reverse

from api.models import WebhookSubscription
from loans import crypto, services
from loans.crypto import DecryptionError, is_token, lookup_hash
from loans.management.commands import rotate_encryption_keys
from loans.models import Borrower, ContactPoint
from tests.factories import PartnerFactory

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent.parent
NUMBER = "11010119900101123X"
PHONE = "13812345678"
OLD_KEY, NEW_KEY, OTHER_KEY = (Fernet.generate_key().decode() for _ in range(3))
HISTORY = Borrower.history.model


def raw_rows(model) -> list[tuple]:
    """Every row of the model's table as the database holds it."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {connection.ops.quote_name(model._meta.db_table)}")  # noqa: S608
        return cursor.fetchall()


def raw_tokens(model) -> list[str]:
    with connection.cursor() as cursor:
        table = connection.ops.quote_name(model._meta.db_table)
        cursor.execute(f"SELECT national_id FROM {table} WHERE national_id <> ''")  # noqa: S608
        return [row[0] for row in cursor.fetchall()]


def assert_no_clear_text(*values: str) -> None:
    for model in (Borrower, HISTORY):
        dump = repr(raw_rows(model))
        for value in values:
            assert value not in dump, (model, value)
            assert value.lower() not in dump.lower(), (model, value)


def opens(key: str, token: str) -> bool:
    try:
        Fernet(key.encode()).decrypt(token.encode())
    except InvalidToken:
        return False
    return True


def make_borrower(number=NUMBER, **kwargs):
    return services.borrower_create(
        partner=kwargs.pop("partner", None) or PartnerFactory(),
        external_ref=kwargs.pop("external_ref", "B-1"),
        full_name="张三",
        national_id=number,
        time_zone="Asia/Shanghai",
        region="CN",
        **kwargs,
    )


class TestAtRest:
    def test_round_trip_and_no_clear_text_in_either_table(self):
        borrower = make_borrower()
        borrower.full_name = "张三丰"
        borrower.save()
        assert Borrower.objects.get(pk=borrower.pk).national_id == NUMBER
        assert HISTORY.objects.count() == 2
        assert {h.national_id for h in HISTORY.objects.all()} == {NUMBER}
        assert [h.instance.national_id for h in borrower.history.all()] == [NUMBER, NUMBER]
        tokens = raw_tokens(Borrower) + raw_tokens(HISTORY)
        assert len(tokens) == 3 and all(is_token(t) for t in tokens)
        assert len(set(tokens)) == 3  # a fresh IV and timestamp every time
        assert_no_clear_text(NUMBER, NUMBER[:-1])

    def test_the_hash_is_kept_with_the_number_on_every_kind_of_write(self):
        borrower = make_borrower()
        digest = lookup_hash(NUMBER)
        assert len(digest) == 64 and borrower.national_id_hash == digest
        assert set(HISTORY.objects.values_list("national_id_hash", flat=True)) == {digest}

        borrower.national_id = "110101199002021111"
        borrower.save(update_fields=["national_id"])
        assert Borrower.objects.get(pk=borrower.pk).national_id_hash == lookup_hash("110101199002021111")

        Borrower.objects.filter(pk=borrower.pk).update(national_id="110101199003031111")
        stored = Borrower.objects.get(pk=borrower.pk)
        assert (stored.national_id, stored.national_id_hash) == (
            "110101199003031111",
            lookup_hash("110101199003031111"),
        )

        stored.national_id = "110101199004041111"
        Borrower.objects.bulk_update([stored], ["national_id"])
        assert Borrower.objects.get(pk=borrower.pk).national_id_hash == lookup_hash("110101199004041111")

        Borrower.objects.bulk_create(
            [Borrower(partner=stored.partner, external_ref="B-2", full_name="李四", national_id="Q1")]
        )
        assert Borrower.objects.get(external_ref="B-2").national_id_hash == lookup_hash("q1")
        assert_no_clear_text("110101199002021111", "110101199003031111", "110101199004041111")

    def test_an_empty_number_stays_empty_with_an_empty_hash(self):
        borrower = make_borrower(number="")
        assert raw_tokens(Borrower) == [] and borrower.national_id_hash == ""
        assert Borrower.objects.get(pk=borrower.pk).national_id == ""
        assert not Borrower.objects.with_national_id("").exists()

    def test_retention_style_update_clears_both(self):
        borrower = make_borrower()
        Borrower.objects.filter(pk=borrower.pk).update(national_id="", national_id_hash="")
        assert raw_tokens(Borrower) == []
        assert Borrower.objects.get(pk=borrower.pk).national_id_hash == ""


class TestLookup:
    def test_exact_match_through_the_hash_normalised(self):
        mine = make_borrower()
        partner = PartnerFactory()
        same_person_elsewhere = make_borrower(partner=partner, external_ref="X-9")
        make_borrower(number="110101199001011235", partner=partner, external_ref="X-10")
        found = Borrower.objects.with_national_id("  11010119900101123x ")
        assert set(found) == {mine, same_person_elsewhere}
        assert set(Borrower.objects.filter(national_id_hash=lookup_hash(NUMBER))) == set(found)
        assert not Borrower.objects.with_national_id("110101199001011236").exists()

    @pytest.mark.parametrize(
        "query",
        [
            {"national_id": NUMBER},
            {"national_id__iexact": NUMBER},
            {"national_id__startswith": "110"},
            {"national_id__in": [NUMBER]},
            {"national_id__lower": NUMBER},
        ],
        ids=lambda q: next(iter(q)),
    )
    def test_lookups_on_the_ciphertext_are_refused_and_point_at_the_hash(self, query):
        make_borrower()
        with pytest.raises(FieldError, match="national_id_hash"):
            list(Borrower.objects.filter(**query))
        with pytest.raises(FieldError):
            Borrower.objects.exclude(**query).count()

    def test_isnull_still_works(self):
        make_borrower()
        assert Borrower.objects.filter(national_id__isnull=False).count() == 1

    def test_the_hash_depends_on_the_hash_key(self):
        digest = lookup_hash(NUMBER)
        with override_settings(FIELD_HASH_KEY="another-hash-key-of-at-least-32-chars"):
            assert lookup_hash(NUMBER) != digest
        assert lookup_hash(NUMBER) == lookup_hash(NUMBER.lower()) == lookup_hash(f" {NUMBER}\n")


class TestKeys:
    def test_a_wrong_key_fails_loudly(self):
        borrower = make_borrower()
        with override_settings(FIELD_ENCRYPTION_KEYS=[OTHER_KEY]):
            with pytest.raises(DecryptionError, match="rotate_encryption_keys"):
                Borrower.objects.get(pk=borrower.pk)
            with pytest.raises(DecryptionError):
                list(HISTORY.objects.all())
            with pytest.raises(DecryptionError):
                list(Borrower.objects.values_list("national_id", flat=True))

    def test_rotation_re_encrypts_everything_with_the_new_key(self):
        with override_settings(FIELD_ENCRYPTION_KEYS=[OLD_KEY]):
            first = make_borrower()
            make_borrower(number="110101199002021111", external_ref="B-2", partner=first.partner)
            first.full_name = "张三丰"
            first.save()
            empty = make_borrower(number="", external_ref="B-3", partner=first.partner)
        assert len(raw_tokens(Borrower)) == 2 and len(raw_tokens(HISTORY)) == 3

        with override_settings(FIELD_ENCRYPTION_KEYS=[NEW_KEY, OLD_KEY]):
            # Before the rotation: old tokens still open, new writes use the new key.
            assert Borrower.objects.get(pk=first.pk).national_id == NUMBER
            newcomer = make_borrower(number="110101199005051111", external_ref="B-4", partner=first.partner)
            assert [opens(NEW_KEY, t) for t in raw_tokens(Borrower)].count(True) == 1
            out = StringIO()
            call_command("rotate_encryption_keys", "--check", stdout=out)
            assert "2 under an older key" in out.getvalue() and "before dropping" in out.getvalue()

            out = StringIO()
            call_command("rotate_encryption_keys", "--batch-size", "2", stdout=out)
            assert (
                "loans_borrower.national_id: 2 re-encrypted, 1 under the first key already." in out.getvalue()
            )
            assert (
                "loans_historicalborrower.national_id: 3 re-encrypted, 1 under the first key"
                in out.getvalue()
            )

            out = StringIO()
            call_command("rotate_encryption_keys", stdout=out)  # a rerun has nothing to do
            assert "0 re-encrypted, 3 under the first key already" in out.getvalue()
            out = StringIO()
            call_command("rotate_encryption_keys", "--check", stdout=out)
            assert "older keys can be dropped" in out.getvalue()

        for token in raw_tokens(Borrower) + raw_tokens(HISTORY):
            assert opens(NEW_KEY, token) and not opens(OLD_KEY, token)
        with override_settings(FIELD_ENCRYPTION_KEYS=[NEW_KEY]):  # the old key dropped
            assert {b.national_id for b in Borrower.objects.all()} == {
                NUMBER,
                "110101199002021111",
                "110101199005051111",
                "",
            }
            assert {h.national_id for h in HISTORY.objects.all()} >= {NUMBER, "110101199002021111"}
            assert Borrower.objects.get(pk=empty.pk).national_id == ""
            assert Borrower.objects.with_national_id("110101199005051111").get() == newcomer

    def test_dropping_a_key_before_the_rotation_is_caught_by_the_check(self):
        with override_settings(FIELD_ENCRYPTION_KEYS=[OLD_KEY]):
            make_borrower()
        with override_settings(FIELD_ENCRYPTION_KEYS=[NEW_KEY]):
            out = StringIO()
            with pytest.raises(CommandError, match="put the missing key back"):
                call_command("rotate_encryption_keys", "--check", stdout=out)
            assert "1 under no key" in out.getvalue()
            with pytest.raises(DecryptionError):
                call_command("rotate_encryption_keys", stdout=StringIO())

    def test_a_new_hash_key_is_applied_by_the_same_command(self):
        borrower = make_borrower()
        with override_settings(FIELD_HASH_KEY="a-new-hash-key-for-the-lookup-column"):
            assert not Borrower.objects.with_national_id(NUMBER).exists()
            out = StringIO()
            call_command("rotate_encryption_keys", "--check", stdout=out)
            assert "1 hashes to recompute" in out.getvalue()
            call_command("rotate_encryption_keys", stdout=StringIO())
            assert Borrower.objects.with_national_id(NUMBER).get() == borrower
            assert set(HISTORY.objects.values_list("national_id_hash", flat=True)) == {lookup_hash(NUMBER)}

    def test_a_row_changed_during_the_rotation_is_left_as_written(self):
        borrower = make_borrower()
        column = next(c for c in rotate_encryption_keys.encrypted_columns() if c.model is Borrower)
        (token,) = raw_tokens(Borrower)
        Borrower.objects.filter(pk=borrower.pk).update(national_id="110101199009091111")  # meanwhile
        assert rotate_encryption_keys._write(column, [(borrower.pk, token, crypto.encrypt(NUMBER), "x")]) == 0
        assert Borrower.objects.get(pk=borrower.pk).national_id == "110101199009091111"

    def test_the_command_finds_the_live_and_the_historical_column(self):
        found = {
            (c.model, c.field.name, c.hash_field and c.hash_field.name)
            for c in rotate_encryption_keys.encrypted_columns()
        }
        assert found == {
            (Borrower, "national_id", "national_id_hash"),
            (HISTORY, "national_id", "national_id_hash"),
            (WebhookSubscription, "secret", None),  # webhook signing secrets: encrypted, never looked up
        }


class TestDataMigration:
    """0008 encrypts numbers stored in clear (before 0007) and decrypts them backwards."""

    migration = importlib.import_module("loans.migrations.0008_encrypt_national_ids")

    def run(self, function):
        editor = SimpleNamespace(connection=connection, quote_name=connection.ops.quote_name)
        function(apps, editor)

    def test_forwards_then_backwards(self):
        clear = make_borrower()
        clear.full_name = "张三丰"
        clear.save()
        encrypted = make_borrower(number="110101199002021111", external_ref="B-2", partner=clear.partner)
        kept_token = next(t for t in raw_tokens(Borrower) if crypto.decrypt(t) == "110101199002021111")
        with connection.cursor() as cursor:  # as 0006 left them: clear text, no hash
            for table in ("loans_borrower", "loans_historicalborrower"):
                cursor.execute(
                    f"UPDATE {table} SET national_id = %s, national_id_hash = '' WHERE id = %s",  # noqa: S608
                    [NUMBER, clear.pk],
                )
        self.run(self.migration.encrypt_numbers)
        assert_no_clear_text(NUMBER)
        assert Borrower.objects.get(pk=clear.pk).national_id == NUMBER
        assert Borrower.objects.with_national_id(NUMBER).get() == clear
        assert {h.national_id for h in clear.history.all()} == {NUMBER}
        assert kept_token in raw_tokens(Borrower)  # a token already is left as it is
        self.run(self.migration.encrypt_numbers)  # a rerun changes nothing
        assert kept_token in raw_tokens(Borrower)

        self.run(self.migration.decrypt_numbers)
        assert sorted(raw_tokens(Borrower)) == sorted([NUMBER, "110101199002021111"])
        assert set(raw_tokens(HISTORY)) == {NUMBER, "110101199002021111"}
        assert Borrower.objects.filter(pk=encrypted.pk).values_list("national_id_hash", flat=True).get() == ""


class TestDemoSeed:
    def seed(self, *extra):
        call_command(
            "seed_demo", "--loans", "40", "--seed", "5", "--as-of", "2025-06-30", "--no-users", *extra,
            stdout=StringIO(),
        )  # fmt: skip

    def test_writes_tokens_and_hashes_and_stays_deterministic_apart_from_the_tokens(self):
        self.seed()
        borrowers = list(Borrower.objects.order_by("external_ref").values_list("external_ref", "national_id"))
        tokens = raw_tokens(Borrower)
        assert len(tokens) == len(borrowers) > 30 and all(is_token(t) for t in tokens)
        assert_no_clear_text(*(number for _ref, number in borrowers))
        for borrower in Borrower.objects.all():
            assert borrower.national_id_hash == lookup_hash(borrower.national_id)
        ref, number = borrowers[0]
        assert Borrower.objects.with_national_id(number.lower()).get().external_ref == ref

        self.seed("--reset")
        again = list(Borrower.objects.order_by("external_ref").values_list("external_ref", "national_id"))
        assert again == borrowers
        assert not set(raw_tokens(Borrower)) & set(tokens)


# --- the admin -------------------------------------------------------------------------------------


def staff(django_user_model, username, *codenames):
    user = django_user_model.objects.create_user(username, password="pw-for-tests-only", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    return user


BORROWER_EDIT = (
    "view_borrower",
    "change_borrower",
    "view_contactpoint",
    "change_contactpoint",
    "add_contactpoint",
)
SECRETS = (NUMBER, PHONE, "zhangsan@example.com", lookup_hash(NUMBER))


@pytest.fixture
def borrower():
    borrower = make_borrower(
        contact_points=[
            services.ContactPointIn(kind="phone", value=PHONE, is_primary=True),
            services.ContactPointIn(kind="phone", value="+8613900001111", label="other", is_third_party=True,
                                    relationship="配偶"),
            services.ContactPointIn(kind="email", value="zhangsan@example.com", is_primary=True),
        ]
    )  # fmt: skip
    return borrower


def pages(client, borrower) -> dict[str, str]:
    """Every admin page that shows the borrower, as HTML."""
    history = borrower.history.order_by("history_id")
    urls = {
        "list": reverse("admin:loans_borrower_changelist"),
        "search": reverse("admin:loans_borrower_changelist") + f"?q={borrower.national_id}",
        "change": reverse("admin:loans_borrower_change", args=[borrower.pk]),
        "history": reverse("admin:loans_borrower_history", args=[borrower.pk]),
        **{
            f"version {h.history_id}": reverse(
                "admin:loans_borrower_simple_history", args=[borrower.pk, h.history_id]
            )
            for h in history
        },
    }
    out = {}
    for name, url in urls.items():
        response = client.get(url, HTTP_ACCEPT_LANGUAGE="en")
        assert response.status_code == 200, (name, response.status_code)
        out[name] = response.content.decode()
    return out


def assert_masked(html_pages: dict[str, str], *secrets: str) -> None:
    for name, html in html_pages.items():
        for secret in secrets:
            assert secret not in html, (name, secret)


class TestAdminMasking:
    def test_a_staff_member_sees_every_page_masked(self, client, django_user_model, borrower):
        client.force_login(staff(django_user_model, "clerk", *BORROWER_EDIT))
        borrower.national_id = "110101199002021111"  # a change for the history list to show
        borrower.save()
        html = pages(client, borrower)
        search = html.pop("search")  # (it shows the number typed into the search box, and nothing else)
        assert borrower.external_ref in search and "110***********1111" in search
        assert_masked({"search": search}, *SECRETS)  # the number searched for is in its links, not others
        assert_masked(html, *SECRETS, "110101199002021111", "13900001111")
        assert "110***********1111" in html["list"] and "110***********1111" in html["change"]
        assert "138****5678" in html["change"] and "+86 139****1111" in html["change"]
        assert "z***n@example.com" in html["change"]
        assert "110***********123X" in html["history"] and "110***********1111" in html["history"]
        assert "lookup hash" not in html["history"]
        for page in html.values():
            assert "/reveal/" not in page  # no permission to reveal: no link

    def test_a_view_only_staff_member_sees_it_masked_too(self, client, django_user_model, borrower):
        client.force_login(staff(django_user_model, "viewer", "view_borrower", "view_contactpoint"))
        html = pages(client, borrower)
        html.pop("search")
        assert_masked(html, *SECRETS, "13900001111")
        assert "110***********123X" in html["change"] and "138****5678" in html["change"]

    def test_a_superuser_sees_it_masked_until_revealed(self, admin_client, borrower):
        html = pages(admin_client, borrower)
        html.pop("search")
        assert_masked(html, *SECRETS, "13900001111")
        reveal = reverse("admin:loans_borrower_reveal", args=[borrower.pk, "national_id"])
        assert reveal in html["change"]

    def test_an_empty_input_keeps_the_number_and_a_new_one_replaces_it(
        self, client, django_user_model, borrower
    ):
        client.force_login(staff(django_user_model, "clerk", *BORROWER_EDIT))
        points = list(borrower.contact_points.order_by("pk"))
        rows = [{"id": p.pk, "kind": p.kind, "label": p.label, "value": "", **flags(p)} for p in points]
        new_row = {"kind": "phone", "label": "work", "value": "13700002222", "consent_given": "on"}
        url = reverse("admin:loans_borrower_change", args=[borrower.pk])
        response = client.post(url, change_form(borrower, rows + [new_row], full_name="张三丰"))
        assert response.status_code == 302, response.content.decode()[:3000]
        borrower.refresh_from_db()
        assert borrower.full_name == "张三丰" and borrower.national_id == NUMBER
        assert [p.value for p in borrower.contact_points.order_by("pk")] == [
            PHONE,
            "+8613900001111",
            "zhangsan@example.com",
            "13700002222",
        ]
        history_before = borrower.history.count()

        rows[0]["value"] = "13600003333"
        response = client.post(url, change_form(borrower, rows, national_id=" 110101199002021111 "))
        assert response.status_code == 302, response.content.decode()[:3000]
        borrower.refresh_from_db()
        assert borrower.national_id == "110101199002021111"
        assert borrower.national_id_hash == lookup_hash("110101199002021111")
        assert borrower.contact_points.order_by("pk").first().value == "13600003333"
        assert borrower.history.count() == history_before + 1

    def test_a_new_contact_point_needs_its_value(self, client, django_user_model, borrower):
        client.force_login(staff(django_user_model, "clerk", *BORROWER_EDIT))
        new_row = {"kind": "phone", "label": "work", "value": "", "consent_given": "on"}
        url = reverse("admin:loans_borrower_change", args=[borrower.pk])
        response = client.post(url, change_form(borrower, [new_row]))
        assert response.status_code == 200
        assert response.context["inline_admin_formsets"][0].formset.errors[0]["value"]
        assert ContactPoint.objects.filter(borrower=borrower).count() == 3


def flags(point) -> dict:
    checked = {
        name: "on"
        for name in ("is_primary", "consent_given", "is_third_party", "is_valid")
        if getattr(point, name)
    }
    return {**checked, "relationship": point.relationship}


def change_form(borrower, rows: list[dict], **fields) -> dict:
    """The borrower change form as posted: ``rows`` of the contact point inline (existing ones first)."""
    data = {
        "partner": borrower.partner_id,
        "external_ref": borrower.external_ref,
        "full_name": borrower.full_name,
        "national_id": "",
        "time_zone": "Asia/Shanghai",
        "preferred_language": "zh-hans",
        "region": "CN",
        **fields,
    }
    prefix = "contact_points"
    data.update({
        f"{prefix}-TOTAL_FORMS": str(len(rows)),
        f"{prefix}-INITIAL_FORMS": str(sum("id" in row for row in rows)),
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
    })  # fmt: skip
    for i, row in enumerate(rows):
        data.update({f"{prefix}-{i}-{name}": value for name, value in {"is_valid": "on", **row}.items()})
        if "id" in row:
            data[f"{prefix}-{i}-borrower"] = borrower.pk
    return data


# --- production settings ---------------------------------------------------------------------------

GOOD_SECRET = "k" * 50
GOOD_HASH_KEY = "h" * 40


def django_check(**env):
    names = {"DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "DJANGO_ENV", "FIELD_ENCRYPTION_KEYS", "FIELD_HASH_KEY"}
    clean = {k: v for k, v in os.environ.items() if k not in names}
    clean.update(env)
    return subprocess.run(  # noqa: S603 - a fixed command line
        [sys.executable, "-c", "import django; django.setup(); print('started')"],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )


PRODUCTION = {"DJANGO_ENV": "production", "SECRET_KEY": GOOD_SECRET, "ALLOWED_HOSTS": "collections.example"}


class TestProductionKeys:
    @pytest.mark.parametrize(
        ("env", "message"),
        [
            ({"FIELD_HASH_KEY": GOOD_HASH_KEY}, "FIELD_ENCRYPTION_KEYS"),
            (
                {
                    "FIELD_ENCRYPTION_KEYS": "ZGV2ZWxvcG1lbnQtb25seS1mZXJuZXQta2V5LTAwMDE=",
                    "FIELD_HASH_KEY": GOOD_HASH_KEY,
                },
                "FIELD_ENCRYPTION_KEYS",
            ),
            ({"FIELD_ENCRYPTION_KEYS": NEW_KEY}, "FIELD_HASH_KEY"),
            ({"FIELD_ENCRYPTION_KEYS": NEW_KEY, "FIELD_HASH_KEY": "short"}, "FIELD_HASH_KEY"),
            ({"FIELD_ENCRYPTION_KEYS": "not-a-key", "FIELD_HASH_KEY": GOOD_HASH_KEY}, "Fernet keys"),
        ],
        ids=["no encryption key", "the development key", "no hash key", "a short hash key", "a bad key"],
    )
    def test_production_refuses_to_start_without_its_own_keys(self, env, message):
        result = django_check(**PRODUCTION, **env)
        assert result.returncode != 0
        assert "ImproperlyConfigured" in result.stderr and message in result.stderr
        assert NEW_KEY not in result.stderr  # a key is never printed

    def test_production_starts_with_keys_and_development_without(self):
        result = django_check(
            **PRODUCTION, FIELD_ENCRYPTION_KEYS=f"{NEW_KEY}, {OLD_KEY}", FIELD_HASH_KEY=GOOD_HASH_KEY
        )
        assert result.returncode == 0, result.stderr
        result = django_check()
        assert result.returncode == 0 and "started" in result.stdout, result.stderr

    def test_a_malformed_key_is_refused_in_development_too(self):
        result = django_check(FIELD_ENCRYPTION_KEYS=f"{NEW_KEY},{NEW_KEY[:-2]}")
        assert result.returncode != 0 and "Fernet keys" in result.stderr
