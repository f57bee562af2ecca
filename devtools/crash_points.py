"""Kill this process with SIGKILL at the K-th executed line of the project's own code while it
closes a sale, then check what it left: how the crash-safety tests prove that a process killed
between any two statements leaves nothing that a retry cannot complete (docs/development.md
"Crash points").

    python -m devtools.crash_points run poll N K   # O.S N invoiced; poll_invoices, killed at line K
    python -m devtools.crash_points run put N K    # a direct-invoice PUT of sale N, killed at line K
    python -m devtools.crash_points retry poll|put FIRST LAST
    python -m devtools.crash_points check

K = 0 runs to the end and prints, as JSON, every line event it counted (`file:line`). `retry`
does what the front-end and cron would do next: the same PUTs of sales FIRST..LAST again, then one
whole poll_invoices run. `check`
prints the invariants as JSON: attachment rows whose file is missing or wrong, closes without
their comprobantes, duplicates, and downloads left in `INVOICE_DOWNLOAD_DIR`.

Settings come from the environment of `crm.settings_test`, plus `CRASH_MEDIA_ROOT`,
`CRASH_DOWNLOAD_DIR` and `CRASH_MIFACT_URL` (an invoice-mifact stand-in that has invoiced O.S N).
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import django
from django.conf import settings

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings_test")
django.setup()  # before the project's models are imported below

from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db.models import Count  # noqa: E402

from billing.models import OpportunityServiceOrder  # noqa: E402
from opportunities.models import ActionHistory, Attachment, Opportunity  # noqa: E402
from sales.process_update import opportunity_process_update  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TRACED = tuple(f"{ROOT / package}{os.sep}" for package in ("billing", "opportunities", "sales", "jobs", "crm"))
USERNAME = "ventas-crash"


def _setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings_test")

    django.setup()
    settings.MEDIA_ROOT = os.environ["CRASH_MEDIA_ROOT"]
    settings.INVOICE_DOWNLOAD_DIR = os.environ["CRASH_DOWNLOAD_DIR"]
    settings.URL_INVOICE_MIFACT_V3 = os.environ["CRASH_MIFACT_URL"]
    settings.INVOICE_MIFACT_USERNAME = settings.INVOICE_MIFACT_PASSWORD = "admin"


class Killer:
    """Counts line events in the project's code (every thread); SIGKILL at event `kill_at`."""

    def __init__(self, kill_at: int) -> None:
        self.kill_at = kill_at
        self.events: list[str] = []

    def _local(self, frame: FrameType, event: str, arg: Any) -> Any:
        if event == "line":
            self.events.append(f"{frame.f_code.co_filename[len(str(ROOT)) + 1 :]}:{frame.f_lineno}")
            if len(self.events) == self.kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
        return self._local

    def _global(self, frame: FrameType, event: str, arg: Any) -> Any:
        name = frame.f_code.co_filename
        if name.startswith(TRACED) and f"{os.sep}tests{os.sep}" not in name:
            return self._local
        return None

    def __enter__(self) -> Killer:
        threading.settrace(self._global)
        sys.settrace(self._global)
        return self

    def __exit__(self, *exc: object) -> None:
        sys.settrace(None)
        threading.settrace(None)


def killed_at(kill_at: int, work: Callable[[], object]) -> int:
    """Run `work` and be SIGKILLed at line event `kill_at`; with 0 (never), print the events it
    passed (the points a test samples). The exit status of a process that survived."""
    with Killer(kill_at) as killer:
        work()
    if kill_at == 0:
        print(json.dumps(killer.events))
    return 0


def _prepare(scenario: str, n: int) -> str:

    get_user_model().objects.get_or_create(username=USERNAME)
    closing = {"stage": "Cierre ganado", "c_facturacion_sub_estado": "orden_servicio_pendiente_factura"}
    opportunity = Opportunity.objects.create(
        name=f"Venta {scenario} {n}", c_clinic_history=f"HC-{n}", **(closing if scenario == "poll" else {})
    )
    if scenario == "poll":
        OpportunityServiceOrder.objects.create(opportunity=opportunity, service_order_id=n)
    return str(opportunity.pk)


def _work(scenario: str, n: int) -> None:

    if scenario == "poll" and n == 0:  # a whole poll_invoices run, as cron starts it
        with open(os.devnull, "w") as quiet:
            call_command("poll_invoices", "--workers", "1", stdout=quiet)
        return
    opportunity_id = Opportunity.objects.values_list("pk", flat=True).get(name=f"Venta {scenario} {n}")
    if scenario == "poll":
        with open(os.devnull, "w") as quiet:
            call_command("poll_invoices", "--workers", "1", "--opportunity", opportunity_id, stdout=quiet)
        return

    base = os.environ["CRASH_MIFACT_URL"]
    opportunity_process_update(
        opportunity_id=opportunity_id,
        user=get_user_model().objects.get(username=USERNAME),
        data={
            "cFacturas": {
                "comprobante_soles": f"{base}/files/factura-directa-F{n}-S.pdf",
                "comprobante_dolares": f"{base}/files/factura-directa-F{n}-D.pdf",
            }
        },
    )


def _check() -> dict[str, Any]:

    media = Path(settings.MEDIA_ROOT)
    bad_rows = []
    for attachment in Attachment.objects.all():
        path = media / (attachment.file.name or "")
        body = path.read_bytes() if path.is_file() else None
        if body is None or len(body) != attachment.size or hashlib.sha256(body).hexdigest() != attachment.sha256:
            bad_rows.append(attachment.pk)
    invoiced_without = [
        row.service_order_id
        for row in OpportunityServiceOrder.objects.filter(facturado=True)
        if not Attachment.objects.filter(opportunity_id=row.opportunity_id, service_order_id=row.service_order_id)
    ]
    direct_without = list(
        Opportunity.objects.filter(c_facturacion_sub_estado="factura_directa", service_orders__isnull=True)
        .annotate(n=Count("attachments"))
        .filter(n__lt=2)
        .values_list("name", flat=True)
    )
    repeated = list(
        ActionHistory.objects.filter(action__in=["service_order_invoiced", "opportunity_closed_won"])
        .values("opportunity_id", "action")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .values_list("opportunity_id", flat=True)
    )
    downloads = (
        sorted(p.name for p in Path(settings.INVOICE_DOWNLOAD_DIR).glob("*"))
        if Path(settings.INVOICE_DOWNLOAD_DIR).is_dir()
        else []
    )
    not_closed = [
        *OpportunityServiceOrder.objects.filter(facturado=False).values_list("opportunity__name", flat=True),
        *Opportunity.objects.filter(name__startswith="Venta put")
        .exclude(c_facturacion_sub_estado="factura_directa")
        .values_list("name", flat=True),
    ]
    return {
        "not_closed": not_closed,
        "rows_without_their_file": bad_rows,
        "invoiced_without_comprobantes": invoiced_without,
        "direct_closes_without_comprobantes": direct_without,
        "repeated_history": repeated,
        "downloads_left": downloads,
    }


def main(argv: list[str]) -> int:
    _setup()
    command = argv[0]
    if command == "check":
        print(json.dumps(_check()))
        return 0
    scenario, n = argv[1], int(argv[2])
    if command == "retry":
        # What comes next: the front-end sends each PUT again; cron runs poll_invoices (which
        # also sweeps the downloads that the killed processes left).
        if scenario == "put":
            for number in range(n, int(argv[3]) + 1):
                _work(scenario, number)
        _work("poll", 0)
        return 0
    _prepare(scenario, n)
    return killed_at(int(argv[3]), lambda: _work(scenario, n))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
