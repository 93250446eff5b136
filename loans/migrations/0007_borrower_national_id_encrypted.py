"""National ID numbers encrypted at rest (Fernet tokens, loans.crypto) with a keyed hash for lookup.

The column becomes text (a token is longer than the number); PostgreSQL changes varchar to text
without rewriting the table. 0008 encrypts the numbers already stored.
"""

import loans.crypto
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('loans', '0006_loan_limitation_date'),
    ]

    operations = [
        migrations.AddField(
            model_name='borrower',
            name='national_id_hash',
            field=loans.crypto.LookupHashField(blank=True, db_default='', default='', editable=False, max_length=64, source='national_id', verbose_name='national ID lookup hash'),
        ),
        migrations.AddField(
            model_name='historicalborrower',
            name='national_id_hash',
            field=loans.crypto.LookupHashField(blank=True, db_default='', default='', editable=False, max_length=64, source='national_id', verbose_name='national ID lookup hash'),
        ),
        migrations.AlterField(
            model_name='borrower',
            name='national_id',
            field=loans.crypto.EncryptedCharField(blank=True, max_length=64, verbose_name='national ID'),
        ),
        migrations.AlterField(
            model_name='historicalborrower',
            name='national_id',
            field=loans.crypto.EncryptedCharField(blank=True, max_length=64, verbose_name='national ID'),
        ),
        migrations.AddIndex(
            model_name='borrower',
            index=models.Index(fields=['national_id_hash'], name='borrower_national_id_hash_idx'),
        ),
    ]
