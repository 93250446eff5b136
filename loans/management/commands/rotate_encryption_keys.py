"""``manage.py rotate_encryption_keys``: re-encrypt every stored token with the first key, recompute the
lookup hashes; ``--check`` counts the tokens under each key without writing."""

from __future__ import annotations

from dataclasses import dataclass

from django.apps import apps
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, models, transaction

from loans import crypto

HELP = """Re-encrypt every encrypted column (national ID numbers, live and historical rows) with the
first key of FIELD_ENCRYPTION_KEYS and recompute the lookup hashes with FIELD_HASH_KEY.

Rotating the encryption key:
  1. make a key: python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"
  2. put it first and keep the old one after it, FIELD_ENCRYPTION_KEYS=<new>,<old>, on every process
     (web, workers, beat) and restart them: new writes use the new key, old tokens still open;
  3. run manage.py rotate_encryption_keys (batches of --batch-size rows, each its own transaction; a
     row changed meanwhile is left alone, it was written with the new key already; safe to rerun);
  4. run manage.py rotate_encryption_keys --check: it must count no token under an older key;
  5. drop the old key from FIELD_ENCRYPTION_KEYS and restart.
Changing FIELD_HASH_KEY: set the new one everywhere and run this command; exact-match lookups by
national ID miss until it has finished. Dropping a key too early fails loudly (DecryptionError), and
--check exits non-zero while any token opens with no key."""


@dataclass
class Column:
    model: type[models.Model]
    field: models.Field
    hash_field: models.Field | None

    def __str__(self):
        return f"{self.model._meta.db_table}.{self.field.column}"


def encrypted_columns() -> list[Column]:
    """Every ``EncryptedCharField`` of every model (historical models included), with its hash field."""
    found = []
    for model in apps.get_models():
        if model._meta.proxy or not model._meta.managed:
            continue
        fields = model._meta.concrete_fields
        for field in fields:
            if isinstance(field, crypto.EncryptedCharField):
                hashes = [f for f in fields if isinstance(f, crypto.LookupHashField)]
                hash_field = next((f for f in hashes if f.source == field.name), None)
                found.append(Column(model, field, hash_field))
    return found


def _batches(column: Column, batch_size: int):
    """(pk, token, stored hash) rows with a value, by primary key, in batches."""
    quote = connection.ops.quote_name
    meta = column.model._meta
    pk, value = quote(meta.pk.column), quote(column.field.column)
    digest = quote(column.hash_field.column) if column.hash_field else "''"
    sql = (
        f"SELECT {pk}, {value}, {digest} FROM {quote(meta.db_table)}"  # noqa: S608 - names from the models
        f" WHERE {pk} > %s AND {value} <> '' ORDER BY {pk} LIMIT %s"
    )
    after = 0
    while True:
        with connection.cursor() as cursor:
            cursor.execute(sql, [after, batch_size])
            rows = cursor.fetchall()
        if not rows:
            return
        after = rows[-1][0]
        yield rows


def _write(column: Column, changes: list[tuple]) -> int:
    """Set (new token, new hash) where the token is still the one read: a concurrent write wins."""
    quote = connection.ops.quote_name
    meta = column.model._meta
    table, pk, value = quote(meta.db_table), quote(meta.pk.column), quote(column.field.column)
    digest = quote(column.hash_field.column) if column.hash_field else None
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            keys, olds, news, hashes = (list(c) for c in zip(*changes, strict=True))
            assign = f"{value} = v.new" + (f", {digest} = v.hash" if digest else "")
            cursor.execute(
                f"UPDATE {table} AS t SET {assign}"  # noqa: S608 - names from the models
                " FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::text[]) AS v(key, old, new, hash)"
                f" WHERE t.{pk} = v.key AND t.{value} = v.old",
                [keys, olds, news, hashes],
            )
            return cursor.rowcount
        assign = f"{value} = %s" + (f", {digest} = %s" if digest else "")
        rows = [
            (new, *((digest_value,) if digest else ()), key, old) for key, old, new, digest_value in changes
        ]
        cursor.executemany(f"UPDATE {table} SET {assign} WHERE {pk} = %s AND {value} = %s", rows)  # noqa: S608
        return cursor.rowcount


class Command(BaseCommand):
    help = HELP

    def create_parser(self, prog_name, subcommand, **kwargs):
        from argparse import RawDescriptionHelpFormatter

        kwargs["formatter_class"] = RawDescriptionHelpFormatter
        return super().create_parser(prog_name, subcommand, **kwargs)

    def add_arguments(self, parser):
        parser.add_argument(
            "--check", action="store_true", help="count tokens under the first key, older keys and none"
        )
        parser.add_argument("--batch-size", type=int, default=2000, metavar="N", help="rows per transaction")

    def handle(self, *args, check=False, batch_size=2000, **options):
        if batch_size < 1:
            raise CommandError(f"--batch-size must be at least 1, got {batch_size}.")
        columns = encrypted_columns()
        if check:
            self._check(columns, batch_size)
            return
        for column in columns:
            rewritten = current = changed_meanwhile = 0
            for rows in _batches(column, batch_size):
                changes = []
                for key, token, stored_hash in rows:
                    clear, under_first_key = crypto.open_token(token)  # DecryptionError: a key is missing
                    digest = crypto.lookup_hash(clear) if column.hash_field else ""
                    if under_first_key and stored_hash == digest:
                        current += 1
                        continue
                    changes.append((key, token, crypto.encrypt(clear), digest))
                if changes:
                    with transaction.atomic():
                        written = _write(column, changes)
                    rewritten += written
                    changed_meanwhile += len(changes) - written
            meanwhile = f", {changed_meanwhile:,} changed by others meanwhile" if changed_meanwhile else ""
            self.stdout.write(
                f"{column}: {rewritten:,} re-encrypted, {current:,} under the first key already{meanwhile}."
            )

    def _check(self, columns: list[Column], batch_size: int) -> None:
        older = unreadable = 0
        for column in columns:
            counts = {"first": 0, "older": 0, "none": 0, "stale hash": 0}
            for rows in _batches(column, batch_size):
                for _key, token, stored_hash in rows:
                    try:
                        clear, under_first_key = crypto.open_token(token)
                    except crypto.DecryptionError:
                        counts["none"] += 1
                        continue
                    counts["first" if under_first_key else "older"] += 1
                    if column.hash_field and stored_hash != crypto.lookup_hash(clear):
                        counts["stale hash"] += 1
            older += counts["older"] + counts["stale hash"]
            unreadable += counts["none"]
            self.stdout.write(
                f"{column}: {counts['first']:,} under the first key, {counts['older']:,} under an older key,"
                f" {counts['none']:,} under no key; {counts['stale hash']:,} hashes to recompute."
            )
        if unreadable:
            raise CommandError(
                f"{unreadable:,} tokens open with none of FIELD_ENCRYPTION_KEYS: put the missing key back."
            )
        if older:
            self.stdout.write(
                "Tokens under an older key or hashes under an older FIELD_HASH_KEY remain:"
                " run manage.py rotate_encryption_keys before dropping any key."
            )
        else:
            self.stdout.write("Every token is under the first key: older keys can be dropped.")
