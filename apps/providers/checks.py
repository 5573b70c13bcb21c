"""Start-up checks: every stored key can be opened with the configured master keys."""

from __future__ import annotations

from typing import Any

from django.core.checks import Error, register
from django.db import DatabaseError


@register("webchat")
def sealed_keys_open(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    from .models import Credential
    from .sealing import SealError, master_keys
    from .services import credential_open

    try:
        known = {key.kek_id for key in master_keys()}
        errors = []
        for kek_id in Credential.objects.values_list("kek_id", flat=True).distinct():
            sample = Credential.objects.filter(kek_id=kek_id).first()
            if kek_id not in known:
                errors.append(
                    Error(
                        f"Stored API keys are sealed with master key {kek_id}, which is not in KEY_ENCRYPTION_KEYS.",
                        hint="Add that master key back to KEY_ENCRYPTION_KEYS (after the current one).",
                        id="webchat.E001",
                    )
                )
            elif sample is not None:
                try:
                    credential_open(credential=sample)
                except SealError:
                    errors.append(
                        Error(
                            f"Stored API key {sample.public_id} does not open with master key {kek_id}.",
                            hint="KEY_ENCRYPTION_KEYS holds a different key under the same id, or the row was altered.",
                            id="webchat.E002",
                        )
                    )
        return errors
    except DatabaseError:
        return []  # not migrated yet: nothing stored to check
