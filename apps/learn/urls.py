from __future__ import annotations

from django.urls import path

from . import views

urlpatterns = [
    path("learn/", views.learn_index, name="learn"),
    path("learn/tokenizer/", views.tokenizer_page, name="learn-tokenizer"),
    path("learn/tokenizer/count", views.tokenizer_count, name="learn-tokenizer-count"),
    path("providers/<slug:slug>/", views.provider_page, name="learn-provider"),
]
