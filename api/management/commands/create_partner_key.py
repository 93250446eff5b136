"""manage.py create_partner_key PARTNER --scopes loans:write payments:write --name "lending platform"

Prints the key once; only its SHA-256 is kept."""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from api.keys import partner_key_create
from api.models import SCOPES
from loans.models import Partner


class Command(BaseCommand):
    help = "Create an API key for a partner system; the key is shown once."

    def add_arguments(self, parser):
        parser.add_argument("partner", help="The partner's code.")
        parser.add_argument(
            "--scopes", nargs="+", required=True, metavar="SCOPE", help=f"Any of: {', '.join(SCOPES)}."
        )
        parser.add_argument("--name", default="", help="Which system uses the key (default: the scopes).")

    def handle(self, *args, partner, scopes, name, **options):
        found = Partner.objects.filter(code=partner).first()
        if found is None:
            raise CommandError(f"No partner {partner!r}.")
        scopes = [s for item in scopes for s in item.split(",")]
        try:
            row, key = partner_key_create(
                partner=found, name=name or " ".join(scopes), scopes=scopes, created_by="manage.py"
            )
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from None
        self.stdout.write(key)
        self.stderr.write(
            f"Key {row.prefix} for {found.code} with scopes {', '.join(row.scopes)}:"
            " shown once, store it now."
        )
