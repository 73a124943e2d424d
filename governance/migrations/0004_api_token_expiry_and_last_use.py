from datetime import timedelta

from django.conf import settings
from django.db import migrations, models

import governance.models
from governance.epoch import row_trigger_statements, token_triggers


def _execute(schema_editor, statements):
    for sql in statements:
        schema_editor.execute(sql, params=None)


def drop_token_trigger(apps, schema_editor):
    # Dropped before the rows are filled: a deferred trigger's pending events would
    # forbid the ALTER TABLE that follows in this transaction.
    if schema_editor.connection.vendor == "postgresql":
        watched, row_trigger, update_trigger, _ = token_triggers()
        _execute(
            schema_editor,
            [
                f"DROP TRIGGER IF EXISTS {name} ON {watched}"
                for name in (row_trigger, update_trigger)
            ],
        )


def install_single_token_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        watched, row_trigger, update_trigger, _ = token_triggers()
        _execute(schema_editor, row_trigger_statements(watched, row_trigger, update_trigger, ()))


def install_split_token_triggers(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        _execute(schema_editor, row_trigger_statements(*token_triggers()))


def fill_expiry(apps, schema_editor):
    # Tokens made before tokens expired live the default lifetime from their creation.
    apps.get_model("governance", "ApiToken").objects.using(schema_editor.connection.alias).update(
        expires_at=models.F("created_at") + timedelta(days=settings.API_TOKEN_LIFETIME_DAYS)
    )


class Migration(migrations.Migration):
    dependencies = [
        ("governance", "0003_credential_epoch"),
    ]

    operations = [
        migrations.RunPython(drop_token_trigger, install_single_token_trigger),
        migrations.AddField(
            model_name="apitoken",
            name="last_used_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="apitoken",
            name="expires_at",
            field=models.DateTimeField(null=True),
        ),
        migrations.RunPython(fill_expiry, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="apitoken",
            name="expires_at",
            field=models.DateTimeField(default=governance.models.token_expiry),
        ),
        migrations.RunPython(install_split_token_triggers, drop_token_trigger),
    ]
