"""Encrypt the national ID numbers stored in clear before 0007, live and historical rows, and fill in
their lookup hashes; backwards, decrypt them again.

Plain SQL, in batches by primary key: the migration state's field would try to decrypt the clear
text it reads. A value that is a token already is left as it is (and backwards, clear text is), so a
rerun or a half-done run is safe. Needs the keys the site runs with (FIELD_ENCRYPTION_KEYS,
FIELD_HASH_KEY).
"""

from django.db import migrations

from loans.crypto import decrypt, encrypt, is_token, lookup_hash

BATCH = 5000
MODELS = ("Borrower", "HistoricalBorrower")


def _convert(apps, schema_editor, convert):
    connection = schema_editor.connection
    quote = schema_editor.quote_name
    for name in MODELS:
        model = apps.get_model("loans", name)
        table, pk = quote(model._meta.db_table), quote(model._meta.pk.column)
        select = (
            f"SELECT {pk}, national_id FROM {table} WHERE {pk} > %s AND national_id <> ''"  # noqa: S608
            f" ORDER BY {pk} LIMIT {BATCH}"
        )
        after = 0
        with connection.cursor() as cursor:
            while True:
                cursor.execute(select, [after])
                rows = cursor.fetchall()
                if not rows:
                    break
                after = rows[-1][0]
                changes = [(key, *new) for key, value in rows if (new := convert(value)) is not None]
                if not changes:
                    continue
                if connection.vendor == "postgresql":
                    keys, values, hashes = (list(column) for column in zip(*changes, strict=True))
                    cursor.execute(
                        f"UPDATE {table} AS t SET national_id = v.value, national_id_hash = v.hash"  # noqa: S608
                        " FROM unnest(%s::bigint[], %s::text[], %s::text[]) AS v(key, value, hash)"
                        f" WHERE t.{pk} = v.key",
                        [keys, values, hashes],
                    )
                else:
                    cursor.executemany(
                        f"UPDATE {table} SET national_id = %s, national_id_hash = %s WHERE {pk} = %s",  # noqa: S608
                        [(value, digest, key) for key, value, digest in changes],
                    )


def encrypt_numbers(apps, schema_editor):
    _convert(
        apps, schema_editor, lambda value: None if is_token(value) else (encrypt(value), lookup_hash(value))
    )


def decrypt_numbers(apps, schema_editor):
    _convert(apps, schema_editor, lambda value: (decrypt(value), "") if is_token(value) else None)


class Migration(migrations.Migration):
    dependencies = [("loans", "0007_borrower_national_id_encrypted")]

    operations = [migrations.RunPython(encrypt_numbers, decrypt_numbers)]
