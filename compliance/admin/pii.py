"""Admin screens: pii."""
