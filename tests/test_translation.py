"""The Simplified Chinese catalogue: complete, compiled, and what an operator in China sees."""

import ast
import gettext as stdlib_gettext
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import translation

from loans import services
from loans.apps import LoansConfig
from loans.models import Bucket, Loan, Payment

LC_MESSAGES = Path(settings.BASE_DIR) / "locale" / "zh_Hans" / "LC_MESSAGES"
PO_FILE = LC_MESSAGES / "django.po"
MO_FILE = LC_MESSAGES / "django.mo"
PLACEHOLDER = re.compile(r"%(?:\([^)]+\))?[#0 +-]*\d*(?:\.\d+)?[sdifrxXeEgGc%]")


def read_po(path):
    """The entries of a .po file as written by makemessages (one blank line between entries).

    Each is a dict: ``flags`` (a set), ``msgstr`` ({index: text}) and ``msgctxt``, ``msgid``,
    ``msgid_plural`` when present. Obsolete (``#~``) entries are skipped.
    """
    entries = []
    for block in re.split(r"\n\s*\n", path.read_text(encoding="utf-8")):
        entry, key = {"flags": set(), "msgstr": {}}, None
        for line in (raw.strip() for raw in block.splitlines()):
            if line.startswith("#,"):
                entry["flags"].update(flag.strip() for flag in line[2:].split(",") if flag.strip())
            elif line.startswith("#") or not line:
                continue
            elif line.startswith('"'):
                if isinstance(key, int):
                    entry["msgstr"][key] += ast.literal_eval(line)
                else:
                    entry[key] += ast.literal_eval(line)
            else:
                keyword, _, rest = line.partition(" ")
                if keyword.startswith("msgstr"):
                    key = int(keyword[7:-1]) if "[" in keyword else 0
                    entry["msgstr"][key] = ast.literal_eval(rest)
                else:
                    key = keyword
                    entry[key] = ast.literal_eval(rest)
        if "msgid" in entry:
            entries.append(entry)
    return entries


ENTRIES = read_po(PO_FILE)
HEADER = next(e for e in ENTRIES if e["msgid"] == "" and "msgctxt" not in e)
MESSAGES = [e for e in ENTRIES if e is not HEADER]


def label(entry):
    return f"{entry['msgctxt']}|{entry['msgid']}" if "msgctxt" in entry else entry["msgid"]


def test_the_catalogue_has_messages():
    assert len(MESSAGES) > 100


def test_the_header_declares_simplified_chinese_with_one_plural_form():
    header = HEADER["msgstr"][0]
    assert "Language: zh_Hans\n" in header
    assert "charset=UTF-8" in header
    assert "nplurals=1; plural=0;" in header
    assert "fuzzy" not in HEADER["flags"]


@pytest.mark.parametrize("entry", MESSAGES, ids=label)
def test_every_message_is_translated(entry):
    assert "fuzzy" not in entry["flags"]
    assert entry["msgstr"], "no msgstr"
    assert all(text.strip() for text in entry["msgstr"].values()), "empty msgstr"
    if "python-format" in entry["flags"]:
        expected = sorted(PLACEHOLDER.findall(entry["msgid"]))
        for text in entry["msgstr"].values():
            assert sorted(PLACEHOLDER.findall(text)) == expected


def test_the_compiled_catalogue_matches_the_po_file():
    """The .mo is committed: a translation added to the .po but not compiled would never show."""
    with MO_FILE.open("rb") as handle:
        compiled = stdlib_gettext.GNUTranslations(handle)
    for entry in MESSAGES:
        if "msgid_plural" in entry or "msgctxt" in entry:
            continue
        assert compiled.gettext(entry["msgid"]) == entry["msgstr"][0], entry["msgid"]


def test_models_and_choices_speak_chinese():
    with translation.override("zh-hans"):
        assert str(Loan._meta.verbose_name) == "贷款"
        assert str(LoansConfig.verbose_name) == "贷款台账"
        assert str(Bucket.CURRENT.label) == "未逾期"
        assert str(Bucket.D1_30.label) == "逾期1-30天（M1）"
        assert str(Bucket.D180_PLUS.label) == "逾期180天以上（M6+）"
        assert str(Loan.Status.WRITTEN_OFF.label) == "已核销"
        assert str(Payment.Status.REVERSED.label) == "已冲正"
        assert str(Loan._meta.get_field("outstanding_principal").verbose_name) == "剩余本金"


def _messages(excinfo, field):
    return excinfo.value.message_dict[field]


@pytest.mark.django_db
def test_service_errors_speak_chinese():
    with translation.override("zh-hans"):
        with pytest.raises(ValidationError) as excinfo:
            services.partner_create(code="", name="某合作机构")
        assert _messages(excinfo, "code") == ["这个字段是必填项。"]

        with pytest.raises(ValidationError) as excinfo:
            services.partner_create(code="p" * 51, name="某合作机构")
        assert _messages(excinfo, "code") == ["最多 50 个字符。"]

        services.partner_create(code="acme", name="某合作机构")
        with pytest.raises(ValidationError) as excinfo:
            services.partner_create(code="acme", name="某合作机构")
        assert _messages(excinfo, "code") == ["该编码的合作机构已存在。"]


@pytest.mark.django_db
def test_the_admin_index_shows_the_chinese_app_name(client, django_user_model):
    admin = django_user_model.objects.create_superuser("admin", "admin@example.com", "pw-for-tests-only")
    client.force_login(admin)
    response = client.get("/admin/", HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert response.status_code == 200
    assert response.headers["Content-Language"] == "zh-hans"
    page = response.content.decode()
    assert "贷款台账" in page
    assert "Loan book" not in page
