from __future__ import annotations

from django.urls import path

from . import views

urlpatterns = [
    path("providers/", views.providers_page, name="providers"),
    path("keys/", views.keys_page, name="keys"),
    path("keys/<int:credential_id>/replace/", views.key_replace, name="key-replace"),
    path("keys/<int:credential_id>/revoke/", views.key_revoke, name="key-revoke"),
    path("keys/<int:credential_id>/test/", views.key_test, name="key-test"),
    path("classes/<int:classroom_id>/models/", views.class_models, name="class-models"),
]
