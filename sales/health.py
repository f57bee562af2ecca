"""`/health` and `/health/live`: what an uptime monitor and a load balancer ask
(docs/operations.md "Monitoring").

`/health/live` only says that the process answers. `/health` also reads, in three small indexed
queries cached for `HEALTH_CACHE_SECONDS`, whether invoices are being polled: it answers 503
`degraded` when the database is down, or when service orders have waited longer than
`HEALTH_POLL_MAX_AGE_MINUTES` and no `poll_invoices` run reached invoice-mifact in that time (a
dead cron).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db.utils import Error as DatabaseError
from django.utils import timezone
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from billing.selectors import pending_backlog
from crm.errors import error_body
from crm.schema import ok
from jobs.models import CommandRun
from jobs.run_liveness import run_interruption
from jobs.runs import last_runs, last_successful_run
from opportunities.selectors import sv_backlog

CACHE_KEY = "crm:health"

_DETAILS: dict[str, serializers.Field] = {
    "status": serializers.ChoiceField(choices=["ok", "degraded"]),
    "reason": serializers.CharField(help_text="Por qué está degradado (vacío si `ok`)"),
    "database": serializers.ChoiceField(choices=["ok", "caída"]),
    "pendingServiceOrders": serializers.IntegerField(allow_null=True, help_text="O.S esperando factura"),
    "oldestPendingSeconds": serializers.IntegerField(allow_null=True, help_text="Antigüedad de la más antigua"),
    "lastSuccessfulPollSeconds": serializers.IntegerField(
        allow_null=True, help_text="Segundos desde la última consulta a invoice-mifact que funcionó"
    ),
    "svBacklog": serializers.IntegerField(allow_null=True, help_text="Envíos a SV pendientes o fallidos"),
}
HealthSerializer = inline_serializer("Health", _DETAILS)
# A degraded answer is also an error of the API: the error shape, plus the same details.
HealthDegradedSerializer = inline_serializer(
    "HealthDegraded",
    {
        "statusCode": serializers.IntegerField(help_text="503"),
        "message": serializers.CharField(help_text="El motivo, en español"),
        "error": serializers.CharField(help_text="`Service Unavailable`"),
        **_DETAILS,
    },
)


def _seconds_since(moment: dt.datetime | None, now: dt.datetime) -> int | None:
    return None if moment is None else max(0, int((now - moment).total_seconds()))


def _last_run_failure(now: dt.datetime) -> str:
    """ " (la última ejecución: <why>)" when the newest poll run failed or was interrupted (a
    `running` record whose process is gone counts as failed, not as in progress); else ""."""
    try:
        newest = last_runs(command="poll_invoices", limit=1)
    except DatabaseError:
        return ""
    if not newest:
        return ""
    why = run_interruption(newest[0], now=now)
    if not why and newest[0].outcome == CommandRun.Outcome.FAILED:
        why = newest[0].fatal
    return f" (última ejecución: {why})" if why else ""


def health_report() -> tuple[int, dict[str, Any]]:
    """(HTTP status, body) of `/health`, read fresh from the database."""
    now = timezone.now()
    try:
        pending_count, pending_oldest = pending_backlog()
        last_poll = last_successful_run(command="poll_invoices")
        sv_waiting = sum(sv_backlog().values())
    except DatabaseError:
        body = {
            **error_body(503, "La base de datos no responde"),
            "status": "degraded",
            "reason": "La base de datos no responde",
            "database": "caída",
            "pendingServiceOrders": None,
            "oldestPendingSeconds": None,
            "lastSuccessfulPollSeconds": None,
            "svBacklog": None,
        }
        return 503, body
    oldest = _seconds_since(pending_oldest, now)
    last_poll_seconds = _seconds_since(last_poll.started_at if last_poll else None, now)
    limit = settings.HEALTH_POLL_MAX_AGE_MINUTES * 60
    reason = ""
    if pending_count and oldest is not None and oldest > limit:
        if last_poll_seconds is None:
            reason = f"Hay O.S esperando factura desde hace más de {limit // 60} min y poll_invoices nunca funcionó"
        elif last_poll_seconds > limit:
            reason = (
                f"Hay O.S esperando factura y poll_invoices no funciona desde hace {last_poll_seconds // 60} min "
                f"(límite {limit // 60} min)"
            )
    if reason:
        reason += _last_run_failure(now)
    body = {
        **(error_body(503, reason) if reason else {}),
        "status": "degraded" if reason else "ok",
        "reason": reason,
        "database": "ok",
        "pendingServiceOrders": pending_count,
        "oldestPendingSeconds": oldest,
        "lastSuccessfulPollSeconds": last_poll_seconds,
        "svBacklog": sv_waiting,
    }
    return (503 if reason else 200), body


class HealthApi(APIView):
    """`GET /health`: the database and the invoice polling (see the module docstring)."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        responses={
            200: ok(HealthSerializer, "El servicio responde y las facturas se consultan"),
            503: OpenApiResponse(
                HealthDegradedSerializer,
                description="Degradado: la base de datos no responde o poll_invoices no funciona",
                examples=[
                    OpenApiExample(
                        "Cron detenido",
                        value={
                            "statusCode": 503,
                            "message": "Hay O.S esperando factura y poll_invoices no funciona desde hace 42 min "
                            "(límite 15 min)",
                            "error": "Service Unavailable",
                            "status": "degraded",
                            "reason": "Hay O.S esperando factura y poll_invoices no funciona desde hace 42 min "
                            "(límite 15 min)",
                            "database": "ok",
                            "pendingServiceOrders": 12,
                            "oldestPendingSeconds": 5400,
                            "lastSuccessfulPollSeconds": 2520,
                            "svBacklog": 0,
                        },
                        response_only=True,
                        status_codes=["503"],
                    )
                ],
            ),
        },
        auth=[],
        tags=["health"],
        summary="Estado del servicio: base de datos y consulta periódica de facturas",
        description=(
            "200 `ok`; 503 `degraded` con el motivo cuando la base de datos no responde o cuando hay O.S "
            "esperando factura y ninguna ejecución de poll_invoices funcionó en "
            "`HEALTH_POLL_MAX_AGE_MINUTES`. Se calcula como máximo cada `HEALTH_CACHE_SECONDS`. No exige token."
        ),
    )
    def get(self, request: Request) -> Response:
        cached = cache.get(CACHE_KEY)
        if cached is None:
            cached = health_report()
            if settings.HEALTH_CACHE_SECONDS > 0:
                cache.set(CACHE_KEY, cached, settings.HEALTH_CACHE_SECONDS)
        code, body = cached
        return Response(body, status=code)


class LiveApi(APIView):
    """`GET /health/live`: the process answers (no database): for load balancers, which must not
    drain every node because cron died."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        responses={200: ok(inline_serializer("Live", {"status": serializers.CharField()}), "El proceso responde")},
        auth=[],
        tags=["health"],
        summary="El proceso responde (sin consultar la base de datos)",
        description=(
            "200 mientras el proceso responda, sin consultar la base de datos: para balanceadores, que no deben "
            "retirar todos los servidores porque cron dejó de funcionar."
        ),
    )
    def get(self, request: Request) -> Response:
        return Response({"status": "ok"})
