from django.db import migrations

from audits.triggers import APPEND_ONLY_TABLES, table_statements


def install(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    for table in APPEND_ONLY_TABLES:
        for sql in table_statements(table, vendor, install=True):
            schema_editor.execute(sql, params=None)


def remove(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    for table in APPEND_ONLY_TABLES:
        for sql in table_statements(table, vendor, install=False):
            schema_editor.execute(sql, params=None)
    if vendor == "postgresql":
        schema_editor.execute("DROP FUNCTION IF EXISTS audits_refuse_table_change()", params=None)


class Migration(migrations.Migration):
    dependencies = [("audits", "0003_exports_and_checkpoints")]

    operations = [migrations.RunPython(install, remove)]
