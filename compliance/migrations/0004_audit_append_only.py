"""Placeholder, filled in by its owner."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("compliance", "0003_seed_lexicons")]

    operations = []
