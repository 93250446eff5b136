"""The collections admin: policies and teams, cases and their work (contacts, promises, notices,
restructurings, legal referrals), scan runs and the outbox. One module per area."""

from debt_collections.admin import cases, contacts, notices, referrals, restructuring  # noqa: F401
