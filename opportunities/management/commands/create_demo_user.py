"""`manage.py create_demo_user`: a local demo user for `make run` (refused unless DEBUG is on)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser


class Command(BaseCommand):
    help = "Crea (o restablece) un usuario de demostración local e imprime sus credenciales. Solo con DEBUG."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", default="demo")
        parser.add_argument("--password", default="demo-clinica-2026")

    def handle(self, *args: Any, username: str, password: str, **options: Any) -> None:
        if not settings.DEBUG:
            raise CommandError("create_demo_user solo funciona con DEBUG=true (pone una contraseña conocida)")
        user, created = get_user_model().objects.get_or_create(username=username)
        user.is_staff = True
        user.is_superuser = True
        if not user.check_password(password):  # a new hash would sign the admin's sessions out
            user.set_password(password)
        user.save()
        verb = "Creado" if created else "Restablecido"
        self.stdout.write(f"{verb} el usuario de demostración: usuario={username} contraseña={password}")
