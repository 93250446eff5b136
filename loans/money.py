"""Money arithmetic: the one place where amounts are quantised.

Every amount in the book is a ``Decimal`` in its currency's minor unit, rounded
``ROUND_HALF_UP``. Nothing else in the code base calls ``Decimal.quantize`` on money.
No Django in this module, so the domain maths that uses it stays testable without a database.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

ZERO = Decimal("0.00")

# ISO 4217 minor units for the currencies the product supports. The database stores two decimal
# places for every amount, so a currency with more minor digits cannot be booked.
MINOR_UNITS: dict[str, int] = {
    "CNY": 2,
    "USD": 2,
    "GBP": 2,
    "EUR": 2,
    "HKD": 2,
    "JPY": 0,
}

SUPPORTED_CURRENCIES = tuple(sorted(MINOR_UNITS))


class UnknownCurrency(ValueError):
    pass


def minor_unit(currency: str) -> Decimal:
    """The smallest amount of ``currency``: Decimal('0.01') for CNY, Decimal('1') for JPY."""
    try:
        digits = MINOR_UNITS[currency]
    except KeyError:
        raise UnknownCurrency(f"unsupported currency {currency!r}") from None
    return Decimal(1).scaleb(-digits)


def quantize(amount: Decimal | int | str, currency: str = "CNY") -> Decimal:
    """Round ``amount`` half-up to ``currency``'s minor unit (the only rounding of money)."""
    return Decimal(amount).quantize(minor_unit(currency), rounding=ROUND_HALF_UP)


def split_evenly(total: Decimal, parts: int, currency: str = "CNY") -> list[Decimal]:
    """Split ``total`` into ``parts`` amounts that differ by at most one minor unit and sum exactly.

    Largest-remainder style: the first ``remainder`` parts get one extra minor unit.
    """
    if parts <= 0:
        raise ValueError("parts must be positive")
    unit = minor_unit(currency)
    units_total = int(quantize(total, currency) / unit)
    base, remainder = divmod(units_total, parts)
    return [(base + (1 if i < remainder else 0)) * unit for i in range(parts)]
