from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from django import forms
from django.core.validators import MaxValueValidator, MinValueValidator
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from apps.accounts.models import Classroom, User
from apps.accounts.selectors import classroom_students

from .models import MAX_MONEY_LIMIT, MAX_RPM, MAX_TOKEN_LIMIT, MAX_TPM, MONEY, Period

MAX_RANGE_DAYS = 366
DEFAULT_RANGE_DAYS = 30
# Dates a school's terms and reports fall in. Without a bound, a typed 9999-12-31 or
# 0001-01-01 overflowed Python's date range when a day was added or taken off (a 500).
SANE_DATES = [MinValueValidator(date(2000, 1, 1)), MaxValueValidator(date(2099, 12, 31))]


class QuotaPolicyForm(forms.Form):
    period = forms.ChoiceField(label=_("Period"), choices=Period.choices)
    term_start = forms.DateField(
        label=_("Term starts"), required=False, widget=forms.DateInput(attrs={"type": "date"}), validators=SANE_DATES
    )
    term_end = forms.DateField(
        label=_("Term ends"), required=False, widget=forms.DateInput(attrs={"type": "date"}), validators=SANE_DATES
    )
    student_token_limit = forms.IntegerField(
        max_value=MAX_TOKEN_LIMIT, label=_("Tokens per student"), required=False, min_value=0
    )
    student_cost_limit = forms.DecimalField(
        max_value=MAX_MONEY_LIMIT, label=_("Money per student"), required=False, min_value=0, **MONEY
    )
    class_token_pool = forms.IntegerField(
        max_value=MAX_TOKEN_LIMIT, label=_("Tokens for the whole class"), required=False, min_value=0
    )
    class_cost_pool = forms.DecimalField(
        max_value=MAX_MONEY_LIMIT, label=_("Money for the whole class"), required=False, min_value=0, **MONEY
    )
    rpm = forms.IntegerField(max_value=MAX_RPM, label=_("Requests per minute per student"), required=False, min_value=1)
    tpm = forms.IntegerField(max_value=MAX_TPM, label=_("Tokens per minute per student"), required=False, min_value=1)


class StudentOverrideForm(forms.Form):
    student = forms.ModelChoiceField(label=_("Student"), queryset=User.objects.none())
    token_limit = forms.IntegerField(max_value=MAX_TOKEN_LIMIT, label=_("Tokens"), required=False, min_value=0)
    cost_limit = forms.DecimalField(max_value=MAX_MONEY_LIMIT, label=_("Money"), required=False, min_value=0, **MONEY)

    def __init__(self, *args: Any, classroom: Classroom, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["student"].queryset = classroom_students(classroom=classroom).order_by("username")


class DateRangeForm(forms.Form):
    start = forms.DateField(
        label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"}), validators=SANE_DATES
    )
    end = forms.DateField(
        label=_("To"), required=False, widget=forms.DateInput(attrs={"type": "date"}), validators=SANE_DATES
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        today = timezone.localdate()
        data["end"] = data.get("end") or today
        data["start"] = data.get("start") or data["end"] - timedelta(days=DEFAULT_RANGE_DAYS - 1)
        if data["start"] > data["end"]:
            raise forms.ValidationError(_("The start date is after the end date."))
        if (data["end"] - data["start"]).days > MAX_RANGE_DAYS:
            raise forms.ValidationError(_("Choose at most a year."))
        return data

    @staticmethod
    def bounds(start: date, end: date) -> tuple[Any, Any]:
        """Local midnight at the start, local midnight after the end."""
        from datetime import datetime, time

        tz = timezone.get_current_timezone()
        return (
            datetime.combine(start, time.min, tzinfo=tz),
            datetime.combine(end + timedelta(days=1), time.min, tzinfo=tz),
        )
