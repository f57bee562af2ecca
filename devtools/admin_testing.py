"""Helpers for the admin tests of every app: staff users with the clinic staff's permissions, a
closed opportunity with its service orders and comprobantes, the clinic day of
devtools/workspace_data.py, and the messages a response showed.
Registered as a pytest plugin by the root `conftest.py`."""

from __future__ import annotations

import contextlib
import hashlib
import importlib
from collections.abc import Iterable
from typing import Any

import pytest
from django.apps import apps as django_apps
from django.contrib.auth.models import Group, Permission
from django.contrib.messages import get_messages
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.test import Client
from django.urls import reverse

from billing.models import OpportunityServiceOrder
from devtools.testing import make_pdf
from devtools.workspace_data import Workspace, seed_workspace
from opportunities.models import ActionHistory, Attachment, Meeting, Opportunity, SvDelivery

STAFF_PERMISSIONS = (
    "opportunities.view_opportunity",
    "opportunities.change_opportunity",
    "opportunities.view_attachment",
    "opportunities.view_meeting",
    "opportunities.view_actionhistory",
    "billing.view_opportunityserviceorder",
    "billing.change_opportunityserviceorder",
    "opportunities.view_svdelivery",
    "jobs.view_commandrun",
)


def grant(user: Any, *perms: str) -> Any:
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    return user


def service_order_viewer_client(django_user_model: Any) -> Client:
    """A logged-in staff member who may view the O.S and the opportunities, and change nothing."""
    viewer = grant(
        django_user_model.objects.create_user(username="solo-ver", password="x", is_staff=True),
        "billing.view_opportunityserviceorder",
        "opportunities.view_opportunity",
    )
    client = Client()
    client.force_login(viewer)
    return client


# The data migrations that grant the roles' permissions, in order (each adds to the ones before).
ROLE_MIGRATIONS = ("sales.migrations.0001_staff_roles", "sales.migrations.0002_event_permissions")


def staff_roles_migration() -> Any:
    """`sales/migrations/0001_staff_roles.py` (its `ROLE_PERMISSIONS` and `roles_grant`), loaded
    when asked: a module name that starts with a digit cannot be imported by a statement."""
    return importlib.import_module(ROLE_MIGRATIONS[0])


def staff_role_permissions() -> dict[str, set[str]]:
    """What each role is granted after every role migration ("app_label.codename")."""
    granted: dict[str, set[str]] = {}
    for name in ROLE_MIGRATIONS:
        for role, perms in importlib.import_module(name).ROLE_PERMISSIONS.items():
            granted.setdefault(role, set()).update(perms)
    return granted


def staff_roles_restore() -> None:
    """The roles' groups again, as the migrations write them (a live-server test empties every
    table after it, the migrations' rows too)."""
    for name in ROLE_MIGRATIONS:
        migration = importlib.import_module(name)
        migration.roles_grant(django_apps, migration.ROLE_PERMISSIONS)


def role_client(user_model: Any, role: str) -> Client:
    """A logged-in staff user whose only permissions are those of the group `role` (sales/roles.py)."""
    user = user_model.objects.create_user(username=f"u-{role}", password="x", is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def staff_client(django_user_model: Any) -> Client:
    """A logged-in staff user (not a superuser) with the clinic staff's permissions."""
    staff = django_user_model.objects.create_user(username="recepcion", password="x", is_staff=True)
    grant(staff, *STAFF_PERMISSIONS)
    client = Client()
    client.force_login(staff)
    return client


def attach_pdf(opportunity: Opportunity, *, tag: str = "F001-1", service_order_id: int | None = None) -> Attachment:
    body = make_pdf(tag)
    name = default_storage.save(f"invoices/{opportunity.pk}/{tag}.pdf", ContentFile(body))
    return Attachment.objects.create(
        opportunity=opportunity,
        kind=Attachment.Kind.COMPROBANTE_SOLES,
        file=name,
        file_name=f"{tag}.pdf",
        size=len(body),
        sha256=hashlib.sha256(body).hexdigest(),
        source_url=f"http://mifact.test/api/files/{tag}.pdf",
        service_order_id=service_order_id,
    )


@pytest.fixture
def closed(make_opportunity: Any) -> Opportunity:
    """A *Cierre ganado* opportunity with one pending and one invoiced O.S, a comprobante, a
    meeting and history."""
    opportunity = make_opportunity(
        name="Venta dermatología",
        stage="Cierre ganado",
        c_facturacion_sub_estado="orden_servicio_pendiente_factura",
        c_clinic_history="HC-778899",
        c_patientsname="Rosa",
        reservation_id=31,
    )
    OpportunityServiceOrder.objects.create(opportunity=opportunity, service_order_id=456)
    OpportunityServiceOrder.objects.create(
        opportunity=opportunity, service_order_id=455, facturado=True, invoice_result_head_id=70
    )
    attach_pdf(opportunity, tag="F001-455", service_order_id=455)
    Meeting.objects.create(opportunity=opportunity, name="Cita: Rosa (Dermatología)", reservation_id=31)
    ActionHistory.objects.create(
        opportunity=opportunity, action="service_orders_registered", data={"serviceOrderIds": [456]}
    )
    return opportunity


@pytest.fixture
def workspace(db: None) -> Workspace:
    """The clinic day of devtools/workspace_data.py, around now."""
    return seed_workspace()


def message_texts(response: Any) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def admin_action(
    client: Client, changelist: str, action: str, pks: Iterable[Any], *, on_commit: Any = None
) -> list[str]:
    """Run the admin action `action` on the rows `pks` of the list `changelist` ("app_model") and
    return the messages it left; `on_commit` (pytest-django's `django_capture_on_commit_callbacks`)
    runs the work the action leaves for after its commit. Fails unless the answer is the redirect
    back to the list."""
    with on_commit(execute=True) if on_commit else contextlib.nullcontext():
        response = client.post(
            reverse(f"admin:{changelist}_changelist"), {"action": action, "_selected_action": list(pks)}
        )
    if response.status_code != 302:
        raise AssertionError(f"the action answered {response.status_code}, not the redirect back to the list")
    return message_texts(response)


def sv_delivery(opportunity: Opportunity, **fields: Any) -> Any:
    fields.setdefault("reservation_id", 98765)
    fields.setdefault("clinic_history", "HC-000123")
    return SvDelivery.objects.create(opportunity=opportunity, **fields)
