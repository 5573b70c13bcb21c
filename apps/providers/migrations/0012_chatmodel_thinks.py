from django.db import migrations, models


def catalog_thinkers_mark(apps, schema_editor):
    """The catalog's reasoning models already in the database (applied before the field)."""
    from apps.providers.catalog import CATALOG

    ChatModel = apps.get_model("providers", "ChatModel")
    for entry in CATALOG:
        for model in entry["models"]:
            if model.get("thinks"):
                ChatModel.objects.filter(provider__slug=entry["slug"], name=model["name"]).update(thinks=True)


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
