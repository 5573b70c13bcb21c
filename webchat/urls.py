from __future__ import annotations

from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView

from apps.accounts.admin import own_password_change
from webchat.health import healthz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    # Browsers ask for /favicon.ico on pages that name no icon (the admin's).
    path("favicon.ico", RedirectView.as_view(url=static("favicon.svg"), permanent=True)),
    # Before the admin's own URLs: the same page, and the account's chat sockets close after.
    path("admin/password_change/", own_password_change, name="admin-password-change"),
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("accounts/", include("apps.accounts.urls")),
    path("demo/v1/", include("apps.providers.demo_urls")),
    path("v1/", include("apps.gateway.v1_urls")),
    path("", include("apps.gateway.urls")),
    path("", include("apps.providers.urls")),
    path("", include("apps.learn.urls")),
    path("", include("apps.accounts.class_urls")),
    path("", include("apps.billing.urls")),
    path("", include("apps.conversations.urls")),
]
