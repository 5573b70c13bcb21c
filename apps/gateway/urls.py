"""The gateway's pages (keys, "Use the API"); the /v1 endpoints are in v1_urls.py."""

from __future__ import annotations

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
