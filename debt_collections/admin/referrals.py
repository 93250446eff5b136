"""Placeholder: filled in by the case-work change."""
