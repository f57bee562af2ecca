"""The data of bench/poll.py: the seeded opportunities and service orders, and the reset
between runs (on the bench's own PostgreSQL database)."""

from __future__ import annotations

import time

import requests
from _common import BenchError, Workspace, say

OPPORTUNITIES = 200
INVOICED_EVERY = 20  # 1 in 20 = 5%
FIRST_FOLLOW_UP_ID = 5_000_000
FIRST_SERVICE_ORDER_ID = 700_000


class PollData:
    """Seeding and resetting; `PollBench` provides `ws`, `http`, `mifact`, `n`, `follow_ups` and
    `expected_invoiced`."""

    ws: Workspace
    http: requests.Session
    mifact: str
    n: int
    follow_ups: int
    expected_invoiced: int

    def seed(self) -> None:
        from billing.models import OpportunityServiceOrder
        from opportunities.models import FacturacionSubEstado, Opportunity, Stage

        started = time.monotonic()
        opportunities = Opportunity.objects.bulk_create(
            [
                Opportunity(
                    name=f"Bench poll {k:03d}",
                    stage=Stage.CIERRE_GANADO,
                    c_facturacion_sub_estado=FacturacionSubEstado.ORDEN_SERVICIO_PENDIENTE_FACTURA,
                    c_clinic_history=f"HC-B{k:05d}",
                    c_patientsname=f"Paciente {k}",
                    is_presaved=True,
                )
                for k in range(OPPORTUNITIES)
            ]
        )
        OpportunityServiceOrder.objects.bulk_create(
            [
                OpportunityServiceOrder(
                    opportunity=opportunities[i * OPPORTUNITIES // self.n],
                    service_order_id=FIRST_SERVICE_ORDER_ID + i,
                    metadata={"numero_os": f"OS-{FIRST_SERVICE_ORDER_ID + i}", "descripcion": "Procedimiento"},
                )
                for i in range(self.n)
            ],
            batch_size=1000,
        )
        for i in range(0, self.n, INVOICED_EVERY):
            response = self.http.post(
                f"{self.mifact}/_standin/service-order/{FIRST_SERVICE_ORDER_ID + i}/invoice",
                json={"soles": True, "dolares": False},
                timeout=10,
            )
            if response.status_code != 200:
                raise BenchError(
                    f"the stand-in refused to invoice O.S {FIRST_SERVICE_ORDER_ID + i}: {response.text[:300]}"
                )
        if self.follow_ups:
            self.seed_follow_ups()
        say(
            f"  seeded {self.n} pending O.S over {OPPORTUNITIES} opportunities, {self.expected_invoiced} invoiced "
            f"on the stand-in ({100 * self.expected_invoiced / self.n:.1f}%, PDF in soles) "
            f"in {time.monotonic() - started:.1f} s"
        )

    def seed_follow_ups(self) -> None:
        """`follow_ups` invoiced O.S, invoiced an hour ago and checked two hours ago: due a follow-up."""
        import datetime as dt

        from django.utils import timezone

        from billing.models import OpportunityServiceOrder
        from opportunities.models import FacturacionSubEstado, Opportunity, Stage

        opportunity = Opportunity.objects.create(
            name="Bench follow-ups",
            stage=Stage.CIERRE_GANADO,
            c_clinic_history="HC-FOLLOW",
            c_facturacion_sub_estado=FacturacionSubEstado.FACTURA_DIRECTA,
            is_presaved=False,
        )
        now = timezone.now()
        OpportunityServiceOrder.objects.bulk_create(
            [
                OpportunityServiceOrder(
                    opportunity=opportunity,
                    service_order_id=FIRST_FOLLOW_UP_ID + i,
                    facturado=True,
                    invoice_result_head_id=FIRST_FOLLOW_UP_ID + i,
                    invoiced_at=now - dt.timedelta(hours=1),
                    last_checked_at=now - dt.timedelta(hours=2),
                )
                for i in range(self.follow_ups)
            ],
            batch_size=1000,
        )
        for i in range(self.follow_ups):
            self.http.post(
                f"{self.mifact}/_standin/service-order/{FIRST_FOLLOW_UP_ID + i}/invoice",
                json={"soles": True, "invoice_result_head_id": FIRST_FOLLOW_UP_ID + i},
                timeout=10,
            ).raise_for_status()
        say(f"  seeded {self.follow_ups} invoiced O.S due a follow-up check (still valid at the stand-in)")

    def reset(self) -> None:
        """Back to the seeded state: every O.S pending and unchecked, no attachments, history or files."""
        import datetime as dt
        import shutil

        from django.utils import timezone

        from billing.models import OpportunityServiceOrder
        from opportunities.models import ActionHistory, Attachment, FacturacionSubEstado, Opportunity, Stage

        OpportunityServiceOrder.objects.filter(service_order_id__gte=FIRST_FOLLOW_UP_ID).update(
            last_checked_at=timezone.now() - dt.timedelta(hours=2), claimed_until=None
        )
        OpportunityServiceOrder.objects.filter(service_order_id__lt=FIRST_FOLLOW_UP_ID).update(
            facturado=False,
            invoice_result_head_id=None,
            url_soles=None,
            url_dolares=None,
            last_checked_at=None,
            last_error="",
            claimed_until=None,
        )
        Attachment.objects.all().delete()
        ActionHistory.objects.all().delete()
        Opportunity.objects.exclude(name="Bench follow-ups").update(
            stage=Stage.CIERRE_GANADO,
            c_facturacion_sub_estado=FacturacionSubEstado.ORDEN_SERVICIO_PENDIENTE_FACTURA,
            is_presaved=True,
        )
        shutil.rmtree(self.ws.media, ignore_errors=True)
        self.ws.media.mkdir()
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE opportunity_service_order")
            cursor.execute("VACUUM ANALYZE opportunity")
        say("  reset: all O.S pending again; attachments, history and media of the run removed")
