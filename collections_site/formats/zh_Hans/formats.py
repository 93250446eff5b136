"""Simplified Chinese formats: Django's, except amounts, which the back office groups by thousands with
a comma (¥12,000.00), as Chinese banks and financial statements print them (Django's default for
zh_Hans prints 12000.00)."""

from django.conf.locale.zh_Hans.formats import *  # noqa: F403

THOUSAND_SEPARATOR = ","
NUMBER_GROUPING = 3
