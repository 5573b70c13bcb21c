"""Choosing where a request goes: provider, model and key."""
from __future__ import annotations

from .client import Route
from .models import ChatModel
from .selectors import provider_base_url


def route_resolve(*, model: ChatModel) -> Route:
    """The route for `model`. Credentials (user -> class -> site) arrive with the
    providers issue; until then providers are reached without a key."""
    provider = model.provider
    return Route(
        model_id=model.pk,
        provider_slug=provider.slug,
        model_name=model.name,
        base_url=provider_base_url(base_url=provider.base_url),
    )
