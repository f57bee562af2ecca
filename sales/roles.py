"""Staff roles: the names of the Django groups clinic staff are put in (docs/admin.md "Roles").
The groups and what each is granted are written by the data migration
`sales/migrations/0001_staff_roles.py` (its `ROLE_PERMISSIONS`); adding a user to one group is
all it takes."""

from __future__ import annotations

SALES, BILLING, SUPERVISION = "Ventas", "Facturación", "Supervisión"
ROLES = (SALES, BILLING, SUPERVISION)
