"""`{% load key_rights %}{% if user|may_manage_keys %}`: the navigation bar shows the API keys
page to exactly those the page lets in (selectors.user_may_manage_keys)."""

from __future__ import annotations

from django import template

from apps.accounts.models import User
from apps.accounts.selectors import user_may_manage_keys

register = template.Library()


@register.filter
def may_manage_keys(user: User) -> bool:
    return user.is_authenticated and user_may_manage_keys(user=user)
