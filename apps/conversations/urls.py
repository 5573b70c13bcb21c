from __future__ import annotations

from django.urls import path

from . import views

urlpatterns = [
    path("", views.chat, name="home"),
    path("c/<int:conversation_id>/", views.chat, name="conversation"),
    path("compare/", views.compare_page, name="compare"),
    path("c/<int:conversation_id>/rename/", views.rename, name="conversation-rename"),
    path("c/<int:conversation_id>/shown/", views.shown, name="conversation-shown"),
    path("c/<int:conversation_id>/delete/", views.delete, name="conversation-delete"),
    path("c/<int:conversation_id>/restore/", views.restore, name="conversation-restore"),
    path(
        "classes/<int:classroom_id>/students/<int:student_id>/conversations/",
        views.student_conversations,
        name="teacher-student-conversations",
    ),
    path("read/<int:conversation_id>/", views.teacher_read, name="teacher-read"),
]
