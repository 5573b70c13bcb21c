from __future__ import annotations

from django.db import models
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _


class Provider(models.Model):
    class AuthStyle(models.TextChoices):
        BEARER = "bearer", _("Bearer API key")
        ERNIE = "ernie", _("API Key + Secret Key (access token)")
        NONE = "none", _("No key")

    slug = models.SlugField(_("slug"), unique=True)
    name_en = models.CharField(_("English name"), max_length=100)
    name_zh = models.CharField(_("Chinese name"), max_length=100)
    # Absolute (https://api.deepseek.com/v1) or site-relative (/demo/v1, served by webchat
    # itself and reached through INTERNAL_BASE_URL).
    base_url = models.CharField(_("base URL"), max_length=500)
    signup_url = models.URLField(_("key page URL"), blank=True)
    auth_style = models.CharField(_("auth style"), max_length=16, choices=AuthStyle.choices, default=AuthStyle.BEARER)
    is_demo = models.BooleanField(_("demo"), default=False, help_text=_("The built-in demo model; no key, no network."))
    enabled = models.BooleanField(_("enabled"), default=True)
    sort_order = models.PositiveSmallIntegerField(_("order"), default=100)

    class Meta:
        verbose_name = _("provider")
        verbose_name_plural = _("providers")
        ordering = ["sort_order", "slug"]

    def __str__(self) -> str:
        return self.display_name

    @property
    def display_name(self) -> str:
        return self.name_zh if (get_language() or "").startswith("zh") else self.name_en


class ChatModel(models.Model):
    provider = models.ForeignKey(Provider, on_delete=models.CASCADE, related_name="models", verbose_name=_("provider"))
    name = models.CharField(_("model id"), max_length=150, help_text=_("The id sent to the provider's API."))
    display_name = models.CharField(_("display name"), max_length=150, blank=True)
    context_window = models.PositiveIntegerField(_("context window (tokens)"), default=8192)
    max_output_tokens = models.PositiveIntegerField(_("max output tokens"), default=4096)
    enabled = models.BooleanField(_("enabled"), default=True)

    class Meta:
        verbose_name = _("model")
        verbose_name_plural = _("models")
        ordering = ["provider__sort_order", "provider__slug", "name"]
        constraints = [models.UniqueConstraint(fields=["provider", "name"], name="chatmodel_unique_name_per_provider")]

    def __str__(self) -> str:
        return self.route_name

    @property
    def route_name(self) -> str:
        """How the model is named on the websocket and the /v1 API: `<provider>/<model>`."""
        return f"{self.provider.slug}/{self.name}"

    @property
    def label(self) -> str:
        return self.display_name or self.name


class ModelPrice(models.Model):
    """A model's price from `effective_from` on. Old rows are kept: a request is billed at
    the price in force when it started."""

    class Currency(models.TextChoices):
        CNY = "CNY", _("Chinese yuan (CNY)")
        USD = "USD", _("US dollar (USD)")

    model = models.ForeignKey(ChatModel, on_delete=models.CASCADE, related_name="prices", verbose_name=_("model"))
    input_per_million = models.DecimalField(_("input price per million tokens"), max_digits=12, decimal_places=6)
    output_per_million = models.DecimalField(_("output price per million tokens"), max_digits=12, decimal_places=6)
    currency = models.CharField(_("currency"), max_length=3, choices=Currency.choices, default=Currency.CNY)
    effective_from = models.DateTimeField(_("effective from"))

    class Meta:
        verbose_name = _("price")
        verbose_name_plural = _("prices")
        ordering = ["model", "-effective_from"]
        constraints = [
            models.UniqueConstraint(fields=["model", "effective_from"], name="modelprice_unique_start_per_model")
        ]

    def __str__(self) -> str:
        return f"{self.model}: {self.input_per_million}/{self.output_per_million} {self.currency}"
