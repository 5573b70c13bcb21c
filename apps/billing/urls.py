from __future__ import annotations

from django.urls import path

from . import views

urlpatterns = [
    path("usage/", views.my_usage, name="my-usage"),
    path("usage/quota/", views.my_quota, name="my-quota"),
    path("classes/<int:classroom_id>/quota/", views.quota_page, name="class-quota"),
    path("classes/<int:classroom_id>/quota/override/", views.override_set, name="class-quota-override"),
    path("classes/<int:classroom_id>/usage/", views.usage_page, name="class-usage"),
    path("classes/<int:classroom_id>/usage.csv", views.usage_csv, name="class-usage-csv"),
]
