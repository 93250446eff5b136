"""The compliance rights of the collector, supervisor and compliance officer groups."""

from django.db import migrations

GROUP_PERMISSIONS = {
    "collector": (
        "view_jurisdictionprofile", "view_contactrule", "view_borrowerflag", "add_borrowerflag",
        "view_contactattempt", "add_channeloptout", "view_channeloptout",
    ),
    "supervisor": (
        "view_jurisdictionprofile", "view_contactrule", "view_borrowerflag", "add_borrowerflag",
        "change_borrowerflag", "view_contactattempt", "add_channeloptout", "view_channeloptout",
        "override_contact_rules", "view_contactoverride",
    ),
    "compliance_officer": (
        "view_jurisdictionprofile", "change_jurisdictionprofile", "view_contactrule", "add_contactrule",
        "change_contactrule", "view_borrowerflag", "add_borrowerflag", "change_borrowerflag",
        "view_contactattempt", "view_channeloptout", "add_channeloptout", "view_contactoverride",
        "view_lexiconterm", "add_lexiconterm", "change_lexiconterm", "view_screeningflag",
        "change_screeningflag", "review_screening_flags", "view_auditevent", "reveal_pii",
        "export_personal_data",
    ),
}  # fmt: skip


def forwards(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    app_config = apps.get_app_config("compliance")
    app_config.models_module = True  # the migration state's stub has none; create_permissions asks
    create_permissions(app_config, verbosity=0, apps=apps)
    app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for group_name, codenames in GROUP_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=group_name)
        group.permissions.add(
            *Permission.objects.filter(content_type__app_label="compliance", codename__in=codenames)
        )


class Migration(migrations.Migration):
    dependencies = [
        ("compliance", "0004_audit_append_only"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
