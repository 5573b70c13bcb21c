"""The ledger balance warning on admin pages (templates/admin/index.html):
`{% load ledger_balance %}{% ledger_balance_banner %}`."""

from __future__ import annotations

from django import template
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from apps.billing.models import BalanceCheck
from apps.billing.selectors import balance_check_latest

register = template.Library()


def balance_warning(check: BalanceCheck | None) -> str:
    """What an admin is told when the last check found differences ("" when it found none)."""
    if check is None or not check.difference_count:
        return ""
    return ngettext(
        "The ledger balance check of %(when)s found %(count)d difference between the ledger and the usage "
        "counters or rollups.",
        "The ledger balance check of %(when)s found %(count)d differences between the ledger and the usage "
        "counters or rollups.",
        check.difference_count,
    ) % {"when": f"{timezone.localtime(check.checked_at):%Y-%m-%d %H:%M}", "count": check.difference_count}


@register.simple_tag
def ledger_balance_banner() -> SafeString | str:
    warning = balance_warning(balance_check_latest())
    if not warning:
        return ""
    return format_html(
        '<ul class="messagelist"><li class="warning">{} <a href="{}">{}</a></li></ul>',
        warning,
        reverse("admin:billing_balancecheck_changelist"),
        _("See the checks"),
    )
