"""Admin screens: screening."""
