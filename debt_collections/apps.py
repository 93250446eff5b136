from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DebtCollectionsConfig(AppConfig):
    # Not "collections": that name is the standard library's, loaded before any app.
    name = "debt_collections"
    label = "debt_collections"
    verbose_name = _("Collections")
