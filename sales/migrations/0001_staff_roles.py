"""The staff roles (groups Ventas, Facturación, Supervisión) with the permissions of
`sales.roles.ROLE_PERMISSIONS` (docs/admin.md "Roles")."""

from django.apps import apps as installed_apps
from django.contrib.auth.management import create_permissions
from django.db import migrations

from sales.roles import roles_grant


def staff_roles_create(apps, schema_editor):
    # Permissions are written after the last migration (post_migrate): on a new database they do
    # not exist yet, so they are created here first, from this migration's state of the models.
    for app_config in installed_apps.get_app_configs():
        create_permissions(app_config, verbosity=0, apps=apps, using=schema_editor.connection.alias)
    roles_grant(apps=apps)


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("axes", "0010_accessattemptexpiration"),
        ("jobs", "0001_initial"),
        ("opportunities", "0008_export_permission"),
        ("billing", "0009_export_permissions"),
    ]

    operations = [migrations.RunPython(staff_roles_create, migrations.RunPython.noop)]
