from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

from django.db import migrations


def add_rate(apps, schema_editor):  # type: ignore[no-untyped-def]
    # A starting USD -> CNY rate so USD-priced models can be billed in CNY at once; admins
    # add newer rates in Django admin (old ones are kept, each request uses the rate in force).
    ExchangeRate = apps.get_model("billing", "ExchangeRate")
    ExchangeRate.objects.get_or_create(
        from_currency="USD", to_currency="CNY", effective_from=datetime(2025, 1, 1, tzinfo=timezone.utc),
        defaults={"rate": Decimal("7.2000")},
    )


class Migration(migrations.Migration):
    dependencies = [("billing", "0001_initial")]
    operations = [migrations.RunPython(add_rate, migrations.RunPython.noop)]
