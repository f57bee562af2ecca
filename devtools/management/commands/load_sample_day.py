"""`manage.py load_sample_day` (`make sample-day`): a clinic day of sample data in the development
database, around now (devtools/workspace_data.py: sales waiting for an invoice, O.S with and
without errors, closed sales over several weeks, SV deliveries, run records), plus the users to
look at it: the demo superuser and one user per role. Refused unless DEBUG is on.

Run again, it replaces the sample sales it wrote before (same ids) with a fresh day; nothing else
in the database is touched. The `devtools` app (where this command lives) is installed only with
DEBUG (crm/settings.py)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from devtools.workspace_data import SAMPLE_OPPORTUNITY_IDS, seed_workspace
from opportunities.models import Opportunity


class Command(BaseCommand):
    help = "Carga un día de datos de ejemplo de la clínica y los usuarios de prueba. Solo con DEBUG."

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG:
            raise CommandError("load_sample_day solo funciona con DEBUG=true (escribe datos de ejemplo)")
        with transaction.atomic():
            replaced, _ = Opportunity.objects.filter(id__in=SAMPLE_OPPORTUNITY_IDS).delete()
            space = seed_workspace()
        sales = len(SAMPLE_OPPORTUNITY_IDS)
        self.stdout.write(
            f"Día de ejemplo cargado: {sales} oportunidades, {len(space.orders)} O.S"
            + (" (reemplazó el anterior)" if replaced else "")
        )
        call_command("create_demo_user", stdout=self.stdout)
        call_command("create_role_users", stdout=self.stdout)
        self.stdout.write("Entre a /admin/ con cualquiera de esos usuarios.")
