from django.db import migrations, models


class Migration(migrations.Migration):
    # Chained after main's latest ordering migration so the graph has one leaf; the lead re-chains.
    dependencies = [
        ("ordering", "0014_photos"),
    ]

    operations = [
        migrations.AddField(
            model_name="order",
            name="payment_method",
            field=models.CharField(
                choices=[("wallet", "Wallet"), ("card", "Card")], default="wallet", max_length=10
            ),
        ),
    ]
