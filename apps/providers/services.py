"""Writes for the provider catalog and credentials (API keys)."""

from __future__ import annotations

import json
import logging
import os
import uuid
from dataclasses import dataclass, field

from asgiref.sync import async_to_sync
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.views.decorators.debug import sensitive_variables

from apps.accounts.models import Classroom, User
from apps.accounts.selectors import user_may_manage_keys

from .catalog import DEMO, catalog_apply
from .client import key_check
from .models import ChatModel, ClassModelAccess, Credential, ModelPrice, Provider
from .netguard import BlockedURL, url_check_public, url_parse
from .sealing import current_kek_id, seal, unseal
from .selectors import key_reaches_its_url

logger = logging.getLogger(__name__)

MAX_KEY_CHARS = 512


def catalog_demo_ensure() -> int:
    """Make sure the built-in demo provider and its model exist (an admin may have deleted
    them). Side effects: creates missing rows only. Returns how many were created."""
    return catalog_apply(entries=[DEMO], provider_model=Provider, chat_model_model=ChatModel, price_model=ModelPrice)


def catalog_env_model_ensure() -> ChatModel | None:
    """The lessons' MODEL_NAME: with OPENAI_BASE_URL pointing at any OpenAI-compatible server,
    the model it names is offered under the `openai` provider. Side effects: at most one
    ChatModel row created."""
    name = os.environ.get("MODEL_NAME", "").strip()
    provider = Provider.objects.filter(slug="openai").first()
    if not name or provider is None:
        return None
    model, _ = ChatModel.objects.get_or_create(provider=provider, name=name, defaults={"display_name": name})
    return model


def class_models_validate(*, allowed_models: list[ChatModel], default_model: ChatModel | None) -> None:
    """The default must be one the class allows (any, when it allows every model). The
    teachers' page and admin both check through here."""
    if default_model is not None and allowed_models and default_model not in allowed_models:
        raise ValidationError({"default_model": _("The default model must be one of the allowed models.")})


@transaction.atomic
def class_models_set(
    *,
    classroom: Classroom,
    allowed_models: list[ChatModel],
    default_model: ChatModel | None,
    compare_enabled: bool | None = None,
) -> ClassModelAccess:
    """Which models the class's students may pick (none listed: every enabled model), which
    one their chat page preselects, and (unless None: unchanged) whether they may compare
    models side by side. Side effects: the class's ClassModelAccess row (created on first
    use) and its allowed-model links."""
    class_models_validate(allowed_models=allowed_models, default_model=default_model)
    defaults: dict[str, object] = {"default_model": default_model}
    if compare_enabled is not None:
        defaults["compare_enabled"] = compare_enabled
    access, _created = ClassModelAccess.objects.update_or_create(classroom=classroom, defaults=defaults)
    access.allowed_models.set(allowed_models)
    return access


@dataclass(frozen=True)
class KeyMaterial:
    """An opened key. Never logged or rendered: `repr` hides both parts."""

    api_key: str = field(repr=False)
    secret_key: str = field(default="", repr=False)


def _binding(credential: Credential) -> bytes:
    # Everything a sealed key must stay attached to: its row, provider and base URL.
    return f"webchat-credential:v1:{credential.public_id}:{credential.provider_id}:{credential.base_url}".encode()


# Functions holding a key in a local are marked with sensitive_variables(): an error report
# (the debug page, a logged traceback with locals) shows their variables, and those of
# everything they call, as stars.
@sensitive_variables()
def _clean_key(value: str, label: str) -> str:
    value = (value or "").strip()
    if not value:
        raise ValidationError({label: _("Enter the key.")})
    # A key goes in an HTTP header: printable ASCII only (anything else could not be sent).
    if len(value) > MAX_KEY_CHARS or not value.isascii() or not value.isprintable() or " " in value:
        raise ValidationError(
            {label: _("That does not look like an API key (spaces or other characters than ASCII, or far too long).")}
        )
    return value


def base_url_clean(*, provider: Provider, base_url: str, scope: str) -> str:
    base_url = (base_url or "").strip().rstrip("/")
    if not base_url:
        if not provider.base_url:
            raise ValidationError({"base_url": _("This provider needs a base URL.")})
        if not key_reaches_its_url(provider=provider, base_url="", scope=scope):
            raise ValidationError(
                {
                    "base_url": _(
                        "This provider's own address is on the school's network, which only a site key "
                        "an admin adds may reach. Enter the address of your model server."
                    )
                }
            )
        return ""
    try:
        if scope == Credential.Scope.SITE:
            # Admins may point anywhere, a model server on localhost included; still a
            # well-formed http(s) URL, or every call with the key would fail.
            return url_parse(base_url).url
        return url_check_public(base_url)
    except BlockedURL as exc:
        raise ValidationError({"base_url": str(exc)}) from None


