"""Reads for the provider catalog."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db.models import Q, QuerySet
from django.http import Http404
from django.utils import timezone

from apps.accounts.models import Classroom, User
from apps.accounts.selectors import classrooms_for_teacher
from webchat.plainsql import column, rows, table

from .models import ChatModel, ClassModelAccess, Credential, ModelFallback, ModelPrice, Provider
from .netguard import url_names_internal_host


def chat_models_enabled() -> QuerySet[ChatModel]:
    return ChatModel.objects.filter(enabled=True, provider__enabled=True).select_related("provider")


# The catalog (models, providers, fallback routes) is read on every chat turn and changes
# when an admin edits it: each process keeps what it read for a few seconds, as it does
# prices (below). An edit applies at once in the saving process (price_cache_forget) and
# within CATALOG_CACHE_TTL elsewhere. Keys, classes and people are never cached here.
CATALOG_CACHE_TTL = 5.0
_catalog_cache: dict[tuple[str, object], tuple[float, Any]] = {}


def _catalog_cached(key: tuple[str, object], load: Callable[[], Any]) -> Any:
    now = time.monotonic()
    hit = _catalog_cache.get(key)
    if hit is None or hit[0] <= now:
        hit = _catalog_cache[key] = (now + CATALOG_CACHE_TTL, load())
    return hit[1]


def chat_model_get_by_route_name(*, route_name: str) -> ChatModel | None:
    """`deepseek/deepseek-chat` -> the enabled model, or None (unknown or switched off)."""
    provider_slug, sep, model_name = route_name.partition("/")
    if not sep or not provider_slug or not model_name:
        return None
    return _catalog_cached(
        ("model", route_name),
        lambda: chat_models_enabled().filter(provider__slug=provider_slug, name=model_name).first(),
    )


def model_fallbacks(*, model_id: int) -> list[tuple[ChatModel, int | None]]:
    """A model's fallback routes in order: (fallback model, pinned credential id or None)."""
    return _catalog_cached(
        ("fallbacks", model_id),
        lambda: [
            (fallback.fallback, fallback.credential_id)
            for fallback in ModelFallback.objects.filter(model_id=model_id)
            .select_related("fallback__provider")
            .order_by("position", "id")
        ],
    )


# Prices are read on every request (the billing hold), so each process keeps a model's
# price list for a few seconds. A price row added with a future start date applies exactly
# at that date; one added "from now" is seen within PRICE_CACHE_TTL (at once in the
# process that saved it, which calls price_cache_forget).
PRICE_CACHE_TTL = 5.0
_price_cache: dict[int, tuple[float, list[ModelPrice]]] = {}


def model_price_at(*, model_id: int, when: datetime | None = None) -> ModelPrice | None:
    """The price in force at `when` (default now)."""
    when = when or timezone.now()
    now = time.monotonic()
    cached = _price_cache.get(model_id)
    if cached is None or cached[0] <= now:
        cached = (now + PRICE_CACHE_TTL, list(ModelPrice.objects.filter(model_id=model_id).order_by("-effective_from")))
        _price_cache[model_id] = cached
    return next((price for price in cached[1] if price.effective_from <= when), None)


def price_cache_forget() -> None:
    """Forget the cached prices and catalog (after an admin edit, and between tests)."""
    _price_cache.clear()
    _catalog_cache.clear()


def provider_base_url(*, base_url: str) -> str:
    """Absolute URL for a catalog base URL; site-relative ones point at this site."""
    if base_url.startswith("/"):
        return settings.INTERNAL_BASE_URL.rstrip("/") + base_url
    return base_url


# When several keys could serve a request: the user's own first, then the class's, then
# the site's; within a scope, the newest.
_SCOPE_ORDER = {Credential.Scope.USER: 0, Credential.Scope.CLASS: 1, Credential.Scope.SITE: 2}


def _credentials_for(*, user: User, classroom: Classroom | None) -> QuerySet[Credential]:
    """Every active key a request of this user may use, whatever the provider. A key the
    provider rejected is skipped until fixed or re-tested."""
    scopes = Q(scope=Credential.Scope.SITE)
    if classroom is not None:
        scopes |= Q(scope=Credential.Scope.CLASS, classroom=classroom)
    if user.role != User.Role.STUDENT or (classroom is not None and classroom.allow_student_keys):
        scopes |= Q(scope=Credential.Scope.USER, owner=user)
    return Credential.objects.filter(scopes, status=Credential.Status.ACTIVE).select_related("provider")


def key_reaches_its_url(*, provider: Provider, base_url: str, scope: str) -> bool:
    """Whether calls with a key may reach where it points. A teacher's or student's key is
    held to public addresses (routes.py): one without a URL of its own, on a provider whose
    own URL is internal, would only ever be refused (the key form refuses it; one saved
    before that is passed over)."""
    return scope == Credential.Scope.SITE or bool(base_url) or not url_names_internal_host(provider.base_url)


def _preferred(credentials: Iterable[Credential]) -> Credential | None:
    return min(
        (c for c in credentials if key_reaches_its_url(provider=c.provider, base_url=c.base_url, scope=c.scope)),
        key=lambda c: (_SCOPE_ORDER[c.scope], -c.created_at.timestamp(), -c.pk),
        default=None,
    )


