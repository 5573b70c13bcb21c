from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class GatewayConfig(AppConfig):
    name = "apps.gateway"
    verbose_name = _("API keys")

    def ready(self) -> None:
        from . import signals  # noqa: F401  (revokes keys when someone else sets a password)
