"""Presentation view: any teaching page shown large for projecting in class (`?present=1`),
with no navigation and nothing personal. One rule for every app's pages."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

PRESENT_BASE = "learn/_present_base.html"


def presentation_context(request: HttpRequest) -> dict[str, Any]:
    """What a page's template needs: whether it is being presented (then it extends
    `base_template`, shows no personal data), and whether to offer the toggle (teachers and
    admins project pages in class)."""
    presenting = request.GET.get("present") == "1"
    user = request.user
    return {
        "presenting": presenting,
        "base_template": PRESENT_BASE if presenting else "base.html",
        "may_present": user.is_authenticated and (user.role != user.Role.STUDENT or user.is_superuser),
        "present_url": f"{request.path}?present=1",
        "leave_present_url": request.path,
    }
