"""Staff roles: the Django groups clinic staff are put in, and what each may see and do
(docs/admin.md "Roles"). Adding a user to one group is all it takes.

`ROLE_PERMISSIONS` is the one list of what each group is granted ("app_label.codename"). To
change it, edit it and add a data migration to `sales/migrations/` that runs `roles_grant` again
(as `0001_staff_roles` does): it creates missing groups and adds missing permissions.
"""

from __future__ import annotations

from typing import Any

SALES, BILLING, SUPERVISION = "Ventas", "Facturación", "Supervisión"

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
    SALES: (
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
    BILLING: (
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
    SUPERVISION: _READ_EVERYTHING + _EXPORT_EVERY_LIST,
}


def roles_grant(*, apps: Any, roles: dict[str, tuple[str, ...]] = ROLE_PERMISSIONS) -> None:
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
