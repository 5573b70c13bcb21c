from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class GuideSection(models.TextChoices):
    """The sections of a provider page, in the order of the lessons' per-service
    documentation template (the page shows them in this order)."""

    OVERVIEW = "overview", _("Overview")
    FEATURES = "features", _("Features")
    MODELS = "models", _("Models")
    LIMITS = "limits", _("Limits")
    PRICING = "pricing", _("Pricing")
    KEY = "key", _("How to get a key")
    CODE = "code", _("Code examples")
    COMPARISON = "comparison", _("Comparison with other providers")
    BEST_PRACTICE = "best_practice", _("Best practice")
    FAQ = "faq", _("FAQ")
    LINKS = "links", _("Related links")
    CHANGELOG = "changelog", _("Changelog")


class ProviderGuide(models.Model):
    """An admin's Markdown for one section of one provider's page in one language. It
    replaces the text shipped in apps/learn/guide_defaults.py for that section (the tables
    drawn from the catalog stay). Shown sanitized, like model output."""

    class Language(models.TextChoices):
        ZH_HANS = "zh-hans", _("Simplified Chinese")
        EN = "en", _("English")

    provider = models.ForeignKey(
        "providers.Provider", on_delete=models.CASCADE, related_name="guides", verbose_name=_("provider")
    )
    language = models.CharField(_("language"), max_length=8, choices=Language.choices)
    section = models.CharField(_("section"), max_length=16, choices=GuideSection.choices)
    markdown = models.TextField(_("text (Markdown)"), blank=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("provider page text")
        verbose_name_plural = _("provider page texts")
        ordering = ["provider__sort_order", "language", "section"]
        constraints = [
            models.UniqueConstraint(fields=["provider", "language", "section"], name="providerguide_unique_section")
        ]

    def __str__(self) -> str:
        return f"{self.provider.slug} {self.language} {self.section}"
