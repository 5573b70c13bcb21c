from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ProvidersConfig(AppConfig):
    name = "apps.providers"
    verbose_name = _("Providers")

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the start-up checks)
