"""The staff roles (docs/admin.md "Roles"): groups Ventas, Facturación and Supervisión with the
permissions of `ROLE_PERMISSIONS`, the one list of what each is granted ("app_label.codename").

To change a role, add a migration like this one with a dict of what to add (the same shape) and a
copy of `roles_grant`: it creates missing groups and adds missing permissions, never takes
anything away. Migrations carry their own code (docs/decisions.md "Migrations stand alone")."""

from django.apps import apps as installed_apps
from django.contrib.auth.management import create_permissions
from django.db import migrations

# What Supervisión reads: every list of the workspace, run records and admin-login records included.
_READ_EVERYTHING = (
    "opportunities.view_opportunity",
    "opportunities.view_meeting",
    "opportunities.view_actionhistory",
    "opportunities.view_attachment",
    "opportunities.view_svdelivery",
    "billing.view_opportunityserviceorder",
    "jobs.view_commandrun",
    "axes.view_accessattempt",
    "axes.view_accessfailurelog",
    "axes.view_accesslog",
)
_EXPORT_EVERY_LIST = (
    "opportunities.export_opportunity",
    "billing.export_opportunityserviceorder",
    "billing.export_saleawaitinginvoice",
)

ROLE_PERMISSIONS: dict[str, tuple[str, ...]] = {
    # Sales staff: their opportunities (and correcting customer and patient data), meetings,
    # history and the comprobantes attached to them; the opportunity list's export.
    "Ventas": (
        "opportunities.view_opportunity",
        "opportunities.change_opportunity",
        "opportunities.export_opportunity",
        "opportunities.view_meeting",
        "opportunities.view_actionhistory",
        "opportunities.view_attachment",
    ),
    # Billing clerks: the waiting list, O.S (change = "Consultar estado de facturación ahora"),
    # comprobantes, SV deliveries and their retry (change), the opportunity pages and history
    # they lead to; the waiting list's and the O.S list's exports.
    "Facturación": (
        "opportunities.view_opportunity",
        "opportunities.view_actionhistory",
        "opportunities.view_attachment",
        "opportunities.view_svdelivery",
        "opportunities.change_svdelivery",
        "billing.view_opportunityserviceorder",
        "billing.change_opportunityserviceorder",
        "billing.export_opportunityserviceorder",
        "billing.export_saleawaitinginvoice",
    ),
    # Supervisors: everything read-only, and every export.
    "Supervisión": _READ_EVERYTHING + _EXPORT_EVERY_LIST,
}


def roles_grant(apps, roles):
    """Create the missing groups of `roles` and add their missing permissions (nothing is taken
    away). `apps` is a migration's app registry. An unknown permission is an error: a typo must
    not leave a role without what it needs."""
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


def staff_roles_create(apps, schema_editor):
    # Permissions are written after the last migration (post_migrate): on a new database they do
    # not exist yet, so they are created here first, from this migration's state of the models.
    for app_config in installed_apps.get_app_configs():
        create_permissions(app_config, verbosity=0, apps=apps, using=schema_editor.connection.alias)
    roles_grant(apps, ROLE_PERMISSIONS)


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("axes", "0010_accessattemptexpiration"),
        ("jobs", "0001_initial"),
        ("opportunities", "0009_export_permission"),
        ("billing", "0011_export_permissions"),
    ]

    operations = [migrations.RunPython(staff_roles_create, migrations.RunPython.noop)]
