"""Admin screens: audit."""
