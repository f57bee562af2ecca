"""Staff roles (sales/roles.py, docs/admin.md "Roles"): the groups exist after migrate with
exactly their permissions, a user in one group sees that role's lists and gets the admin's 403
page for the others, and `create_role_users` makes one user per role."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from devtools.admin_testing import role_client, staff_role_permissions
from sales.management.commands.create_role_users import ROLE_USERS
from sales.roles import BILLING, ROLES, SALES, SUPERVISION

pytestmark = pytest.mark.django_db

LISTS = {
    "opportunities_opportunity": {SALES, BILLING, SUPERVISION},
    "billing_saleawaitinginvoice": {BILLING, SUPERVISION},
    "billing_opportunityserviceorder": {BILLING, SUPERVISION},
    "opportunities_attachment": {SALES, BILLING, SUPERVISION},
    "opportunities_actionhistory": {SALES, BILLING, SUPERVISION},
    "opportunities_svdelivery": {BILLING, SUPERVISION},
    "jobs_commandrun": {SUPERVISION},
    "jobs_event": {BILLING, SUPERVISION},
    "jobs_webhookdelivery": {BILLING, SUPERVISION},
    "jobs_webhookendpoint": {SUPERVISION},
    "axes_accessattempt": {SUPERVISION},
    "axes_accesslog": {SUPERVISION},
    "auth_user": set(),
}


def test_the_migration_creates_each_group_with_exactly_its_permissions() -> None:
    role_permissions = staff_role_permissions()
    assert set(role_permissions) == set(ROLES)
    for role, perms in role_permissions.items():
        granted = {f"{p.content_type.app_label}.{p.codename}" for p in Group.objects.get(name=role).permissions.all()}
        assert granted == set(perms), role
    supervision = role_permissions[SUPERVISION]
    assert all(perm.split(".")[1].startswith(("view_", "export_")) for perm in supervision)  # read-only


@pytest.mark.parametrize("role", [SALES, BILLING, SUPERVISION])
def test_a_user_in_a_group_sees_exactly_that_roles_lists(django_user_model: Any, role: str) -> None:
    client = role_client(django_user_model, role)
    start = client.get(reverse("admin:index"))
    assert start.status_code == 200
    assert "No cuenta con permiso" not in start.content.decode()
    for name, roles in LISTS.items():
        response = client.get(reverse(f"admin:{name}_changelist"))
        if role in roles:
            assert response.status_code == 200, (role, name)
        else:
            assert response.status_code == 403, (role, name)
            assert response["Content-Type"].startswith("text/html"), (role, name)
            assert "No tiene permiso para ver esta página" in response.content.decode()


def test_only_billing_checks_invoices_and_retries_sv(django_user_model: Any) -> None:
    def actions(client: Client, name: str) -> list[str]:
        form = client.get(reverse(f"admin:{name}_changelist")).context["action_form"]
        return [] if form is None else [value for value, _ in form.fields["action"].choices if value]

    billing, supervision = role_client(django_user_model, BILLING), role_client(django_user_model, SUPERVISION)
    assert "check_invoice_status_now" in actions(billing, "billing_opportunityserviceorder")
    assert "retry_now" in actions(billing, "opportunities_svdelivery")
    assert "check_invoice_status_now" not in actions(supervision, "billing_opportunityserviceorder")
    assert "retry_now" not in actions(supervision, "opportunities_svdelivery")
    assert "retry_now" in actions(billing, "jobs_webhookdelivery")
    assert "retry_now" not in actions(supervision, "jobs_webhookdelivery")


def test_create_role_users_makes_one_staff_user_per_role(settings: Any, django_user_model: Any) -> None:
    settings.DEBUG = True
    call_command("create_role_users", stdout=open("/dev/null", "w"))
    call_command("create_role_users", stdout=open("/dev/null", "w"))  # again: the same users
    for role, username in ROLE_USERS.items():
        user = django_user_model.objects.get(username=username)
        assert user.is_staff and not user.is_superuser and user.check_password("demo-clinica-2026")
        assert [group.name for group in user.groups.all()] == [role]


def test_create_role_users_refuses_without_debug(settings: Any, django_user_model: Any) -> None:
    settings.DEBUG = False
    with pytest.raises(CommandError, match="DEBUG"):
        call_command("create_role_users")
    assert not django_user_model.objects.filter(username__in=ROLE_USERS.values()).exists()
