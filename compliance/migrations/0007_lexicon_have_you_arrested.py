"""The English lexicon (0003) has "arrest you" and "you will be arrested" but not the causative form
("we will have you arrested", "get you jailed"): a notice template or a note saying it must be caught."""

from django.db import migrations

TERM = {
    "language": "en",
    "phrase": r"\b(have|get|see)\s+you\s+(arrested|locked up|jailed|imprisoned|prosecuted)\b",
}


def forwards(apps, schema_editor):
    LexiconTerm = apps.get_model("compliance", "LexiconTerm")
    LexiconTerm.objects.get_or_create(
        **TERM, defaults={"category": "arrest", "is_regex": True, "note": "we will have you arrested", "is_active": True}
    )


def backwards(apps, schema_editor):
    apps.get_model("compliance", "LexiconTerm").objects.filter(**TERM).delete()


class Migration(migrations.Migration):
    dependencies = [("compliance", "0006_audit_case_work_types")]

    operations = [migrations.RunPython(forwards, backwards)]