@sensitive_variables()
def _seal_into(credential: Credential, material: KeyMaterial) -> None:
    plaintext = json.dumps({"api_key": material.api_key, "secret_key": material.secret_key}).encode()
    credential.sealed, credential.kek_id = seal(plaintext, binding=_binding(credential))
    credential.last4 = material.api_key[-4:]


def _check_scope(*, actor: User, scope: str, classroom: Classroom | None) -> None:
    if scope == Credential.Scope.SITE and not actor.is_superuser:
        raise PermissionDenied("Only an admin adds site keys.")
    if scope == Credential.Scope.CLASS:
        if classroom is None:
            raise ValidationError({"classroom": _("Choose the class this key is for.")})
        if not (actor.is_superuser or classroom.teachers.filter(pk=actor.pk).exists()):
            raise PermissionDenied("Only the class's teachers attach keys to it.")
    if scope == Credential.Scope.USER and not user_may_manage_keys(user=actor):
        raise PermissionDenied("This class does not let students use their own keys.")


@sensitive_variables()
def key_material_clean(*, provider: Provider, api_key: str, secret_key: str) -> KeyMaterial:
    api_key = _clean_key(api_key, "api_key")
    secret_key = (secret_key or "").strip()
    if secret_key:
        if provider.auth_style != Provider.AuthStyle.ERNIE:
            raise ValidationError({"secret_key": _("Only ERNIE (Qianfan) keys have a Secret Key.")})
        secret_key = _clean_key(secret_key, "secret_key")
    return KeyMaterial(api_key=api_key, secret_key=secret_key)


# No transaction around credential_create and credential_replace: each writes one row, and
# checking the base URL resolves its host (up to LLM_CONNECT_TIMEOUT), which inside a
# transaction would hold SQLite's writer lock, every chat turn's, for as long.
@sensitive_variables()
def credential_create(
    *,
    actor: User,
    provider: Provider,
    scope: str,
    api_key: str,
    secret_key: str = "",
    base_url: str = "",
    label: str = "",
    classroom: Classroom | None = None,
) -> Credential:
    """Seal and store a key. Side effects: one Credential row. The key is never stored in
    the clear and never returned."""
    _check_scope(actor=actor, scope=scope, classroom=classroom)
    if not provider.needs_key:
        raise ValidationError({"provider": _("This provider needs no key.")})
    material = key_material_clean(provider=provider, api_key=api_key, secret_key=secret_key)
    credential = Credential(
        public_id=uuid.uuid4(),
        provider=provider,
        scope=scope,
        owner=None if scope == Credential.Scope.SITE else actor,
        classroom=classroom if scope == Credential.Scope.CLASS else None,
        label=(label or "").strip()[:100],
        base_url=base_url_clean(provider=provider, base_url=base_url, scope=scope),
    )
    _seal_into(credential, material)
    credential.save()
    logger.info("credential %s created (%s, %s, …%s)", credential.public_id, provider.slug, scope, credential.last4)
    return credential


@sensitive_variables()
def credential_replace(
    *, credential: Credential, api_key: str, secret_key: str = "", base_url: str | None = None
) -> Credential:
    """Put a new key in place (and, optionally, a new base URL: a key is bound to the URL
    it was entered with, so a URL only changes together with a key). Side effects: the
    row's sealed key, last4, status; the last check's result forgotten (it was the old key's:
    the page said "Active" over "checked ...: rejected")."""
    if credential.status == Credential.Status.REVOKED:
        raise ValidationError(_("A revoked key cannot be replaced; add a new one."))
    material = key_material_clean(provider=credential.provider, api_key=api_key, secret_key=secret_key)
    if base_url is not None:
        credential.base_url = base_url_clean(provider=credential.provider, base_url=base_url, scope=credential.scope)
    _seal_into(credential, material)
    credential.status = Credential.Status.ACTIVE
    credential.last_error = ""
    credential.last_checked_at, credential.last_check_result = None, ""
    # Only a key not revoked meanwhile (checking the URL takes time): a revoke stays a revoke.
    fields = ["base_url", "sealed", "kek_id", "last4", "status", "last_error", "last_checked_at", "last_check_result"]
    replaced = (
        Credential.objects.filter(pk=credential.pk)
        .exclude(status=Credential.Status.REVOKED)
        .update(**{field: getattr(credential, field) for field in fields})
    )
    if not replaced:
        raise ValidationError(_("A revoked key cannot be replaced; add a new one."))
    return credential


