from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from .models import User
from .selectors import classrooms_for_teacher


@require_GET
@login_required
def classes_page(request: HttpRequest) -> HttpResponse:
    if request.user.role == User.Role.STUDENT and not request.user.is_superuser:
        raise PermissionDenied
    classrooms = classrooms_for_teacher(user=request.user).prefetch_related("teachers")
    return render(request, "accounts/classes.html", {"classrooms": classrooms})
