"""`GET /metrics`: Prometheus figures for the clinic's IT (docs/operations.md "Monitoring").

Served only to a caller with `Authorization: Bearer <METRICS_TOKEN>` or from an address in
`METRICS_ALLOWED_IPS` (addresses or networks); anyone else gets a JSON 403 (404 while neither is
configured, so the endpoint does not exist). Request counts and latencies come from
django-prometheus' middleware, outside calls from `crm.metrics`; both are correct under several
gunicorn workers through prometheus_client's multiprocess mode (`PROMETHEUS_MULTIPROC_DIR`). The
backlog figures are read from the database at each scrape (a handful of indexed queries).
"""

from __future__ import annotations

import hmac
import ipaddress
import os
from collections.abc import Iterator

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from billing.selectors import pending_backlog
from crm.errors import error_body
from crm.security import client_ip
from jobs.models import CommandRun
from opportunities.selectors import sv_backlog

COMMANDS = ("poll_invoices", "sync_sv", "send_events")


class BacklogCollector(Collector):
    """What waits, read from the database when Prometheus scrapes."""

    def collect(self) -> Iterator[Metric]:
        now = timezone.now()
        pending_count, pending_oldest = pending_backlog()
        yield GaugeMetricFamily("crm_service_orders_pending", "Service orders waiting for an invoice", pending_count)
        oldest = (now - pending_oldest).total_seconds() if pending_oldest else 0.0
        yield GaugeMetricFamily(
            "crm_service_orders_oldest_pending_seconds",
            "Age of the oldest service order waiting for an invoice",
            oldest,
        )
        backlog = GaugeMetricFamily(
            "crm_sv_deliveries", "SV deliveries waiting or failed, by status", labels=["status"]
        )
        for status, count in sv_backlog().items():
            backlog.add_metric([status], count)
        yield backlog
        success = GaugeMetricFamily(
            "crm_command_last_success_timestamp_seconds",
            "Start (Unix time) of the newest run that reached its service (ok or partial)",
            labels=["command"],
        )
        duration = GaugeMetricFamily(
            "crm_command_last_run_seconds", "Duration of the newest finished run", labels=["command", "outcome"]
        )
        for command in COMMANDS:
            runs = CommandRun.objects.filter(command=command).order_by("-started_at", "-id")
            good = runs.filter(outcome__in=[CommandRun.Outcome.OK, CommandRun.Outcome.PARTIAL]).first()
            if good is not None:
                success.add_metric([command], good.started_at.timestamp())
            last = runs.exclude(finished_at=None).first()
            if last is not None and last.seconds is not None:
                duration.add_metric([command, last.outcome], last.seconds)
        yield success
        yield duration


def _allowed(request: HttpRequest) -> bool:
    token = settings.METRICS_TOKEN
    given = request.headers.get("Authorization", "")
    if token and hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        return True
    if not settings.METRICS_ALLOWED_IPS:
        return False
    try:
        address = ipaddress.ip_address(client_ip(request))
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(entry, strict=False) for entry in settings.METRICS_ALLOWED_IPS)


def _exposition() -> bytes:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        processes = CollectorRegistry()
        multiprocess.MultiProcessCollector(processes)  # every worker's counters, summed
        served = generate_latest(processes)
    else:
        served = generate_latest(REGISTRY)
    database = CollectorRegistry()
    database.register(BacklogCollector())
    return served + generate_latest(database)


@csrf_exempt
@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    """The Prometheus exposition, or a JSON 403/404 (see the module docstring)."""
    if not (settings.METRICS_TOKEN or settings.METRICS_ALLOWED_IPS):
        return JsonResponse(error_body(404, "Ruta no encontrada"), status=404)
    if not _allowed(request):
        return JsonResponse(error_body(403, "Acceso a las métricas denegado"), status=403)
    return HttpResponse(_exposition(), content_type=CONTENT_TYPE_LATEST)
