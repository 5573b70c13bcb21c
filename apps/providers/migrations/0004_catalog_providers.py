from __future__ import annotations

from django.db import migrations


def apply_catalog(apps, schema_editor):  # type: ignore[no-untyped-def]
    from apps.providers.catalog import CATALOG, catalog_apply

    catalog_apply(
        entries=CATALOG,
        provider_model=apps.get_model("providers", "Provider"),
        chat_model_model=apps.get_model("providers", "ChatModel"),
        price_model=apps.get_model("providers", "ModelPrice"),
    )


class Migration(migrations.Migration):
    """The providers the lessons name, with their default models and prices."""

    dependencies = [("providers", "0003_provider_env_base_url_var_provider_env_key_var_and_more")]
    operations = [migrations.RunPython(apply_catalog, migrations.RunPython.noop)]
