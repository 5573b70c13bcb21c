from __future__ import annotations

from django.urls import path, re_path

from . import api_views as views

urlpatterns = [
    path("models", views.models_list, name="v1-models"),
    # Model ids hold a slash (provider/model).
    path("models/<path:model>", views.model_retrieve, name="v1-model"),
    path("chat/completions", views.chat_completions, name="v1-chat-completions"),
    # Anything else under /v1: OpenAI's JSON 404, not the site's HTML page.
    re_path(r"", views.unknown_url, name="v1-unknown"),
]
