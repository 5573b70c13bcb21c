"""The provider catalog shipped with webchat: one definition, applied by a data migration
(and re-applied by `seed_demo` for the demo provider). Admins edit it in Django admin
afterwards; applying it again never overwrites their edits, it only adds what is missing.
"""
from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, TypedDict


class ModelEntry(TypedDict):
    name: str
    display_name: str
    context_window: int
    max_output_tokens: int
    input_per_million: str
    output_per_million: str
    currency: str
    effective_from: str


class ProviderEntry(TypedDict):
    slug: str
    name_en: str
    name_zh: str
    base_url: str
    signup_url: str
    auth_style: str
    is_demo: bool
    sort_order: int
    models: list[ModelEntry]


DEMO: ProviderEntry = {
    "slug": "demo",
    "name_en": "Demo (built in)",
    "name_zh": "演示（内置）",
    "base_url": "/demo/v1",
    "signup_url": "",
    "auth_style": "none",
    "is_demo": True,
    "sort_order": 0,
    "models": [
        {
            "name": "demo-tutor",
            "display_name": "Demo tutor",
            "context_window": 8192,
            "max_output_tokens": 1024,
            # A made-up price, so the demo can show how billing works.
            "input_per_million": "1.00",
            "output_per_million": "2.00",
            "currency": "CNY",
            "effective_from": "2026-01-01",
        }
    ],
}

CATALOG: list[ProviderEntry] = [DEMO]


def catalog_apply(*, entries: list[ProviderEntry], provider_model: Any, chat_model_model: Any, price_model: Any) -> int:
    """Create the providers, models and first prices that are missing. Takes the model
    classes so a migration can pass its historical ones. Returns how many rows it created."""
    created = 0
    for entry in entries:
        fields = {k: v for k, v in entry.items() if k not in ("slug", "models")}
        provider, made = provider_model.objects.get_or_create(slug=entry["slug"], defaults=fields)
        created += made
        for model_entry in entry["models"]:
            chat_model, made = chat_model_model.objects.get_or_create(
                provider=provider,
                name=model_entry["name"],
                defaults={
                    "display_name": model_entry["display_name"],
                    "context_window": model_entry["context_window"],
                    "max_output_tokens": model_entry["max_output_tokens"],
                },
            )
            created += made
            start = datetime.fromisoformat(model_entry["effective_from"]).replace(tzinfo=timezone.utc)
            _, made = price_model.objects.get_or_create(
                model=chat_model,
                effective_from=start,
                defaults={
                    "input_per_million": Decimal(model_entry["input_per_million"]),
                    "output_per_million": Decimal(model_entry["output_per_million"]),
                    "currency": model_entry["currency"],
                },
            )
            created += made
    return created
