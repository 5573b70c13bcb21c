"""Choosing where a request goes: provider, model and key, plus the fallback routes."""

from __future__ import annotations

import logging
from dataclasses import replace

from apps.accounts.models import Classroom, User

from .client import Route
from .demo import demo_internal_key
from .models import ChatModel, Credential, Provider
from .sealing import SealError
from .selectors import classroom_allows_model, credential_for_request, model_fallbacks, provider_base_url
from .services import KeyMaterial, credential_open, site_env_key

logger = logging.getLogger(__name__)


class NoRoute(Exception):
    """No usable key for the model or any of its fallbacks. `code` says which case."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def _route(
    *,
    provider: Provider,
    model_id: int,
    model_name: str,
    base_url: str,
    material: KeyMaterial | None = None,
    credential: Credential | None = None,
) -> Route:
    return Route(
        model_id=model_id,
        provider_slug=provider.slug,
        model_name=model_name,
        base_url=provider_base_url(base_url=base_url or provider.base_url),
        api_key=material.api_key if material else "",
        secret_key=material.secret_key if material else "",
        credential_id=credential.pk if credential else None,
        credential_scope=credential.scope if credential else ("site" if material else "none"),
        auth_style=provider.auth_style,
        token_url=provider.token_url,
        # A teacher's or student's key is held to public addresses, whether its URL was
        # typed or is the provider's own (the custom provider's is Ollama on loopback):
        # only an admin's site key may reach the school's network.
        user_supplied_url=bool(credential and credential.scope != Credential.Scope.SITE),
    )


def _route_for_model(
    *, model: ChatModel, user: User, classroom: Classroom | None, pinned: Credential | None
) -> Route | None:
    route = _keyed_route(model=model, user=user, classroom=classroom, pinned=pinned)
    return replace(route, max_output_tokens=model.max_output_tokens, thinks=model.thinks) if route else None


def _keyed_route(
    *, model: ChatModel, user: User, classroom: Classroom | None, pinned: Credential | None
) -> Route | None:
    provider = model.provider
    if not (provider.enabled and model.enabled):
        return None
    if not provider.needs_key:
        route = _route(provider=provider, model_id=model.pk, model_name=model.name, base_url=provider.base_url)
        # The demo is ours: its calls from here are metered already, not limited there (demo.py).
        return replace(route, api_key=demo_internal_key()) if provider.is_demo else route
    credential = pinned if pinned is not None and pinned.status == Credential.Status.ACTIVE else None
    credential = credential or credential_for_request(provider=provider, user=user, classroom=classroom)
    if credential is not None:
        try:
            material = credential_open(credential=credential)
        except SealError as exc:
            # A master-key problem, not the student's: logged for the admin (never the key).
            logger.error("credential %s cannot be opened: %s", credential.public_id, exc)
            return None
        return _route(
            provider=provider,
            model_id=model.pk,
            model_name=model.name,
            base_url=credential.base_url,
            material=material,
            credential=credential,
        )
    env = site_env_key(provider=provider)
    if env is not None:
        material, env_base_url = env
        return _route(
            provider=provider, model_id=model.pk, model_name=model.name, base_url=env_base_url, material=material
        )
    return None


def routes_for_request(*, model: ChatModel, user: User, classroom: Classroom | None) -> list[Route]:
    """The model's own route first, then its fallbacks in order; fallbacks the class does not
    allow (a student could make the first route fail on purpose to reach them) and routes
    without a usable key are left out. Raises NoRoute when none is left."""
    candidates: list[tuple[ChatModel, Credential | None]] = [(model, None)]
    for fallback, credential_id in model_fallbacks(model_id=model.pk):
        if not classroom_allows_model(classroom=classroom, model=fallback):
            continue
        pinned = (
            Credential.objects.select_related("provider").filter(pk=credential_id).first()
            if credential_id is not None
            else None
        )
        candidates.append((fallback, pinned))
    routes = [
        route
        for candidate, pinned in candidates
        if (route := _route_for_model(model=candidate, user=user, classroom=classroom, pinned=pinned))
    ]
    if not routes:
        raise NoRoute("no_credential")
    return routes


def key_check_route(*, credential: Credential) -> Route:
    """A route for "Test this key": the credential itself, on its provider's first model."""
    try:
        material = credential_open(credential=credential)
    except SealError:
        raise NoRoute("sealed") from None
    model = credential.provider.models.order_by("id").first()
    return _route(
        provider=credential.provider,
        model_id=model.pk if model else 0,
        model_name=model.name if model else "",
        base_url=credential.base_url,
        material=material,
        credential=credential,
    )
