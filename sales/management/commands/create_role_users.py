"""`manage.py create_role_users`: one local staff user per role (ventas, facturacion,
supervision), to try what each role sees (docs/admin.md "Roles"). Refused unless DEBUG is on."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError, CommandParser

from sales.roles import BILLING, ROLES, SALES, SUPERVISION

ROLE_USERS = {SALES: "ventas", BILLING: "facturacion", SUPERVISION: "supervision"}


class Command(BaseCommand):
    help = "Crea (o restablece) un usuario de prueba por rol (ventas, facturacion, supervision). Solo con DEBUG."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--password", default="demo-clinica-2026")

    def handle(self, *args: Any, password: str, **options: Any) -> None:
        if not settings.DEBUG:
            raise CommandError("create_role_users solo funciona con DEBUG=true (pone una contraseña conocida)")
        for role in ROLES:
            group = Group.objects.filter(name=role).first()
            if group is None:
                raise CommandError(f"No existe el grupo {role}: ejecute primero manage.py migrate")
            username = ROLE_USERS[role]
            user, _ = get_user_model().objects.get_or_create(username=username)
            user.is_staff, user.is_superuser, user.is_active = True, False, True
            if not user.check_password(password):  # a new hash would sign the user's sessions out
                user.set_password(password)
            user.save()
            user.groups.set([group])  # exactly one role, whatever it had before
            self.stdout.write(f"Rol {role}: usuario={username} contraseña={password}")
