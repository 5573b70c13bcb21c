"""Reads for the teaching pages: the providers and their pages' sections, and the models
the tokenizer offers."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Prefetch
from django.utils import timezone

from apps.accounts.models import Classroom, User
from apps.conversations.rendering import reply_html
from apps.providers.models import ChatModel, ModelPrice, Provider
from apps.providers.selectors import chat_models_enabled, chat_models_offered_to, providers_with_status

from .guide_defaults import guide_default_markdown
from .models import GuideSection, ProviderGuide
from .tokenizer import money_text

# Sections whose body is drawn by the page from the catalog; the Markdown follows it.
_DRAWN = {
    GuideSection.OVERVIEW: "learn/_section_overview.html",
    GuideSection.MODELS: "learn/_section_models.html",
    GuideSection.PRICING: "learn/_section_pricing.html",
    GuideSection.CODE: "learn/_section_code.html",
    GuideSection.COMPARISON: "learn/_section_comparison.html",
    GuideSection.CHANGELOG: "learn/_section_changelog.html",
}


def guide_language(language: str | None) -> str:
    """The guide language for Django's active language: zh-hans or en."""
    return ProviderGuide.Language.ZH_HANS if (language or "").startswith("zh") else ProviderGuide.Language.EN


def providers_for_learn() -> list[Provider]:
    """Every enabled provider, in catalog order."""
    return list(Provider.objects.filter(enabled=True).order_by("sort_order", "slug"))


def provider_get_for_page(*, slug: str) -> Provider | None:
    """An enabled provider with its enabled models and their prices (newest first)."""
    models = (
        ChatModel.objects.filter(enabled=True)
        .order_by("name")
        .prefetch_related(Prefetch("prices", queryset=ModelPrice.objects.order_by("-effective_from")))
    )
    return (
        Provider.objects.filter(enabled=True, slug=slug)
        .prefetch_related(Prefetch("models", queryset=models, to_attr="enabled_models"))
        .first()
    )


@dataclass(frozen=True)
class ModelRow:
    model: ChatModel
    price: ModelPrice | None  # in force now
    prices: list[ModelPrice]  # every price, newest first (the changelog)

    @property
    def input_text(self) -> str:
        return money_text(self.price.input_per_million) if self.price else ""

    @property
    def output_text(self) -> str:
        return money_text(self.price.output_per_million) if self.price else ""


def provider_model_rows(*, provider: Provider) -> list[ModelRow]:
    """The provider's enabled models (prefetched by provider_get_for_page) with their prices."""
    return [
        ModelRow(model=model, price=price_current(model), prices=list(model.prices.all()))
        for model in getattr(provider, "enabled_models", [])
    ]


def price_current(model: ChatModel) -> ModelPrice | None:
    """The price in force now among the model's prefetched prices (newest first)."""
    now = timezone.now()
    return next((price for price in model.prices.all() if price.effective_from <= now), None)


@dataclass(frozen=True)
class Section:
    key: str
    title: str
    # The template that draws the catalog part (models, prices...), or "".
    partial: str
    # The section's Markdown (an admin's if set, else the shipped text) as sanitized HTML.
    html: str
    edited: bool


# A guide's HTML, by its Markdown: the same few texts are shown on every visit, and turning
# one into HTML (highlighted code included) takes milliseconds. An admin's edit is a new text.
_guide_html = functools.lru_cache(maxsize=512)(reply_html)


def provider_guide_sections(*, provider: Provider, language: str) -> list[Section]:
    """The page's sections in the template's order. One query for the admins' texts."""
    edited = {
        guide.section: guide.markdown
        for guide in ProviderGuide.objects.filter(provider=provider, language=language).only("section", "markdown")
    }
    sections = []
    for section in GuideSection:
        markdown = edited.get(section.value)
        if markdown is None:
            markdown = guide_default_markdown(slug=provider.slug, language=language, section=section.value)
        sections.append(
            Section(
                key=section.value,
                title=str(section.label),
                partial=_DRAWN.get(section, ""),
                html=_guide_html(markdown) if markdown.strip() else "",
                edited=section.value in edited,
            )
        )
    return sections


def provider_school_key_source(*, provider: Provider, user: User, classroom: Classroom | None) -> str:
    """Where a request of this user's to `provider` would get its key now: "none-needed",
    "user", "class", "site", "environment" or "" (no key: not usable)."""
    return next(
        (source for row, source in providers_with_status(user=user, classroom=classroom) if row == provider), ""
    )


@dataclass(frozen=True)
class ComparisonRow:
    provider: Provider
    models: int
    # The cheapest model's price per million (input, output) and its currency.
    cheapest_input: Decimal | None
    cheapest_output: Decimal | None
    currency: str
    max_context: int
    has_free_model: bool

    @property
    def cheapest_text(self) -> str:
        if self.cheapest_input is None or self.cheapest_output is None:
            return ""
        return f"{money_text(self.cheapest_input)} / {money_text(self.cheapest_output)} {self.currency}"


def provider_comparison_rows() -> list[ComparisonRow]:
    """One row per enabled provider for the comparison table. Two queries."""
    by_provider: dict[int, list[tuple[ChatModel, ModelPrice | None]]] = {}
    for model in chat_models_enabled().prefetch_related(
        Prefetch("prices", queryset=ModelPrice.objects.order_by("-effective_from"))
    ):
        by_provider.setdefault(model.provider_id, []).append((model, price_current(model)))
    rows = []
    for provider in providers_for_learn():
        entries = by_provider.get(provider.pk, [])
        priced = [(m, p) for m, p in entries if p is not None]
        cheapest = min(priced, key=lambda mp: mp[1].input_per_million + mp[1].output_per_million, default=None)
        rows.append(
            ComparisonRow(
                provider=provider,
                models=len(entries),
                cheapest_input=cheapest[1].input_per_million if cheapest else None,
                cheapest_output=cheapest[1].output_per_million if cheapest else None,
                currency=cheapest[1].currency if cheapest else "",
                max_context=max((m.context_window for m, _p in entries), default=0),
                has_free_model=any(p.input_per_million == 0 and p.output_per_million == 0 for _m, p in priced),
            )
        )
    return rows


def tokenizer_models_for(*, user: User, classroom: Classroom | None) -> list[ChatModel]:
    """The models the tokenizer offers: the ones this user may chat with, or, when none is
    available yet (no key), every enabled model: counting calls no provider."""
    return chat_models_offered_to(user=user, classroom=classroom) or list(chat_models_enabled())
