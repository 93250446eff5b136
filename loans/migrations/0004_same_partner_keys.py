"""A loan belongs to its borrower's partner, and a payment to its loan's partner.

Composite foreign keys (PostgreSQL only: SQLite cannot add a foreign key to an existing table)
reference the (id, partner) unique constraints, so no write can pair a record with another
partner's borrower or loan, whatever path it takes.
"""

from django.db import migrations, models

FOREIGN_KEYS = [
    ("loans_loan", "loan_borrower_same_partner", "borrower_id, partner_id", "loans_borrower"),
    ("loans_payment", "payment_loan_same_partner", "loan_id, partner_id", "loans_loan"),
]


def add_foreign_keys(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table, name, columns, target in FOREIGN_KEYS:
        schema_editor.execute(
            f"ALTER TABLE {table} ADD CONSTRAINT {name} FOREIGN KEY ({columns}) "
            f"REFERENCES {target} (id, partner_id)"
        )


def drop_foreign_keys(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table, name, _columns, _target in FOREIGN_KEYS:
        schema_editor.execute(f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {name}")


class Migration(migrations.Migration):

    dependencies = [
        ('loans', '0003_fillfactor'),
    ]

    operations = [
        migrations.AddConstraint(
            model_name='borrower',
            constraint=models.UniqueConstraint(fields=('id', 'partner'), name='borrower_unique_id_partner'),
        ),
        migrations.AddConstraint(
            model_name='loan',
            constraint=models.UniqueConstraint(fields=('id', 'partner'), name='loan_unique_id_partner'),
        ),
        migrations.RunPython(add_foreign_keys, drop_foreign_keys),
    ]
