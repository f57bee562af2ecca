"""The staff roles and the signed events (docs/admin.md "Roles", "Events"): Supervisión reads the
events, their receivers and their deliveries; Facturación reads the events and deliveries and may
retry a delivery (the change permission); Ventas nothing. Adding or editing a receiver (its URL
and secret) stays with superusers.

A copy of `0001_staff_roles.roles_grant` (migrations carry their own code): it creates missing
groups and adds missing permissions, never takes anything away."""

from django.apps import apps as installed_apps
from django.contrib.auth.management import create_permissions
from django.db import migrations

ROLE_PERMISSIONS: dict[str, tuple[str, ...]] = {
    "Facturación": ("jobs.view_event", "jobs.view_webhookdelivery", "jobs.change_webhookdelivery"),
    "Supervisión": ("jobs.view_event", "jobs.view_webhookdelivery", "jobs.view_webhookendpoint"),
}


def roles_grant(apps, roles):
    """Create the missing groups of `roles` and add their missing permissions (nothing is taken
    away). An unknown permission is an error: a typo must not leave a role without what it needs."""
    group_model = apps.get_model("auth", "Group")
    permission_model = apps.get_model("auth", "Permission")
    for name, perms in roles.items():
        group, _ = group_model.objects.get_or_create(name=name)
        wanted = [perm.split(".", 1) for perm in perms]
        found = list(
            permission_model.objects.filter(
                content_type__app_label__in={app for app, _ in wanted}, codename__in={code for _, code in wanted}
            ).select_related("content_type")
        )
        by_name = {f"{row.content_type.app_label}.{row.codename}": row for row in found}
        missing = sorted(set(perms) - set(by_name))
        if missing:
            raise LookupError(f"Permisos inexistentes para el grupo {name}: {', '.join(missing)}")
        group.permissions.add(*(by_name[perm] for perm in perms))


def event_permissions_grant(apps, schema_editor):
    # Permissions are written after the last migration (post_migrate): create them first.
    for app_config in installed_apps.get_app_configs():
        create_permissions(app_config, verbosity=0, apps=apps, using=schema_editor.connection.alias)
    roles_grant(apps, ROLE_PERMISSIONS)


class Migration(migrations.Migration):
    dependencies = [
        ("sales", "0001_staff_roles"),
        ("jobs", "0002_events"),
    ]

    operations = [migrations.RunPython(event_permissions_grant, migrations.RunPython.noop)]
