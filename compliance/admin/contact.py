"""Admin screens: contact."""
