from __future__ import annotations

from django.db import migrations


def apply_catalog(apps, schema_editor):  # type: ignore[no-untyped-def]
    from apps.providers.catalog import DEMO, catalog_apply

    catalog_apply(
        entries=[DEMO],
        provider_model=apps.get_model("providers", "Provider"),
        chat_model_model=apps.get_model("providers", "ChatModel"),
        price_model=apps.get_model("providers", "ModelPrice"),
    )


class Migration(migrations.Migration):
    dependencies = [("providers", "0001_initial")]
    operations = [migrations.RunPython(apply_catalog, migrations.RunPython.noop)]
