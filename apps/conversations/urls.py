from __future__ import annotations

from django.urls import path

from . import views

urlpatterns = [
    path("", views.chat, name="home"),
    path("c/<int:conversation_id>/", views.chat, name="conversation"),
]