def credential_for_request(*, provider: Provider, user: User, classroom: Classroom | None) -> Credential | None:
    """The stored key a request uses: the user's own, then the class's, then the site's."""
    return _preferred(_credentials_for(user=user, classroom=classroom).filter(provider=provider))


def credentials_visible_to(*, user: User) -> QuerySet[Credential]:
    """Keys a user manages: their own personal keys, and (teachers) the keys of the classes
    they teach now. A class key goes with the class, not with whoever added it: a teacher
    taken off the class (or made a student) no longer sees, tests, replaces or revokes it."""
    theirs = Q(scope=Credential.Scope.USER, owner=user) | Q(
        scope=Credential.Scope.CLASS, classroom__in=classrooms_for_teacher(user=user)
    )
    return (
        Credential.objects.filter(theirs)
        .distinct()
        .select_related("provider", "classroom", "owner")
        .order_by("provider__sort_order", "-created_at")
    )


def credentials_of_classroom(*, classroom: Classroom) -> QuerySet[Credential]:
    """The keys attached to a class, newest first (for its teachers' pages)."""
    return Credential.objects.filter(classroom=classroom).select_related("provider").order_by("-created_at")


def credential_get_for_user(*, user: User, credential_id: int) -> Credential:
    """A key this user manages; 404 otherwise."""
    credential = credentials_visible_to(user=user).filter(pk=credential_id).first()
    if credential is None:
        raise Http404("No such key.")
    return credential


def providers_with_status(*, user: User, classroom: Classroom | None) -> list[tuple[Provider, str]]:
    """Every enabled provider with where a request of this user's would get its key:
    "none-needed", "user", "class", "site", "environment" or "" (not usable yet)."""
    by_provider: dict[int, list[Credential]] = {}
    for credential in _credentials_for(user=user, classroom=classroom):  # one query for every provider
        by_provider.setdefault(credential.provider_id, []).append(credential)
    return [
        (provider, _key_source(provider=provider, credentials=by_provider.get(provider.pk, [])))
        for provider in Provider.objects.filter(enabled=True).order_by("sort_order", "slug")
    ]


def _key_source(*, provider: Provider, credentials: list[Credential]) -> str:
    """Where a request to `provider` gets its key, given the stored keys it may use: "none-needed",
    the preferred key's scope ("user", "class", "site"), "environment" or "" (none)."""
    from .services import site_env_key

    if not provider.needs_key:
        return "none-needed"
    credential = _preferred(credentials)
    if credential is not None:
        return credential.scope
    return "environment" if site_env_key(provider=provider) is not None else ""


def chat_models_usable_for(*, user: User, classroom: Classroom | None) -> list[ChatModel]:
    """Enabled models whose provider this user can reach now (a key exists, or none needed)."""
    usable = {provider.pk for provider, source in providers_with_status(user=user, classroom=classroom) if source}
    return [model for model in chat_models_enabled() if model.provider_id in usable]


# --- Which models a class allows ------------------------------------------------------
# "Which models may this student pick" is one rule: classroom_allows_model. The chat
# page's list (chat_models_offered_to) and the completion pipeline's check both use it, so
# a model missing from the list is also refused when asked for by name.


def providers_the_class_shuts_out(*, classroom: Classroom | None) -> set[int]:
    """Ids of the providers none of whose enabled models the class allows (empty when the
    class allows every model): a student's own key for one of them is never used there."""
    allowed = classroom_allowed_model_ids(classroom=classroom)
    if allowed is None:
        return set()
    usable = set(chat_models_enabled().filter(pk__in=allowed).values_list("provider_id", flat=True))
    return set(Provider.objects.exclude(pk__in=usable).values_list("pk", flat=True))


def classroom_allowed_model_ids(*, classroom: Classroom | None) -> set[int] | None:
    """The ids of the models a class allows; None when it allows every enabled model (no
    list set, or no class). One query."""
    if classroom is None:
        return None
    # Every turn asks: plain SQL (webchat/plainsql.py).
    allowed = ClassModelAccess.allowed_models.through
    listed = (
        f"SELECT {column(allowed, 'chatmodel')} FROM {table(allowed)} JOIN {table(ClassModelAccess)} "
        f"ON {column(allowed, 'classmodelaccess')} = {column(ClassModelAccess, 'id')} "
        f"WHERE {column(ClassModelAccess, 'classroom')} = %s"
    )
    return {pk for (pk,) in rows(listed, [classroom.pk])} or None  # no row, or an empty list: every model


def _in_allowlist(allowed_ids: set[int] | None, model: object) -> bool:
    return allowed_ids is None or getattr(model, "pk", None) in allowed_ids


def classroom_allows_model(*, classroom: Classroom | None, model: object) -> bool:
    """May a student of this class (or someone in no class) use `model`."""
    return _in_allowlist(classroom_allowed_model_ids(classroom=classroom), model)


