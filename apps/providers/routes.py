"""Choosing where a request goes: provider, model and key, plus the fallback routes."""
from __future__ import annotations

import logging

from apps.accounts.models import Classroom, User

from .client import Route
from .models import ChatModel, Credential, Provider
from .sealing import SealError
from .selectors import credential_for_request, provider_base_url
from .services import credential_open, site_env_key

logger = logging.getLogger(__name__)


class NoRoute(Exception):
    """No usable key for the model or any of its fallbacks. `code` says which case."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def _route(*, model: ChatModel, user: User, classroom: Classroom | None, pinned: Credential | None) -> Route | None:
    provider: Provider = model.provider
    if not (provider.enabled and model.enabled):
        return None
    common = {
        "model_id": model.pk,
        "provider_slug": provider.slug,
        "model_name": model.name,
        "auth_style": provider.auth_style,
        "token_url": provider.token_url,
    }
    if not provider.needs_key:
        return Route(base_url=provider_base_url(base_url=provider.base_url), **common)
    credential = pinned if pinned is not None and pinned.status == Credential.Status.ACTIVE else None
    credential = credential or credential_for_request(provider=provider, user=user, classroom=classroom)
    if credential is not None:
        try:
            material = credential_open(credential=credential)
        except SealError as exc:
            # A master-key problem, not the student's: logged for the admin (never the key).
            logger.error("credential %s cannot be opened: %s", credential.public_id, exc)
            return None
        return Route(
            base_url=provider_base_url(base_url=credential.base_url or provider.base_url),
            api_key=material.api_key,
            secret_key=material.secret_key,
            credential_id=credential.pk,
            credential_scope=credential.scope,
            # Only a URL a teacher or student typed is held to public addresses.
            user_supplied_url=bool(credential.base_url) and credential.scope != Credential.Scope.SITE,
            **common,
        )
    env = site_env_key(provider=provider)
    if env is not None:
        material, env_base_url = env
        return Route(
            base_url=provider_base_url(base_url=env_base_url or provider.base_url),
            api_key=material.api_key,
            secret_key=material.secret_key,
            credential_scope="site",
            **common,
        )
    return None


def routes_for_request(*, model: ChatModel, user: User, classroom: Classroom | None) -> list[Route]:
    """The model's own route first, then its fallbacks in order; routes without a usable
    key are left out. Raises NoRoute when none is left."""
    candidates: list[tuple[ChatModel, Credential | None]] = [(model, None)]
    for fallback in model.fallbacks.select_related("fallback__provider", "credential__provider"):
        candidates.append((fallback.fallback, fallback.credential))
    routes = [r for m, pinned in candidates if (r := _route(model=m, user=user, classroom=classroom, pinned=pinned))]
    if not routes:
        raise NoRoute("no_credential")
    return routes
