"""The project itself as an app, so its system checks are registered at start-up."""

from __future__ import annotations

from django.apps import AppConfig


class WebchatConfig(AppConfig):
    name = "webchat"
    verbose_name = "webchat"

    def ready(self) -> None:
        from webchat import checks  # noqa: F401  (registers the checks)
