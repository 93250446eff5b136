"""API rights: the partner_system group (the service users partner keys act as) may do case work a
partner's dialer or platform does (log contacts, record promises, send notices, propose
restructurings) and nothing a supervisor does; staff roles may read the loan book through the API
(collectors and supervisors the records behind their cases, compliance officers everything)."""

from django.db import migrations

LOAN_BOOK_READ = ("view_borrower", "view_loan", "view_installment", "view_payment", "view_contactpoint")
CASE_READ = (
    "view_case", "view_stagetransition", "view_casehold", "view_promisetopay", "view_promiseinstalment",
    "view_casecontact", "view_notice", "view_restructuring", "view_legalreferral",
)
GROUPS = {
    "partner_system": {
        "loans": LOAN_BOOK_READ,
        # add_casehold: a contact with a dispute outcome puts the case on hold.
        "debt_collections": CASE_READ
        + ("add_casecontact", "add_promisetopay", "add_notice", "add_restructuring", "add_casehold"),
    },
    "collector": {"loans": LOAN_BOOK_READ},
    "supervisor": {"loans": LOAN_BOOK_READ},
    "senior_supervisor": {"loans": LOAN_BOOK_READ},
    "compliance_officer": {"loans": LOAN_BOOK_READ, "debt_collections": CASE_READ},
}  # fmt: skip


def forwards(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    for label in ("loans", "debt_collections"):
        app_config = apps.get_app_config(label)
        app_config.models_module = True
        create_permissions(app_config, verbosity=0, apps=apps)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, rights in GROUPS.items():
        group = Group.objects.get_or_create(name=name)[0]
        for app_label, codenames in rights.items():
            group.permissions.add(
                *Permission.objects.filter(content_type__app_label=app_label, codename__in=codenames)
            )


class Migration(migrations.Migration):
    dependencies = [
        ("api", "0001_initial"),
        ("debt_collections", "0007_notice_not_before"),
        ("compliance", "0008_audit_api_key_type"),
    ]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
