from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils.decorators import method_decorator
from django.utils.translation import gettext_lazy as _
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables

from webchat.forms import form_add_service_errors

from .forms import KEY_FIELDS, KeyField
from .models import ChatModel, ClassModelAccess, Credential, ModelFallback, ModelPrice, Provider
from .sealing import SealError
from .selectors import price_cache_forget
from .services import (
    base_url_clean,
    class_models_validate,
    credential_create,
    credential_open,
    credential_replace,
    credential_revoke,
    credential_test,
    key_material_clean,
)


class ChatModelInline(admin.TabularInline):
    model = ChatModel
    extra = 0
    fields = ("name", "display_name", "context_window", "max_output_tokens", "enabled")
    show_change_link = True


@admin.register(Provider)
class ProviderAdmin(admin.ModelAdmin):
    list_display = (
        "slug",
        "name_en",
        "name_zh",
        "base_url",
        "auth_style",
        "env_key_var",
        "is_demo",
        "enabled",
        "sort_order",
    )
    list_filter = ("enabled", "auth_style", "is_demo")
    search_fields = ("slug", "name_en", "name_zh")
    inlines = [ChatModelInline]

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        price_cache_forget()  # the catalog: switched on or off, moved, at once in this process


class ModelPriceInline(admin.TabularInline):
    model = ModelPrice
    extra = 0


class ModelFallbackInline(admin.TabularInline):
    model = ModelFallback
    fk_name = "model"
    extra = 0
    autocomplete_fields = ("fallback",)
    raw_id_fields = ("credential",)


@admin.register(ChatModel)
class ChatModelAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "provider",
        "display_name",
        "context_window",
        "max_output_tokens",
        "supports_tools",
        "thinks",
        "enabled",
    )
    list_filter = ("provider", "enabled", "supports_tools", "thinks")
    search_fields = ("name", "display_name", "description_en", "description_zh", "provider__slug")
    inlines = [ModelPriceInline, ModelFallbackInline]

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        # The model, its prices and fallbacks: at once in this process, within seconds in others.
        price_cache_forget()


