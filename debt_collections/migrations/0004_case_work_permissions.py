"""Rights for case work: collectors log contacts, record promises, send notices, propose
restructurings and request legal referrals; supervisors also approve restructurings and referrals and
download evidence packs; senior supervisors approve waivers above the policy's supervisor limit.
Existing promises get their single instalment (promises became instalment plans)."""

from django.db import migrations

COLLECTOR = (
    "view_casecontact", "add_casecontact", "view_promiseinstalment", "view_notice", "add_notice",
    "view_noticetemplate", "view_restructuring", "add_restructuring", "view_legalreferral",
    "add_legalreferral",
)
SUPERVISOR = COLLECTOR + (
    "approve_restructuring", "change_legalreferral", "download_evidence_pack",
)
GROUP_PERMISSIONS = {
    "collector": COLLECTOR,
    "supervisor": SUPERVISOR,
    "senior_supervisor": SUPERVISOR + ("approve_large_waiver",),
}  # fmt: skip


def forwards(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    app_config = apps.get_app_config("debt_collections")
    app_config.models_module = True  # the migration state's stub has none; create_permissions asks
    create_permissions(app_config, verbosity=0, apps=apps)
    app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    supervisor_rights = list(Group.objects.get_or_create(name="supervisor")[0].permissions.all())
    for group_name, codenames in GROUP_PERMISSIONS.items():
        group, created = Group.objects.get_or_create(name=group_name)
        if group_name == "senior_supervisor" and created:
            group.permissions.add(*supervisor_rights)  # everything a supervisor may do, and more
        group.permissions.add(
            *Permission.objects.filter(content_type__app_label="debt_collections", codename__in=codenames)
        )

    PromiseToPay = apps.get_model("debt_collections", "PromiseToPay")
    PromiseInstalment = apps.get_model("debt_collections", "PromiseInstalment")
    PromiseInstalment.objects.bulk_create(
        PromiseInstalment(promise_id=pk, number=1, amount=amount, due_date=due)
        for pk, amount, due in PromiseToPay.objects.filter(instalments__isnull=True).values_list(
            "pk", "amount", "promised_date"
        )
    )


class Migration(migrations.Migration):
    # After compliance gives the supervisor group its rights, which senior supervisors inherit.
    dependencies = [("debt_collections", "0003_case_work"), ("compliance", "0005_group_permissions")]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
