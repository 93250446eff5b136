"""Who may ask for and decide contact-rule override requests: collectors ask, supervisors (who may
override) decide, compliance officers read them."""

from django.db import migrations

GROUP_PERMISSIONS = {
    "collector": ("add_overriderequest", "view_overriderequest"),
    "supervisor": ("add_overriderequest", "view_overriderequest", "change_overriderequest"),
    "senior_supervisor": ("add_overriderequest", "view_overriderequest", "change_overriderequest"),
    "compliance_officer": ("view_overriderequest",),
}


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
    dependencies = [("compliance", "0009_override_requests")]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
