from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from webchat.bounds import SANE_MOMENTS

MAX_ROSTER_BYTES = 256 * 1024


class ClassCreateForm(forms.Form):
    name = forms.CharField(label=_("Class name"), max_length=150)


class ClassSettingsForm(forms.Form):
    name = forms.CharField(label=_("Class name"), max_length=150)
    system_prompt = forms.CharField(
        label=_("Class instructions"),
        required=False,
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_("Sent first in every conversation; students see them."),
    )
    max_reply_tokens = forms.IntegerField(
        label=_("Max reply length (tokens)"),
        required=False,
        min_value=16,
        max_value=100_000,
        help_text=_(
            "Empty: each model's own limit. A reasoning model's thinking counts in it too, so a low limit "
            "cuts its replies short."
        ),
    )
    teacher_can_read = forms.BooleanField(
        label=_("Teachers may read students' conversations (read-only, recorded)"), required=False
    )
    allow_student_keys = forms.BooleanField(
        label=_("Students may use their own provider keys"),
        required=False,
        help_text=_(
            "Keys a student gets from a provider (OpenAI, DeepSeek...) to chat here at their own cost. Not the "
            "class's API access (webchat keys for the /v1 API): that is on the API page."
        ),
    )


class CoTeacherForm(forms.Form):
    username = forms.CharField(label=_("Teacher's username"), max_length=150)


class JoinCodeForm(forms.Form):
    expires_at = forms.DateTimeField(
        label=_("Expires (optional)"),
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        validators=SANE_MOMENTS,
    )


class RosterImportForm(forms.Form):
    file = forms.FileField(
        label=_("Roster CSV"),
        help_text=_(
            "Columns: username, display name, password (optional; generated when empty). A first row of column "
            "titles (username, name, password; 学号, 姓名, 密码...) is skipped."
        ),
    )

    def clean_file(self) -> str:
        upload = self.cleaned_data["file"]
        if upload.size > MAX_ROSTER_BYTES:
            raise forms.ValidationError(_("The file is too large (at most 256 KB)."))
        raw = upload.read()
        for encoding in ("utf-8-sig", "gb18030"):  # Excel in China often saves GB18030
            try:
                return raw.decode(encoding)
            except UnicodeDecodeError:
                continue
        raise forms.ValidationError(_("Save the file as CSV (UTF-8)."))


class RegisterForm(forms.Form):
    join_code = forms.CharField(label=_("Join code"), max_length=16)
    username = forms.CharField(label=_("Username"), max_length=150)
    display_name = forms.CharField(label=_("Your name"), max_length=150, required=False)
    password = forms.CharField(label=_("Password"), widget=forms.PasswordInput)
    password_again = forms.CharField(label=_("Password again"), widget=forms.PasswordInput)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("password") and data.get("password") != data.get("password_again"):
            self.add_error("password_again", _("The two passwords differ."))
        return data
