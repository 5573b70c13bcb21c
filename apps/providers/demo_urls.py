from __future__ import annotations

from django.urls import path

from . import demo_views

urlpatterns = [
    path("chat/completions", demo_views.chat_completions, name="demo-chat-completions"),
    path("models", demo_views.models_list, name="demo-models"),
]