def classroom_compares(*, classroom: Classroom | None) -> bool:
    """May this class's students compare models side by side (on unless a teacher said no)."""
    if classroom is None:
        return True
    return not ClassModelAccess.objects.filter(classroom=classroom, compare_enabled=False).exists()


def chat_models_offered_to(*, user: User, classroom: Classroom | None) -> list[ChatModel]:
    """The models the chat page offers: those this user can reach now that the class allows."""
    allowed_ids = classroom_allowed_model_ids(classroom=classroom)
    usable = chat_models_usable_for(user=user, classroom=classroom)
    return [model for model in usable if _in_allowlist(allowed_ids, model)]


def classroom_model_access(*, classroom: Classroom) -> ClassModelAccess | None:
    """The class's model settings, or None when it has none (every model, no default)."""
    return ClassModelAccess.objects.filter(classroom=classroom).select_related("default_model__provider").first()


def classroom_default_model(*, classroom: Classroom | None) -> ChatModel | None:
    """The model the class's chat page preselects, if the class set one."""
    access = classroom_model_access(classroom=classroom) if classroom is not None else None
    return access.default_model if access is not None else None


# --- Models described: the chat page's picker and the teacher's allowed-models page ----


def model_prices_current(*, model_ids: Iterable[int], when: datetime | None = None) -> dict[int, ModelPrice]:
    """Each model's price in force at `when` (default now), in one query: model id -> price.
    Models without a price yet are left out."""
    when = when or timezone.now()
    prices: dict[int, ModelPrice] = {}
    for price in ModelPrice.objects.filter(model_id__in=list(model_ids), effective_from__lte=when).order_by(
        "model_id", "-effective_from"
    ):
        prices.setdefault(price.model_id, price)
    return prices


@dataclass(frozen=True)
class ModelDescribed:
    """A model as a person choosing it sees it: name, what it is good at, what it costs per
    million tokens (in and out, in the price's currency), how much it reads and writes."""

    model: ChatModel
    route_name: str
    label: str
    description: str
    input_per_million: Decimal | None  # None: no price set yet
    output_per_million: Decimal | None
    currency: str
    context_window: int
    max_output_tokens: int

    @property
    def is_free(self) -> bool:
        return self.input_per_million == 0 and self.output_per_million == 0


@dataclass(frozen=True)
class ProviderModels:
    """One provider's models, for a group in a list (an <optgroup>, a table section)."""

    provider: Provider
    models: list[ModelDescribed]


def _model_described(model: ChatModel, price: ModelPrice | None) -> ModelDescribed:
    return ModelDescribed(
        model=model,
        route_name=model.route_name,
        label=model.label,
        description=model.description,
        input_per_million=price.input_per_million.normalize() if price else None,
        output_per_million=price.output_per_million.normalize() if price else None,
        currency=price.currency if price else "",
        context_window=model.context_window,
        max_output_tokens=model.max_output_tokens,
    )


def _grouped_by_provider(described: Iterable[ModelDescribed]) -> list[ProviderModels]:
    groups: dict[int, ProviderModels] = {}
    for item in described:  # already in catalog order (provider, then model name)
        provider = item.model.provider
        groups.setdefault(provider.pk, ProviderModels(provider=provider, models=[])).models.append(item)
    return list(groups.values())


def models_described(*, models: list[ChatModel]) -> list[ProviderModels]:
    """`models` (in catalog order) grouped by provider, each with its description, current
    price and context size. One query (the prices), however many models."""
    prices = model_prices_current(model_ids=[model.pk for model in models])
    return _grouped_by_provider(_model_described(model, prices.get(model.pk)) for model in models)


def models_described_for(*, user: User, classroom: Classroom | None) -> list[ProviderModels]:
    """The models the chat page offers this user (chat_models_offered_to: allowed by the
    class and reachable with a key), described and grouped by provider."""
    return models_described(models=chat_models_offered_to(user=user, classroom=classroom))


@dataclass(frozen=True)
class ClassProviderModels:
    """One provider's models on a teacher's allowed-models page, with where the class's
    students would get a key for it: "none-needed", "class", "site", "environment" or ""
    (none: students do not see its models until a key is added)."""

    provider: Provider
    key_source: str
    models: list[ModelDescribed]


def classroom_models_described(*, classroom: Classroom) -> list[ClassProviderModels]:
    """Every enabled model, described (name, description, price, context) and grouped by
    provider, each group with the key the class's students would use: a class key, else a
    site key, else one from the server's environment. Students' own keys are not counted:
    the page says what the whole class can use. Three queries, however many models."""
    credentials: dict[int, list[Credential]] = {}
    for credential in Credential.objects.filter(
        Q(scope=Credential.Scope.SITE) | Q(scope=Credential.Scope.CLASS, classroom=classroom),
        status=Credential.Status.ACTIVE,
    ):
        credentials.setdefault(credential.provider_id, []).append(credential)
    return [
        ClassProviderModels(
            provider=group.provider,
            key_source=_key_source(provider=group.provider, credentials=credentials.get(group.provider.pk, [])),
            models=group.models,
        )
        for group in models_described(models=list(chat_models_enabled()))
    ]
