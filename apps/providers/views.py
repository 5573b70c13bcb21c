"""The providers page, the key pages (add, replace, revoke, test) and a class's models page."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.accounts.selectors import classroom_for_student, classroom_get_for_teacher, user_may_manage_keys
from webchat.forms import form_add_service_errors

from .forms import KEY_FIELDS, ClassModelsForm, CredentialCreateForm, CredentialReplaceForm
from .models import ChatModel, Credential
from .selectors import (
    classroom_model_access,
    classroom_models_described,
    credential_get_for_user,
    credentials_of_classroom,
    credentials_visible_to,
    providers_the_class_shuts_out,
    providers_with_status,
)
from .services import (
    class_models_set,
    credential_create,
    credential_replace,
    credential_revoke,
    credential_test,
)


@require_GET
@login_required
def providers_page(request: HttpRequest) -> HttpResponse:
    classroom = classroom_for_student(user=request.user)
    rows = providers_with_status(user=request.user, classroom=classroom)
    models_by_provider: dict[int, list[ChatModel]] = {}
    for model in ChatModel.objects.filter(enabled=True).prefetch_related("prices").order_by("name"):
        models_by_provider.setdefault(model.provider_id, []).append(model)
    return render(
        request,
        "providers/list.html",
        {
            "rows": [(provider, source, models_by_provider.get(provider.pk, [])) for provider, source in rows],
            "may_manage_keys": user_may_manage_keys(user=request.user),
        },
    )


def _keys_render(request: HttpRequest, *, form: CredentialCreateForm, status: int = 200) -> HttpResponse:
    return render(
        request,
        "providers/keys.html",
        {
            "form": form,
            "credentials": credentials_visible_to(user=request.user),
            "replace_form": CredentialReplaceForm(),
            # A student's own key for a provider whose models their class does not allow
            # tested as working and then did nothing, unexplained.
            "shut_out": providers_the_class_shuts_out(classroom=classroom_for_student(user=request.user))
            if not request.user.may_teach
            else set(),
        },
        status=status,
    )


# The views that receive a key: its POST fields and the view's locals (and those of all it
# calls) show as stars in any error report, the DEBUG page included (webchat/reporting.py).
@sensitive_post_parameters(*KEY_FIELDS)
@sensitive_variables()
@require_http_methods(["GET", "POST"])
@login_required
def keys_page(request: HttpRequest) -> HttpResponse:
    if not user_may_manage_keys(user=request.user):
        raise PermissionDenied
    form = CredentialCreateForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            credential = credential_create(
                actor=request.user,
                provider=data["provider"],
                scope=data["scope"],
                api_key=data["api_key"],
                secret_key=data["secret_key"],
                base_url=data["base_url"],
                label=data["label"],
                classroom=data["classroom"],
            )
        except ValidationError as exc:
            form_add_service_errors(form, exc)
        else:
            messages.success(
                request, _("Key saved: %(masked)s. It will not be shown again.") % {"masked": credential.masked}
            )
            return redirect("keys")
    return _keys_render(request, form=form, status=400 if request.method == "POST" else 200)


@sensitive_post_parameters(*KEY_FIELDS)
@sensitive_variables()
@require_POST
@login_required
def key_replace(request: HttpRequest, credential_id: int) -> HttpResponse:
    credential = credential_get_for_user(user=request.user, credential_id=credential_id)
    if not user_may_manage_keys(user=request.user):
        raise PermissionDenied  # a class that switched own keys off: revoking is all that is left
    form = CredentialReplaceForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            credential_replace(
                credential=credential,
                api_key=data["api_key"],
                secret_key=data["secret_key"],
                base_url=data["base_url"] if data["base_url"] else None,
            )
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, _("Key replaced: %(masked)s.") % {"masked": credential.masked})
            return redirect("keys")
    else:
        messages.error(request, _("Enter the new key."))
    # Bad input: the page again, with the reason and a 400; the key is unchanged.
    return _keys_render(request, form=CredentialCreateForm(user=request.user), status=400)


@require_POST
@login_required
def key_revoke(request: HttpRequest, credential_id: int) -> HttpResponse:
    credential = credential_get_for_user(user=request.user, credential_id=credential_id)
    credential_revoke(credential=credential)
    messages.success(request, _("Key %(masked)s revoked. It will never be used again.") % {"masked": credential.masked})
    return redirect("keys")


@require_POST
@login_required
def key_test(request: HttpRequest, credential_id: int) -> HttpResponse:
    credential = credential_get_for_user(user=request.user, credential_id=credential_id)
    if not user_may_manage_keys(user=request.user):
        raise PermissionDenied
    result = credential_test(credential=credential)
    if result is None:
        messages.error(request, _("This key cannot be opened; the site's master key may have changed. Tell the admin."))
        return redirect("keys")
    text = {
        Credential.CheckResult.WORKS: _("The key works."),
        Credential.CheckResult.REJECTED: _("The provider rejected the key."),
        Credential.CheckResult.UNREACHABLE: _("The provider could not be reached."),
        Credential.CheckResult.RATE_LIMITED: _("The provider is rate limiting this key right now; it was accepted."),
    }.get(result, _("The provider answered with an error."))
    success = result == Credential.CheckResult.WORKS
    (messages.success if success else messages.warning)(request, f"{credential.masked}: {text}")
    return redirect("keys")


@require_http_methods(["GET", "POST"])
@login_required
def class_models(request: HttpRequest, classroom_id: int) -> HttpResponse:
    """One of the teacher's class pages: which models its students may pick, the one their
    chat page starts on, and the keys attached to the class."""
    classroom = classroom_get_for_teacher(user=request.user, classroom_id=classroom_id)
    access = classroom_model_access(classroom=classroom)
    initial = {
        "allowed_models": access.allowed_models.all() if access else [],
        "default_model": access.default_model if access else None,
        "compare_enabled": access.compare_enabled if access else True,
    }
    form = ClassModelsForm(request.POST or None, initial=initial)
    groups = classroom_models_described(classroom=classroom)
    if request.method == "POST" and form.is_valid():
        allowed = list(form.cleaned_data["allowed_models"])
        try:
            class_models_set(
                classroom=classroom,
                allowed_models=allowed,
                default_model=form.cleaned_data["default_model"],
                compare_enabled=form.cleaned_data["compare_enabled"],
            )
        except ValidationError as exc:
            form_add_service_errors(form, exc)
        else:
            messages.success(request, _("The class's models are saved."))
            keyless = [
                f"{group.provider.display_name} · {item.label}"
                for group in groups
                if not group.key_source
                for item in group.models
                if item.model in allowed
            ]
            if keyless:
                messages.warning(
                    request,
                    _("Students won't see %(models)s until a key is added for its provider.")
                    % {"models": ", ".join(keyless)},
                )
            return redirect("class-models", classroom_id=classroom.pk)
    ticked = {str(value) for value in form["allowed_models"].value() or []}
    return render(
        request,
        "providers/class_models.html",
        {
            "classroom": classroom,
            "form": form,
            "groups": [
                {
                    "provider": group.provider,
                    "key_source": group.key_source,
                    "rows": [{"item": item, "ticked": str(item.model.pk) in ticked} for item in group.models],
                }
                for group in groups
            ],
            "credentials": credentials_of_classroom(classroom=classroom),
        },
        status=400 if request.method == "POST" else 200,
    )
