"""The gateway's pages: personal API keys, a class's API page for its teachers, and "Use
the API". Thin: services and selectors do the work."""

from __future__ import annotations

import secrets
from datetime import timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_variables
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.accounts.selectors import classroom_for_student, classroom_get_for_teacher
from apps.providers.selectors import chat_models_offered_to, classroom_default_model
from webchat.forms import form_add_service_errors
from webchat.presenting import presentation_context

from .forms import ApiKeyCreateForm, ClassApiAccessForm
from .models import ApiKey
from .selectors import (
    api_key_get_for_user,
    api_keys_active_of_user,
    api_keys_of_user,
    class_api_enabled,
    class_api_key_get,
    class_api_keys,
)
from .services import ACTIVE_KEYS_PER_USER, api_key_create, api_key_revoke, class_api_access_set, class_api_key_revoke

# Placeholders in the guide's code: never a real key, and a model name when none is offered.
KEY_PLACEHOLDER = "paste-your-key-here"
MODEL_PLACEHOLDER = "provider/model"


# The new key is a local here and a value in the page's context: its locals show as stars
# in any error report (webchat/reporting.py), and the response is never cached.
@sensitive_variables()
@require_http_methods(["GET", "POST"])
@login_required
def api_keys_page(request: HttpRequest) -> HttpResponse:
    """The user's keys, and a form for a new one. A new key is shown in the response to the
    POST that made it, and nowhere else: not in the session, a URL or a later page. That
    response is not a redirect, so each form carries a one-time token: the browser's
    "reload" sends the same POST again, and makes no second key."""
    form = ApiKeyCreateForm(request.POST if request.method == "POST" else None)
    created: ApiKey | None = None
    full_key = ""
    if request.method == "POST" and not _form_token_spend(request):
        messages.info(
            request,
            _(
                "That form had already been sent: the key it made was shown once, then. It is in the list below; "
                "create another if you did not copy it."
            ),
        )
        return redirect("api-keys")
    if request.method == "POST" and form.is_valid():
        days = form.cleaned_data["expires_in_days"]
        try:
            created, full_key = api_key_create(
                user=request.user,
                name=form.cleaned_data["name"],
                expires_at=timezone.now() + timedelta(days=days) if days else None,
            )
        except ValidationError as exc:
            form_add_service_errors(form, exc)
        else:
            form = ApiKeyCreateForm()  # empty again, for the next key
    presenting = presentation_context(request)
    response = render(
        request,
        "gateway/api_keys.html",
        {
            **presenting,
            "form": form,
            # Projected in class: the lesson (open), nobody's keys.
            "keys": [] if presenting["presenting"] else api_keys_of_user(user=request.user),
            "created": created,
            "full_key": full_key,
            "api_enabled": class_api_enabled(classroom=classroom_for_student(user=request.user)),
            "max_keys": ACTIVE_KEYS_PER_USER,
            "form_token": _form_token_issue(request),
        },
        status=400 if request.method == "POST" and created is None else 200,
    )
    response["Cache-Control"] = "no-store"
    return response


FORM_TOKENS = "api_key_form_tokens"
FORM_TOKENS_KEPT = 5  # forms open at once in a user's tabs


def _form_token_issue(request: HttpRequest) -> str:
    token = secrets.token_urlsafe(16)
    request.session[FORM_TOKENS] = [*request.session.get(FORM_TOKENS, [])[-(FORM_TOKENS_KEPT - 1) :], token]
    return token


def _form_token_spend(request: HttpRequest) -> bool:
    """Whether the posted form's token was issued to this session and not used yet (it is now)."""
    tokens = request.session.get(FORM_TOKENS, [])
    token = request.POST.get("form_token", "")
    if token not in tokens:
        return False
    request.session[FORM_TOKENS] = [kept for kept in tokens if kept != token]
    return True


@require_POST
@login_required
def api_key_revoke_view(request: HttpRequest, key_id: int) -> HttpResponse:
    key = api_key_get_for_user(user=request.user, key_id=key_id)
    api_key_revoke(key=key)
    messages.success(request, _("Key %(prefix)s… revoked. It will never work again.") % {"prefix": key.prefix})
    return redirect("api-keys")


@require_http_methods(["GET", "POST"])
@login_required
def class_api(request: HttpRequest, classroom_id: int) -> HttpResponse:
    """A teacher's class page: the class's API switch and its students' keys."""
    classroom = classroom_get_for_teacher(user=request.user, classroom_id=classroom_id)
    if request.method == "POST":
        form = ClassApiAccessForm(request.POST)
        if form.is_valid():
            enabled = form.cleaned_data["enabled"]
            class_api_access_set(actor=request.user, classroom=classroom, enabled=enabled)
            if enabled:
                messages.success(request, _("API access is on: the students' keys work."))
            else:
                messages.success(
                    request, _("API access is off: the students' keys are refused until you switch it on.")
                )
            return redirect("class-api", classroom_id=classroom.pk)
        messages.error(request, _("Choose on or off."))
    return render(
        request,
        "gateway/class_api.html",
        {
            "classroom": classroom,
            "api_enabled": class_api_enabled(classroom=classroom),
            "keys": class_api_keys(classroom=classroom),
        },
        status=400 if request.method == "POST" else 200,
    )


@require_POST
@login_required
def class_api_key_revoke_view(request: HttpRequest, classroom_id: int, key_id: int) -> HttpResponse:
    classroom = classroom_get_for_teacher(user=request.user, classroom_id=classroom_id)
    key = class_api_key_get(classroom=classroom, key_id=key_id)
    class_api_key_revoke(actor=request.user, classroom=classroom, key=key)
    messages.success(
        request,
        _("Key %(prefix)s… of %(student)s revoked. It will never work again.")
        % {"prefix": key.prefix, "student": key.user},
    )
    return redirect("class-api", classroom_id=classroom.pk)


@require_GET
@login_required
def api_guide(request: HttpRequest) -> HttpResponse:
    """ "Use the API": this site's base URL, the user's keys (prefixes only), the models they
    may call, and the lesson's code with those values filled in."""
    classroom = classroom_for_student(user=request.user)
    models = chat_models_offered_to(user=request.user, classroom=classroom)
    default = classroom_default_model(classroom=classroom)
    example = default if default in models else (models[0] if models else None)
    presenting = presentation_context(request)
    return render(
        request,
        "gateway/api_guide.html",
        {
            **presenting,
            "base_url": request.build_absolute_uri(reverse("v1-models")).removesuffix("/models"),
            # Projected in class: nobody's keys on the wall.
            "keys": [] if presenting["presenting"] else api_keys_active_of_user(user=request.user),
            "models": models,
            "model_name": example.route_name if example else MODEL_PLACEHOLDER,
            "key_placeholder": KEY_PLACEHOLDER,
            "api_enabled": class_api_enabled(classroom=classroom),
            "demo_base_url": request.build_absolute_uri(reverse("demo-models")).removesuffix("/models"),
        },
    )