@admin.register(ModelPrice)
class ModelPriceAdmin(admin.ModelAdmin):
    list_display = ("model", "input_per_million", "output_per_million", "currency", "effective_from")
    list_filter = ("currency", "model__provider")
    search_fields = ("model__name", "model__provider__slug")
    date_hierarchy = "effective_from"

    def save_model(self, request: HttpRequest, obj: ModelPrice, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        price_cache_forget()


class ClassModelAccessAdminForm(forms.ModelForm):
    class Meta:
        model = ClassModelAccess
        fields = ("classroom", "allowed_models", "default_model")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        try:  # the teachers' page's rule, so admin cannot save a default the class does not allow
            class_models_validate(
                allowed_models=list(data.get("allowed_models") or []), default_model=data.get("default_model")
            )
        except ValidationError as exc:
            form_add_service_errors(self, exc)
        return data


@admin.register(ClassModelAccess)
class ClassModelAccessAdmin(admin.ModelAdmin):
    """A class's models, beside its row in accounts (which knows nothing of models)."""

    form = ClassModelAccessAdminForm
    list_display = ("classroom", "default_model")
    search_fields = ("classroom__name",)
    autocomplete_fields = ("classroom",)
    filter_horizontal = ("allowed_models",)


class CredentialAdminForm(forms.ModelForm):
    """Keys are write-only here too: entering one seals it through the service; the stored
    value is never put back into the form."""

    api_key = KeyField(
        label=_("API key"),
        required=False,
        help_text=_("Required for a new key. On an existing key, entering one replaces it."),
    )
    secret_key = KeyField(label=_("Secret Key (ERNIE only)"), required=False)

    class Meta:
        model = Credential
        fields = ("provider", "scope", "owner", "classroom", "label", "base_url")

    @method_decorator(sensitive_variables())
    def clean(self) -> dict[str, Any]:
        data = super().clean()
        provider = data.get("provider") or getattr(self.instance, "provider", None)
        scope = data.get("scope") or self.instance.scope
        if self.instance.pk is None and not data.get("api_key"):
            self.add_error("api_key", _("Enter the key."))
        # The service refuses these too, but admin's save step cannot return a form error
        # (it said "added successfully" of a key it had not saved).
        if scope == Credential.Scope.CLASS and not (data.get("classroom") or self.instance.classroom_id):
            self.add_error("classroom", _("Choose the class this key is for."))
        if self.instance.pk is not None and self.instance.status == Credential.Status.REVOKED and data.get("api_key"):
            self.add_error("api_key", _("A revoked key cannot be replaced; add a new one."))
        # The service's own checks, run here so a mistake comes back as a form error.
        if provider is not None and scope:
            for check in (
                lambda: base_url_clean(provider=provider, base_url=data.get("base_url", ""), scope=scope),
                lambda: (
                    data.get("api_key")
                    and key_material_clean(
                        provider=provider, api_key=data["api_key"], secret_key=data.get("secret_key", "")
                    )
                ),
            ):
                try:
                    check()
                except ValidationError as exc:
                    form_add_service_errors(self, exc)
        if (
            self.instance.pk is not None
            and data.get("base_url", "") != self.instance.base_url
            and not data.get("api_key")
        ):
            self.add_error("api_key", _("A key is bound to its base URL: enter the key again to change the URL."))
        return data


@admin.register(Credential)
class CredentialAdmin(admin.ModelAdmin):
    form = CredentialAdminForm
    list_display = (
        "provider",
        "masked",
        "scope",
        "classroom",
        "owner",
        "base_url",
        "status",
        "opens",
        "last_check_result",
        "last_checked_at",
        "created_at",
    )
    list_filter = ("status", "scope", "provider")
    search_fields = ("label", "last4", "provider__slug", "classroom__name", "owner__username")
    readonly_fields = (
        "masked",
        "kek_id",
        "status",
        "last_error",
        "last_checked_at",
        "last_check_result",
        "created_at",
        "revoked_at",
    )
    raw_id_fields = ("owner", "classroom")
    actions = ["test_keys", "revoke_keys"]

    # Add and change pages receive keys: stars for them in any error report (the DEBUG page
    # included), for the POST fields and for the locals of everything below this view.
    @method_decorator(sensitive_post_parameters(*KEY_FIELDS))
    @method_decorator(sensitive_variables())
    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        return super().changeform_view(request, object_id, form_url, extra_context)

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest) -> bool:
        # A filter on the sealed key (?sealed__startswith=) would read it out a byte at a time.
        return not lookup.startswith("sealed") and super().lookup_allowed(lookup, value, request)

    def get_readonly_fields(self, request: HttpRequest, obj: Credential | None = None) -> tuple[str, ...]:
        # A key is bound to its provider and scope: those never change after it is sealed.
        return self.readonly_fields + (("provider", "scope") if obj is not None else ())

    @admin.display(description=_("key"))
    def masked(self, obj: Credential) -> str:
        return obj.masked

    @admin.display(description=_("opens with the master keys"), boolean=True)
    def opens(self, obj: Credential) -> bool:
        try:
            credential_open(credential=obj)
        except SealError:
            return False
        return True

    @method_decorator(sensitive_variables())
    def save_model(self, request: HttpRequest, obj: Credential, form: CredentialAdminForm, change: bool) -> None:
        data = form.cleaned_data
        try:
            if not change:
                created = credential_create(
                    actor=request.user,
                    provider=data["provider"],
                    scope=data["scope"],
                    api_key=data["api_key"],
                    secret_key=data.get("secret_key", ""),
                    base_url=data.get("base_url", ""),
                    label=data.get("label", ""),
                    classroom=data.get("classroom"),
                )
                # The admin goes on with `obj` (its log entry and redirect): make it the saved row.
                obj.__dict__.update({k: v for k, v in created.__dict__.items() if not k.startswith("_")})
            elif data.get("api_key"):
                credential_replace(
                    credential=obj,
                    api_key=data["api_key"],
                    secret_key=data.get("secret_key", ""),
                    base_url=data.get("base_url", ""),
                )
            else:
                obj.save(update_fields=["label", "owner", "classroom"])
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))

    @admin.action(description=_("Test the selected keys"))
    def test_keys(self, request: HttpRequest, queryset: QuerySet[Credential]) -> None:
        for credential in queryset.select_related("provider"):
            result = credential_test(credential=credential)
            said = (
                result.label
                if result is not None
                else _("This key cannot be opened; the site's master key may have changed. Tell the admin.")
            )
            messages.info(request, f"{credential}: {said}")

    @admin.action(description=_("Revoke the selected keys"))
    def revoke_keys(self, request: HttpRequest, queryset: QuerySet[Credential]) -> None:
        for credential in queryset:
            credential_revoke(credential=credential)
        messages.success(request, _("Revoked."))
