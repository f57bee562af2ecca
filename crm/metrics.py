"""Prometheus metrics of outside calls, recorded where the calls are made (docs/operations.md
"Monitoring"). Correct under several gunicorn workers through prometheus_client's multiprocess
mode (`PROMETHEUS_MULTIPROC_DIR`, set by `make serve`)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

OUTGOING_REQUESTS = Counter(
    "crm_outgoing_requests_total",
    "Calls to outside services by service and outcome (ok, http_4xx, http_5xx, error)",
    ["service", "outcome"],
)
OUTGOING_SECONDS = Histogram(
    "crm_outgoing_request_seconds",
    "Duration of calls to outside services",
    ["service"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)


def outcome_of_status(status_code: int) -> str:
    """The `outcome` label of an answered call."""
    if status_code >= 500:
        return "http_5xx"
    if status_code >= 400:
        return "http_4xx"
    return "ok"


def record_outgoing(*, service: str, outcome: str, seconds: float) -> None:
    """Count one call to `service` (`invoice-mifact`, `SV`, `pdf`) and its duration."""
    OUTGOING_REQUESTS.labels(service=service, outcome=outcome).inc()
    OUTGOING_SECONDS.labels(service=service).observe(seconds)
