"""The gateway's pages (keys, a class's API page, "Use the API"); the /v1 endpoints are in
v1_urls.py."""

from __future__ import annotations

from django.urls import path

from . import views

urlpatterns = [
    path("api/", views.api_guide, name="api-guide"),
    path("api-keys/", views.api_keys_page, name="api-keys"),
    path("api-keys/<int:key_id>/revoke/", views.api_key_revoke_view, name="api-key-revoke"),
    path("classes/<int:classroom_id>/api/", views.class_api, name="class-api"),
    path(
        "classes/<int:classroom_id>/api/keys/<int:key_id>/revoke/",
        views.class_api_key_revoke_view,
        name="class-api-key-revoke",
    ),
]
