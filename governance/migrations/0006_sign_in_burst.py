from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("governance", "0005_check_status_unverified"),
    ]

    operations = [
        migrations.CreateModel(
            name="SignInBurst",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("username", models.CharField(max_length=255)),
                ("address", models.CharField(blank=True, max_length=45)),
                ("path", models.CharField(blank=True, max_length=255)),
                ("failures", models.PositiveIntegerField(default=0)),
                ("first_failed_at", models.DateTimeField()),
                ("last_failed_at", models.DateTimeField()),
            ],
            options={
                "indexes": [
                    models.Index(fields=["last_failed_at"], name="sign_in_burst_by_last")
                ],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("username", "address"), name="one_burst_per_client"
                    )
                ],
            },
        ),
    ]
