"""Dishes and order lines carry a VAT rate (percent, included in the price).

Every existing dish and order line gets ``DEFAULT_VAT_RATE`` as the migration runs: the rates
those orders were placed at were never recorded.
"""

from decimal import Decimal

import django.core.validators
from django.db import migrations, models

import ordering.models

VALIDATORS = [
    django.core.validators.MinValueValidator(Decimal("0.00")),
    django.core.validators.MaxValueValidator(Decimal("99.99")),
]


class Migration(migrations.Migration):
    dependencies = [
        ("ordering", "0004_api_token_expiry_and_binary_idempotency_keys"),
    ]

    operations = [
        migrations.AddField(
            model_name="menuitem",
            name="vat_rate",
            field=models.DecimalField(
                decimal_places=2,
                default=ordering.models.default_vat_rate,
                help_text="Percent, included in the price.",
                max_digits=5,
                validators=VALIDATORS,
                verbose_name="VAT rate (%)",
            ),
        ),
        migrations.AddField(
            model_name="orderline",
            name="vat_rate",
            field=models.DecimalField(
                decimal_places=2,
                default=ordering.models.default_vat_rate,
                max_digits=5,
                validators=VALIDATORS,
                verbose_name="VAT rate (%)",
            ),
        ),
        migrations.AddConstraint(
            model_name="menuitem",
            constraint=models.CheckConstraint(
                condition=models.Q(("vat_rate__gte", 0), ("vat_rate__lt", 100)), name="menu_item_vat_rate_percent"
            ),
        ),
        migrations.AddConstraint(
            model_name="orderline",
            constraint=models.CheckConstraint(
                condition=models.Q(("vat_rate__gte", 0), ("vat_rate__lt", 100)), name="order_line_vat_rate_percent"
            ),
        ),
    ]
