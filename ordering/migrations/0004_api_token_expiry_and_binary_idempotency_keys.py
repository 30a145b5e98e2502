"""API tokens expire, come with a single-use refresh token and die with a password change;
idempotency keys are compared byte for byte.

Tokens issued before this migration had no expiry: they are deleted, and their clients sign in
again. Idempotency keys that differed only in case, accents or trailing spaces were one key for the
unique constraint; from here on they are distinct (MariaDB's NO PAD binary collation).
"""

import django.utils.timezone
from django.db import migrations, models


def delete_tokens(apps, schema_editor):
    apps.get_model("ordering", "ApiToken").objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [
        ("ordering", "0003_customerprofile_notify_while_watching"),
    ]

    operations = [
        migrations.RunPython(delete_tokens, migrations.RunPython.noop),
        migrations.AddField(
            model_name="apitoken",
            name="refresh_digest",
            field=models.CharField(default="", max_length=64),
            preserve_default=False,
        ),
        migrations.AlterField(
            model_name="apitoken",
            name="refresh_digest",
            field=models.CharField(max_length=64, unique=True),
        ),
        migrations.AddField(
            model_name="apitoken",
            name="family",
            field=models.CharField(db_index=True, default="", max_length=32),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="apitoken",
            name="password_stamp",
            field=models.CharField(default="", max_length=64),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="apitoken",
            name="expires_at",
            field=models.DateTimeField(default=django.utils.timezone.now),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="apitoken",
            name="refresh_expires_at",
            field=models.DateTimeField(db_index=True, default=django.utils.timezone.now),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="apitoken",
            name="revoked_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddIndex(
            model_name="apitoken",
            index=models.Index(fields=["user", "revoked_at"], name="apitoken_user_live"),
        ),
        migrations.AlterField(
            model_name="order",
            name="idempotency_key",
            field=models.CharField(blank=True, db_collation="utf8mb4_nopad_bin", max_length=255, null=True),
        ),
    ]
