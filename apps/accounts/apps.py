from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    name = "apps.accounts"
    verbose_name = _("Accounts")
    default = True  # "apps.accounts" in INSTALLED_APPS means this one, whatever else apps.py defines

    def ready(self) -> None:
        from . import signals  # noqa: F401  (connects the logout receiver)
