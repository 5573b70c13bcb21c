from __future__ import annotations

from django.contrib import admin
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from .guide_defaults import guide_default_markdown
from .models import ProviderGuide


@admin.register(ProviderGuide)
class ProviderGuideAdmin(admin.ModelAdmin):
    """One section of a provider page in one language, in Markdown. Saved, it replaces the
    shipped text of that section; deleted, the shipped text is back. Shown sanitized."""

    list_display = ["provider", "language", "section", "updated_at"]
    list_filter = ["language", "section", "provider"]
    fields = ["provider", "language", "section", "markdown", "shipped_text"]
    readonly_fields = ["shipped_text"]

    @admin.display(description=_("shipped text"))
    def shipped_text(self, guide: ProviderGuide) -> str:
        if guide.pk is None:
            return _("Save once to see the text this section shipped with.")
        text = guide_default_markdown(slug=guide.provider.slug, language=guide.language, section=guide.section)
        return format_html("<pre>{}</pre>", text or "—")
