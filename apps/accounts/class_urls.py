from __future__ import annotations

from django.urls import path

from . import views

urlpatterns = [
    path("classes/", views.classes_page, name="classes"),
    path("classes/<int:classroom_id>/", views.class_settings, name="class-settings"),
    path("classes/<int:classroom_id>/do/<slug:action>/", views.class_action, name="class-action"),
    path("classes/<int:classroom_id>/roster/", views.class_roster, name="class-roster"),
    path("classes/<int:classroom_id>/roster/import/", views.roster_import_view, name="class-roster-import"),
    path("classes/<int:classroom_id>/roster/reset/", views.roster_reset, name="class-roster-reset"),
    path("classes/<int:classroom_id>/roster/<int:student_id>/remove/", views.roster_remove, name="class-roster-remove"),
    path("classes/<int:classroom_id>/roster/<int:student_id>/unlock/", views.roster_unlock, name="class-roster-unlock"),
    path("join/", views.register, name="register"),
    path("join/done/", views.joined, name="joined"),
]
