from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("audits", "0004_append_only_exports_and_checkpoints"),
    ]

    operations = [
        migrations.AddField(
            model_name="chainhead",
            name="occurred_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        # The head of an existing log keeps its last event's time, so the next event is
        # not dated before it.
        migrations.RunSQL(
            "UPDATE audits_chainhead SET occurred_at = (SELECT e.occurred_at FROM"
            " audits_auditevent e WHERE e.seq = audits_chainhead.seq)",
            migrations.RunSQL.noop,
        ),
    ]
