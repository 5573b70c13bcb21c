"""Shared by every app's views: a service's refusal shown on the form that asked for it."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_noop

# Django puts _(":") after every form label, and its own Chinese catalog leaves it ASCII.
# Listed here so this project's catalog (which wins over Django's) gives Chinese its
# full-width colon.
# Translators: the colon after a form field's label; in Chinese the full-width "：".
LABEL_COLON = gettext_noop(":")


def form_add_service_errors(form: forms.BaseForm, exc: ValidationError) -> None:
    """Put a service's ValidationError on the form: under the field it names when the form
    has that field, otherwise at the top of the form."""
    if not hasattr(exc, "error_dict"):
        form.add_error(None, exc.messages)
        return
    for field, errors in exc.message_dict.items():
        form.add_error(field if field in form.fields else None, errors)


class IdsMultipleChoiceField(forms.ModelMultipleChoiceField):
    """ModelMultipleChoiceField whose values must look like ids before they reach the
    database: Django asks `pk__in` with whatever was posted, and a 30-digit number overflows
    SQLite's integer (a 500 where a wrong choice is a form error)."""

    def _check_values(self, value):  # type: ignore[no-untyped-def]
        for pk in value:
            text = str(pk)
            if not (text.isascii() and text.isdigit() and len(text) <= 18):
                raise ValidationError(
                    self.error_messages["invalid_pk_value"], code="invalid_pk_value", params={"pk": text[:40]}
                )
        return super()._check_values(value)
