"""Money and figures on back-office pages, formatted for the active language (grouping, decimals)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django import template
from django.utils import formats

register = template.Library()

SYMBOLS = {"CNY": "¥", "USD": "$", "GBP": "£", "EUR": "€", "HKD": "HK$"}


@register.filter
def money(amount, currency: str = "") -> str:
    """``1234.5|money:"CNY"`` -> ``¥1,234.50`` (grouping and decimal mark per locale); an empty value
    stays empty. The symbol goes before the number, a minus before the symbol."""
    if amount is None or amount == "":
        return ""
    try:
        value = Decimal(str(amount))
    except (InvalidOperation, ValueError):
        return str(amount)
    number = formats.number_format(abs(value), 2, use_l10n=True, force_grouping=True)
    symbol = SYMBOLS.get(currency, f"{currency} " if currency else "")
    return f"{'-' if value < 0 else ''}{symbol}{number}"


@register.filter
def figure(value, digits: int = 0) -> str:
    """A count or ratio with the locale's grouping: ``12345|figure`` -> ``12,345``."""
    if value is None or value == "":
        return ""
    return formats.number_format(value, int(digits), use_l10n=True, force_grouping=True)


@register.filter
def percent(value, digits: int = 1) -> str:
    """``0.4567|percent`` -> ``45.7%``; empty for no value (a rate of nothing is not 0%)."""
    if value is None or value == "":
        return "–"
    return formats.number_format(Decimal(str(value)) * 100, int(digits), use_l10n=True) + "%"
