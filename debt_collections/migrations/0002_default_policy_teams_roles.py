"""The default collection policy (DESIGN.md section 5), one team queue per stage, and the rights of
the collector and supervisor groups."""

from django.db import migrations

TEAMS = (
    ("early-warning", "Early warning", "early_warning"),
    ("call-team", "Call team", "follow_up_call"),
    ("notice-team", "Notice team", "notice"),
    ("restructuring-desk", "Restructuring desk", "restructuring"),
    ("legal-team", "Legal team", "legal_referral"),
)

GROUP_PERMISSIONS = {
    "collector": (
        "view_case", "view_stagetransition", "view_casehold", "add_casehold", "view_promisetopay",
        "add_promisetopay", "view_collectionpolicy", "view_team",
    ),
    "supervisor": (
        "view_case", "view_stagetransition", "view_casehold", "add_casehold", "change_casehold",
        "view_promisetopay", "add_promisetopay", "view_collectionpolicy", "view_team", "view_teammember",
        "add_teammember", "change_teammember", "reassign_case", "approve_referral", "run_scan",
        "view_scanrun", "view_scanchunk", "view_outboxevent",
    ),
}  # fmt: skip


def forwards(apps, schema_editor):
    CollectionPolicy = apps.get_model("debt_collections", "CollectionPolicy")
    Team = apps.get_model("debt_collections", "Team")
    CollectionPolicy.objects.get_or_create(
        product=None,
        defaults={
            "name": "Default",
            "early_warning_dpd": 1,
            "follow_up_call_dpd": 8,
            "notice_dpd": 31,
            "restructuring_dpd": 61,
            "legal_referral_dpd": 91,
            "pre_due_reminder_days": 3,
        },
    )
    for code, name, stage in TEAMS:
        Team.objects.get_or_create(code=code, defaults={"name": name, "stage": stage})

    # Permissions are normally created after the whole migrate; create this app's now to grant them.
    from django.contrib.auth.management import create_permissions

    app_config = apps.get_app_config("debt_collections")
    app_config.models_module = True  # the migration state's stub has none; create_permissions asks
    create_permissions(app_config, verbosity=0, apps=apps)
    app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for group_name, codenames in GROUP_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=group_name)
        group.permissions.add(
            *Permission.objects.filter(content_type__app_label="debt_collections", codename__in=codenames)
        )


class Migration(migrations.Migration):
    dependencies = [
        ("debt_collections", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
