"""`manage.py create_demo_user`: a local demo user for `make run` (refused unless DEBUG is on)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser


class Command(BaseCommand):
    help = "Create (or reset) a local demo staff user and print its credentials. DEBUG only."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", default="demo")
        parser.add_argument("--password", default="demo-clinica-2026")

    def handle(self, *args: Any, username: str, password: str, **options: Any) -> None:
        if not settings.DEBUG:
            raise CommandError("create_demo_user only runs with DEBUG=true (it sets a known password)")
        user, created = get_user_model().objects.get_or_create(username=username)
        user.is_staff = True
        user.is_superuser = True
        user.set_password(password)
        user.save()
        verb = "Created" if created else "Reset"
        self.stdout.write(f"{verb} demo user: username={username} password={password}")
