"""`manage.py load_sample_day` (`make sample-day`): a clinic day of sample data in the development
database, around now (devtools/workspace_data.py: sales waiting for an invoice, O.S with and
without errors, closed sales over several weeks, SV deliveries, run records), plus the users to
look at it: the demo superuser and one user per role. Refused unless DEBUG is on. The invoiced
O.S 455 gets its comprobante: a one-page sample PDF stored like a downloaded one (the file first,
then the row that points to it), so the sale's page and the API show a PDF to open.

Run again, it replaces the sample sales it wrote before (same ids) with a fresh day; nothing else
in the database is touched. The `devtools` app (where this command lives) is installed only with
DEBUG (crm/settings.py)."""

from __future__ import annotations

import hashlib
import pathlib
import tempfile
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from billing.models import OpportunityServiceOrder
from devtools.testing import make_pdf
from devtools.workspace_data import SAMPLE_OPPORTUNITY_IDS, Workspace, seed_workspace
from opportunities.attachment_files import attachment_file_put
from opportunities.models import ActionHistory, Attachment, Opportunity

SAMPLE_COMPROBANTE_URL = "https://facturacion.example/api/files/os-455-soles.pdf"


def sample_comprobante(space: Workspace) -> Attachment:
    """O.S 455's comprobante in soles: the PDF stored durably first, then, in one transaction, its
    row, the O.S's URL and the invoiced record's attachment id (the seed writes a placeholder)."""
    body = make_pdf("F001-000455 - comprobante de ejemplo")
    sha256 = hashlib.sha256(body).hexdigest()
    with tempfile.TemporaryDirectory() as folder:
        source = pathlib.Path(folder) / "F001-000455.pdf"
        source.write_bytes(body)
        name = attachment_file_put(source=source, sha256=sha256)
    order = space.orders[455]
    with transaction.atomic():
        attachment = Attachment.objects.create(
            opportunity=order.opportunity,
            kind=Attachment.Kind.COMPROBANTE_SOLES,
            file=name,
            file_name="F001-000455.pdf",
            size=len(body),
            sha256=sha256,
            source_url=SAMPLE_COMPROBANTE_URL,
            service_order_id=455,
            invoice_result_head_id=order.invoice_result_head_id,
        )
        OpportunityServiceOrder.objects.filter(pk=order.pk).update(url_soles=SAMPLE_COMPROBANTE_URL)
        for record in ActionHistory.objects.filter(opportunity=order.opportunity, action="service_order_invoiced"):
            record.data = {**record.data, "attachmentIds": [attachment.pk], "urls": {"soles": SAMPLE_COMPROBANTE_URL}}
            record.save(update_fields=["data"])
    return attachment


class Command(BaseCommand):
    help = "Carga un día de datos de ejemplo de la clínica y los usuarios de prueba. Solo con DEBUG."

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG:
            raise CommandError("load_sample_day solo funciona con DEBUG=true (escribe datos de ejemplo)")
        with transaction.atomic():
            replaced, _ = Opportunity.objects.filter(id__in=SAMPLE_OPPORTUNITY_IDS).delete()
            space = seed_workspace()
        sample_comprobante(space)
        sales = len(SAMPLE_OPPORTUNITY_IDS)
        self.stdout.write(
            f"Día de ejemplo cargado: {sales} oportunidades, {len(space.orders)} O.S, 1 comprobante"
            + (" (reemplazó el anterior)" if replaced else "")
        )
        call_command("create_demo_user", stdout=self.stdout)
        call_command("create_role_users", stdout=self.stdout)
        self.stdout.write("Entre a /admin/ con cualquiera de esos usuarios.")
