from __future__ import annotations

from axes.apps import AppConfig as AxesAppConfig
from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    name = "apps.accounts"
    verbose_name = _("Accounts")
    default = True  # "apps.accounts" in INSTALLED_APPS means this one, whatever else apps.py defines

    def ready(self) -> None:
        from . import signals  # noqa: F401  (connects the logout receiver)


class LoginAttemptsConfig(AxesAppConfig):
    """django-axes (login throttling) under a translated name: axes gives its app none, so
    Django admin showed "AXES" in every language. INSTALLED_APPS names this class instead of
    "axes"; the label, models and tables stay axes' own. Its model and field names are
    translated in our catalog (apps/accounts/third_party_msgids.py keeps them there)."""

    verbose_name = _("Login attempts")
