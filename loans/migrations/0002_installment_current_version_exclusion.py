"""PostgreSQL only: current installments of a loan all belong to one schedule version.

The partial unique constraint in 0001 allows one current row per installment number; this
exclusion constraint also forbids current rows from two versions (say #1-#6 of v1 beside #7 of
v2), which no unique constraint can say. SQLite, the embedded development default, has no
exclusion constraints; there the services alone keep it.
"""

from django.db import migrations

CONSTRAINT = "installment_one_current_version"


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
    schema_editor.execute(
        f"ALTER TABLE loans_installment ADD CONSTRAINT {CONSTRAINT} "
        "EXCLUDE USING gist (loan_id WITH =, schedule_version WITH <>) WHERE (NOT superseded)"
    )


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f"ALTER TABLE loans_installment DROP CONSTRAINT IF EXISTS {CONSTRAINT}")


class Migration(migrations.Migration):
    dependencies = [("loans", "0001_initial")]

    operations = [migrations.RunPython(forwards, backwards)]
