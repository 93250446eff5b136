"""What every API serializer shares: unknown fields refused, amounts as two-decimal strings, records
referred to by id or by the partner's own reference."""

from __future__ import annotations

from decimal import Decimal

from django.utils.translation import gettext as _
from rest_framework import serializers


def refuse_unknown_fields(serializer, data) -> None:
    """A field the serializer does not take (a typo, a read-only one) is an error, never dropped."""
    if isinstance(data, dict):
        unknown = sorted(set(data) - {n for n, f in serializer.fields.items() if not f.read_only})
        if unknown:
            raise serializers.ValidationError({name: [_("Unknown field.")] for name in unknown})


class StrictSerializer(serializers.Serializer):
    """Refuses fields it does not know (a typo must not be silently dropped)."""

    def to_internal_value(self, data):
        refuse_unknown_fields(self, data)
        return super().to_internal_value(data)


class Money(serializers.DecimalField):
    """An amount: a string with two decimals in and out ("1200.50"); a JSON number is refused in, so no
    float ever carries money."""

    def __init__(self, **kwargs):
        kwargs.setdefault("max_digits", 18)
        kwargs.setdefault("decimal_places", 2)
        kwargs.setdefault("coerce_to_string", True)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            raise serializers.ValidationError(_('Send amounts as strings, e.g. "1200.50".'))
        return super().to_internal_value(data)


class PositiveMoney(Money):
    def __init__(self, **kwargs):
        kwargs.setdefault("min_value", Decimal("0.01"))
        super().__init__(**kwargs)


class StrictModelSerializer(serializers.ModelSerializer):
    def to_internal_value(self, data):
        refuse_unknown_fields(self, data)
        return super().to_internal_value(data)


class Rate(serializers.DecimalField):
    """A yearly rate as a fraction, sent as a string ("0.060000" is 6% a year); never negative."""

    def __init__(self, **kwargs):
        kwargs.setdefault("max_digits", 9)
        kwargs.setdefault("decimal_places", 6)
        kwargs.setdefault("min_value", Decimal("0"))
        kwargs.setdefault("coerce_to_string", True)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            raise serializers.ValidationError(_('Send rates as strings, e.g. "0.060000".'))
        return super().to_internal_value(data)


class DecisionIn(StrictSerializer):
    """A supervisor's decision on a maker-checker request (a restructuring, a legal referral)."""

    reason = serializers.CharField(max_length=300)
