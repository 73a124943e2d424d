from django.db import migrations, models

from governance.epoch import install_statements, remove_statements


def install(apps, schema_editor):
    apps.get_model("governance", "CredentialEpoch").objects.using(
        schema_editor.connection.alias
    ).get_or_create(id=1)
    if schema_editor.connection.vendor == "postgresql":
        for sql in install_statements():
            schema_editor.execute(sql, params=None)


def remove(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for sql in remove_statements():
            schema_editor.execute(sql, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("governance", "0002_promotions"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.CreateModel(
            name="CredentialEpoch",
            fields=[
                (
                    "id",
                    models.PositiveSmallIntegerField(default=1, primary_key=True, serialize=False),
                ),
                ("value", models.BigIntegerField(default=0)),
            ],
            options={"verbose_name": "credential epoch"},
        ),
        migrations.RunPython(install, remove),
    ]
