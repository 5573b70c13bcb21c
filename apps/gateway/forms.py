"""Forms for the gateway's pages: a new personal key, a class's API switch."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

MAX_EXPIRY_DAYS = 365


class ApiKeyCreateForm(forms.Form):
    name = forms.CharField(
        label=_("Key name"),
        max_length=100,
        help_text=_("To tell your keys apart, e.g. “laptop” or “homework project”."),
        error_messages={"required": _("Give the key a name.")},
    )
    expires_in_days = forms.IntegerField(
        label=_("Expires after (days)"),
        required=False,
        min_value=1,
        max_value=MAX_EXPIRY_DAYS,
        help_text=_("Leave empty for a key that works until you revoke it."),
    )


class ClassApiAccessForm(forms.Form):
    # Posted by the page's two buttons, never typed: the values need no labels.
    enabled = forms.TypedChoiceField(choices=[("on", "on"), ("off", "off")], coerce=lambda value: value == "on")