def credential_revoke(*, credential: Credential) -> Credential:
    """Never used again; the row stays for the ledger's references. Side effects: status."""
    credential.status = Credential.Status.REVOKED
    credential.revoked_at = timezone.now()
    credential.save(update_fields=["status", "revoked_at"])
    return credential


@sensitive_variables()
def credential_open(*, credential: Credential) -> KeyMaterial:
    """The key in the clear, for the Authorization header only. Raises SealError."""
    data = json.loads(unseal(credential.sealed, binding=_binding(credential)))
    return KeyMaterial(api_key=data["api_key"], secret_key=data.get("secret_key", ""))


def credential_mark_failing(*, credential_id: int, error: str) -> None:
    """The provider rejected the key (401/403): show it to the teacher and admin. Side
    effects: status and last_error of an active row."""
    Credential.objects.filter(pk=credential_id, status=Credential.Status.ACTIVE).update(
        status=Credential.Status.FAILING, last_error=error[:200]
    )


@sensitive_variables()
def credential_test(*, credential: Credential) -> Credential.CheckResult | None:
    """ "Test this key", from the keys page and from admin alike: ask the provider with the
    key (list its models: free at every provider) and record the answer. A key that works
    again is active again; one the provider rejects is failing. Returns the result, or None
    when the key cannot be opened (a master-key problem, not the key's: nothing is asked
    and nothing recorded). Side effects: the credential's last check, status, last_error."""
    # routes builds routes on this module's credential_open: imported here, not at the top.
    from .routes import NoRoute, key_check_route

    try:
        route = key_check_route(credential=credential)
    except NoRoute:
        return None
    result = Credential.CheckResult(async_to_sync(key_check)(route))
    credential.last_check_result = result
    credential.last_checked_at = timezone.now()
    fields = ["last_check_result", "last_checked_at"]
    if credential.status != Credential.Status.REVOKED:
        if result == Credential.CheckResult.WORKS:
            credential.status, credential.last_error = Credential.Status.ACTIVE, ""
        elif result == Credential.CheckResult.REJECTED:
            credential.status, credential.last_error = Credential.Status.FAILING, "rejected"
        fields += ["status", "last_error"]
    credential.save(update_fields=fields)
    return result


@sensitive_variables()
def credentials_rotate(*, batch_size: int = 200) -> dict[str, int]:
    """Re-seal every credential not yet under the first master key. Each row is re-sealed
    in its own small transaction, so an interrupted run is simply run again.
    Returns counts: rotated, already current, failed (cannot be opened)."""
    current = current_kek_id()
    counts = {"rotated": 0, "current": 0, "failed": 0}
    counts["current"] = Credential.objects.filter(kek_id=current).count()
    last_id = 0
    while True:
        batch = list(Credential.objects.exclude(kek_id=current).filter(pk__gt=last_id).order_by("pk")[:batch_size])
        if not batch:
            return counts
        for credential in batch:
            last_id = credential.pk
            try:
                material = credential_open(credential=credential)
            except Exception:  # SealError: reported by count, never with the key
                counts["failed"] += 1
                continue
            old_kek = credential.kek_id
            _seal_into(credential, material)
            # Conditional on the old master key id: two rotations running at once cannot
            # overwrite each other's work with stale bytes.
            counts["rotated"] += Credential.objects.filter(pk=credential.pk, kek_id=old_kek).update(
                sealed=credential.sealed, kek_id=credential.kek_id
            )


@sensitive_variables()
def site_env_key(*, provider: Provider) -> tuple[KeyMaterial, str] | None:
    """A site key from the environment (OPENAI_API_KEY and friends, as in the lessons), with
    the base URL the environment gives (or ""). Read at call time, never stored."""
    if not provider.env_key_var:
        return None
    api_key = os.environ.get(provider.env_key_var, "").strip()
    if not api_key:
        return None
    secret_key = os.environ.get(provider.env_secret_var, "").strip() if provider.env_secret_var else ""
    base_url = os.environ.get(provider.env_base_url_var, "").strip() if provider.env_base_url_var else ""
    return KeyMaterial(api_key=api_key, secret_key=secret_key), base_url
