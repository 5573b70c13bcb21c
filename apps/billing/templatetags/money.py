"""`{% load money %}{{ amount|money }}`: an amount as plain digits, no trailing zeros and never
in exponent form (0.000544, not 0.00054400 or 5.44E-4). Locale-independent, like the ledger."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django import template

register = template.Library()


@register.filter
def money(value: object) -> str:
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return ""
    text = f"{amount.normalize():f}"
    return text if "." not in text else text.rstrip("0").rstrip(".") or "0"
