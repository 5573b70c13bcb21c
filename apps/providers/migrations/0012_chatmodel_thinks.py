from django.db import migrations, models


def catalog_thinkers_mark(apps, schema_editor):
    """The catalog's reasoning models already in the database (applied before the field):
    marked, and given the catalog's max output (their thinking counts in it) where they
    still have the one the catalog gave them before (8,192)."""
    from apps.providers.catalog import CATALOG

    ChatModel = apps.get_model("providers", "ChatModel")
    for entry in CATALOG:
        for model in entry["models"]:
            if model.get("thinks"):
                rows = ChatModel.objects.filter(provider__slug=entry["slug"], name=model["name"])
                rows.update(thinks=True)
                rows.filter(max_output_tokens=8192).update(max_output_tokens=model["max_output_tokens"])


class Migration(migrations.Migration):
    dependencies = [
        ("providers", "0011_price_and_rate_bounds"),
    ]

    operations = [
        migrations.AddField(
            model_name="chatmodel",
            name="thinks",
            field=models.BooleanField(
                default=False,
                help_text=(
                    "A reasoning model: it writes its thinking before the answer, and the provider bills the "
                    "thinking as output. A chat reply is then held room for the model's max output tokens, not "
                    "the site's default."
                ),
                verbose_name="thinks before answering",
            ),
        ),
        migrations.RunPython(catalog_thinkers_mark, migrations.RunPython.noop),
    ]
