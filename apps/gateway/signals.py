"""Receivers for what the accounts app tells the apps above it."""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver

from apps.accounts.models import User
from apps.accounts.signals import passwords_set_by_another

from .services import api_keys_revoke_for_new_password


@receiver(passwords_set_by_another, dispatch_uid="gateway.revoke_keys_on_new_password")
def revoke_the_api_keys_of_a_password_someone_else_set(sender: type, users: list[User], **kwargs: Any) -> None:
    api_keys_revoke_for_new_password(users=users)
