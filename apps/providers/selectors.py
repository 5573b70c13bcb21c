"""Reads for the provider catalog."""
from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from .models import ChatModel, ModelPrice


def chat_models_enabled() -> QuerySet[ChatModel]:
    return ChatModel.objects.filter(enabled=True, provider__enabled=True).select_related("provider")


def chat_model_get_by_route_name(*, route_name: str) -> ChatModel | None:
    """`deepseek/deepseek-chat` -> the enabled model, or None (unknown or switched off)."""
    provider_slug, sep, model_name = route_name.partition("/")
    if not sep or not provider_slug or not model_name:
        return None
    return chat_models_enabled().filter(provider__slug=provider_slug, name=model_name).first()


def model_price_at(*, model: ChatModel, when: datetime | None = None) -> ModelPrice | None:
    """The price in force at `when` (default now)."""
    when = when or timezone.now()
    return model.prices.filter(effective_from__lte=when).order_by("-effective_from").first()


def provider_base_url(*, base_url: str) -> str:
    """Absolute URL for a catalog base URL; site-relative ones point at this site."""
    if base_url.startswith("/"):
        return settings.INTERNAL_BASE_URL.rstrip("/") + base_url
    return base_url
