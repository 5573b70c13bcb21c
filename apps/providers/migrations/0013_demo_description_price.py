"""The demo model said it was free while every reply showed a (made-up) cost: its
description now says the price is pretend. Only a description still as shipped changes."""

from django.db import migrations

OLD = {
    "description_en": "Built in and free: shows how a reply is counted and billed.",
    "description_zh": "内置且免费：演示一条回复如何计数和计费。",
}
NEW = {
    "description_en": "Built in, no key needed. Its price is made up (no real money): it shows how a reply "
    "is counted and billed.",
    "description_zh": "内置，不需要密钥。价格是虚构的（不花真钱）：演示一条回复如何计数和计费。",
}


def forward(apps, schema_editor):
    ChatModel = apps.get_model("providers", "ChatModel")
    for field in OLD:
        ChatModel.objects.filter(provider__slug="demo", **{field: OLD[field]}).update(**{field: NEW[field]})


def backward(apps, schema_editor):
    ChatModel = apps.get_model("providers", "ChatModel")
    for field in OLD:
        ChatModel.objects.filter(provider__slug="demo", **{field: NEW[field]}).update(**{field: OLD[field]})


class Migration(migrations.Migration):
    dependencies = [("providers", "0012_chatmodel_thinks")]
    operations = [migrations.RunPython(forward, backward)]
