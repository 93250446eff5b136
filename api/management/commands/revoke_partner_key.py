"""manage.py revoke_partner_key PREFIX: the key stops working at once."""

from django.core.management.base import BaseCommand, CommandError

from api.keys import partner_key_revoke
from api.models import PartnerKey


class Command(BaseCommand):
    help = "Revoke a partner's API key by its prefix (the characters after ck_)."

    def add_arguments(self, parser):
        parser.add_argument("prefix")

    def handle(self, *args, prefix, **options):
        key = PartnerKey.objects.filter(prefix=prefix.removeprefix("ck_").split("_")[0]).first()
        if key is None:
            raise CommandError(f"No key with prefix {prefix!r}.")
        if key.revoked_at is not None:
            raise CommandError(f"Key {key.prefix} was revoked already, at {key.revoked_at:%Y-%m-%d %H:%M}.")
        partner_key_revoke(key=key, revoked_by="manage.py")
        self.stdout.write(f"Revoked key {key.prefix} of {key.partner.code}.")
