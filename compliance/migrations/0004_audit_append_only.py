"""The audit log is append-only in the database too (PostgreSQL): a trigger refuses every UPDATE and
DELETE of an audit event and any TRUNCATE of the table, whoever sends them, raw SQL included.

The ORM refuses as well (``AuditQuerySet``, ``AuditEvent.save``/``delete``); on SQLite, the development
database, that refusal is all there is. Neither stops someone who may alter the table (drop or disable
the trigger): the hash chain is what detects them (``manage.py verify_audit_chain``).

One door is left, for TRUNCATE only: a session that sets ``compliance.audit_truncate`` to ``allow``.
Django's test runner empties a PostgreSQL database between transactional tests with one TRUNCATE of
every table, and a test database opens that door for its own sessions
(``compliance.signals.allow_test_database_reset``); nothing else sets it. UPDATE and DELETE have no door.
"""

from django.db import migrations

FUNCTION = "compliance_audit_append_only"
ROW_TRIGGER = "compliance_auditevent_no_update_delete"
TRUNCATE_TRIGGER = "compliance_auditevent_no_truncate"


def _table(apps, schema_editor) -> str:
    return schema_editor.quote_name(apps.get_model("compliance", "AuditEvent")._meta.db_table)


def create_triggers(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    table = _table(apps, schema_editor)
    # params=None: the SQL goes to the server as written (no %-interpolation by the driver).
    schema_editor.execute(
        f"""
        CREATE OR REPLACE FUNCTION {FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'TRUNCATE' AND current_setting('compliance.audit_truncate', true) = 'allow' THEN
                RETURN NULL;  -- a test database being reset (see the migration's docstring)
            END IF;
            RAISE EXCEPTION 'audit events are append-only'
                USING DETAIL = TG_OP || ' on ' || TG_TABLE_NAME || ' refused',
                      HINT = 'The audit log only grows: record a new event instead.';
        END
        $$""",
        params=None,
    )
    schema_editor.execute(
        f"""CREATE TRIGGER {ROW_TRIGGER} BEFORE UPDATE OR DELETE ON {table}
        FOR EACH ROW EXECUTE FUNCTION {FUNCTION}()""",
        params=None,
    )
    schema_editor.execute(
        f"""CREATE TRIGGER {TRUNCATE_TRIGGER} BEFORE TRUNCATE ON {table}
        FOR EACH STATEMENT EXECUTE FUNCTION {FUNCTION}()""",
        params=None,
    )


def drop_triggers(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    table = _table(apps, schema_editor)
    schema_editor.execute(f"DROP TRIGGER IF EXISTS {TRUNCATE_TRIGGER} ON {table}", params=None)
    schema_editor.execute(f"DROP TRIGGER IF EXISTS {ROW_TRIGGER} ON {table}", params=None)
    schema_editor.execute(f"DROP FUNCTION IF EXISTS {FUNCTION}()", params=None)


class Migration(migrations.Migration):
    dependencies = [("compliance", "0003_seed_lexicons")]

    operations = [migrations.RunPython(create_triggers, drop_triggers, elidable=False)]
