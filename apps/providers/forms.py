"""Forms for entering keys. A key field is write-only: it is never rendered back."""
from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from apps.accounts.models import Classroom, User

from .models import Credential, Provider

# The POST fields that carry a key, for sensitive_post_parameters on every view receiving them.
KEY_FIELDS = ("api_key", "secret_key")


class KeyField(forms.CharField):
    def __init__(self, **kwargs: object) -> None:
        super().__init__(
            widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off", "spellcheck": "false"}),
            strip=True, max_length=512, **kwargs,
        )


class CredentialCreateForm(forms.Form):
    provider = forms.ModelChoiceField(queryset=Provider.objects.none(), label=_("Provider"))
    scope = forms.ChoiceField(label=_("Used by"))
    classroom = forms.ModelChoiceField(queryset=Classroom.objects.none(), required=False, label=_("Class"))
    label = forms.CharField(max_length=100, required=False, label=_("Label"))
    base_url = forms.CharField(max_length=500, required=False, label=_("Base URL"),
                               help_text=_("Leave empty to use the provider's own address."))
    api_key = KeyField(label=_("API key"))
    secret_key = KeyField(required=False, label=_("Secret Key (ERNIE only)"))

    def __init__(self, *args: object, user: User, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fields["provider"].queryset = Provider.objects.filter(enabled=True).exclude(
            auth_style=Provider.AuthStyle.NONE)
        choices = [(Credential.Scope.USER, _("Me (personal key)"))]
        if user.role != User.Role.STUDENT or user.is_superuser:
            choices.append((Credential.Scope.CLASS, _("A class I teach (students never see the key)")))
        if user.is_superuser:
            choices.append((Credential.Scope.SITE, _("The whole site")))
        self.fields["scope"].choices = choices
        self.fields["classroom"].queryset = (
            Classroom.objects.all() if user.is_superuser else Classroom.objects.filter(teachers=user)
        )


class CredentialReplaceForm(forms.Form):
    api_key = KeyField(label=_("New API key"))
    secret_key = KeyField(required=False, label=_("New Secret Key (ERNIE only)"))
    base_url = forms.CharField(max_length=500, required=False, label=_("Base URL"),
                               help_text=_("A key is bound to its address: changing it needs the key again."))
