"""Forms for entering keys, and for the models a class may use. A key field is
write-only: it is never rendered back."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from apps.accounts.models import Classroom, User
from apps.accounts.selectors import classrooms_for_teacher
from webchat.forms import IdsMultipleChoiceField

from .models import ChatModel, Credential, Provider
from .selectors import chat_models_enabled

# The POST fields that carry a key, for sensitive_post_parameters on every view receiving them.
KEY_FIELDS = ("api_key", "secret_key")


class KeyField(forms.CharField):
    def __init__(self, **kwargs: object) -> None:
        super().__init__(
            widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off", "spellcheck": "false"}),
            strip=True,
            max_length=512,
            **kwargs,
        )


class CredentialCreateForm(forms.Form):
    provider = forms.ModelChoiceField(queryset=Provider.objects.none(), label=_("Provider"))
    scope = forms.ChoiceField(label=_("Used by"))
    classroom = forms.ModelChoiceField(queryset=Classroom.objects.none(), required=False, label=_("Class"))
    label = forms.CharField(max_length=100, required=False, label=_("Label"))
    base_url = forms.CharField(
        max_length=500,
        required=False,
        label=_("Base URL"),
        help_text=_("Leave empty to use the provider's own address."),
    )
    api_key = KeyField(label=_("API key"))
    secret_key = KeyField(required=False, label=_("Secret Key (ERNIE only)"))

    def __init__(self, *args: object, user: User, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fields["provider"].queryset = Provider.objects.filter(enabled=True).exclude(
            auth_style=Provider.AuthStyle.NONE
        )
        choices = [(Credential.Scope.USER, _("Me (personal key)"))]
        if user.may_teach:
            choices.append((Credential.Scope.CLASS, _("A class I teach (students never see the key)")))
        if user.is_superuser:
            choices.append((Credential.Scope.SITE, _("The whole site")))
        self.fields["scope"].choices = choices
        self.fields["classroom"].queryset = classrooms_for_teacher(user=user)


class CredentialReplaceForm(forms.Form):
    api_key = KeyField(label=_("New API key"))
    secret_key = KeyField(required=False, label=_("New Secret Key (ERNIE only)"))
    base_url = forms.CharField(
        max_length=500,
        required=False,
        label=_("Base URL"),
        help_text=_("A key is bound to its address: changing it needs the key again."),
    )


class ClassModelsForm(forms.Form):
    allowed_models = IdsMultipleChoiceField(
        label=_("Allowed models"),
        queryset=ChatModel.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("None ticked: every enabled model."),
    )
    default_model = forms.ModelChoiceField(label=_("Default model"), queryset=ChatModel.objects.none(), required=False)
    compare_enabled = forms.BooleanField(
        label=_("Students may compare models side by side"),
        required=False,
        help_text=_("One question to several models at once; each answer is billed as its own reply."),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        models = chat_models_enabled()
        for name in ("allowed_models", "default_model"):
            self.fields[name].queryset = models
            self.fields[name].label_from_instance = lambda model: f"{model.provider.display_name} · {model.label}"
