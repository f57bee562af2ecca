"""What the clinic's IT plugs into its monitoring (docs/operations.md "Monitoring"): /metrics with
two gunicorn workers, JSON logs that carry the request id, /health while cron is dead."""

from __future__ import annotations

import json
import re
import time
from concurrent.futures import ThreadPoolExecutor

import requests

from e2e.harness import METRICS_TOKEN

SERVED = 'django_http_responses_total_by_status_view_method_total{method="GET",status="200",view="health-live"}'


def scrape(stack, token: str | None = METRICS_TOKEN) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.get(f"{stack.base_url}/metrics", headers=headers, timeout=10)


def sample(text: str, line_start: str) -> float:
    for line in text.splitlines():
        if line.startswith(line_start + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_sum_both_workers_and_refuse_an_unauthenticated_caller(stack, api, new_id):
    # One call to invoice-mifact, so that the outgoing figures have a sample.
    opportunity_id = api.create_opportunity("E2E - métricas")["id"]
    api.put_process(opportunity_id, {"cClinicHistory": "HC-MET", "cOrdenesServicio": [new_id()]})
    refused = scrape(stack, token=None)
    assert refused.status_code == 403 and refused.json()["statusCode"] == 403
    assert scrape(stack, token="wrong").status_code == 403

    before = sample(scrape(stack).text, SERVED)
    offset = stack.log_offset("gunicorn")
    # Four at a time: while one worker is busy, another must take a request.
    with ThreadPoolExecutor(4) as pool:
        codes = list(
            pool.map(lambda _: requests.get(f"{stack.base_url}/health/live", timeout=10).status_code, range(60))
        )
    assert codes == [200] * 60
    assert len(stack.workers_that_served("/health/live", offset)) == 2, "both workers must have served some"
    # Whichever worker answers the scrape, it reports every worker's requests.
    seen = {sample(scrape(stack).text, SERVED) - before for _ in range(6)}
    assert seen == {60.0}, seen
    text = scrape(stack).text
    for name in (
        "crm_service_orders_pending",
        "crm_service_orders_oldest_pending_seconds",
        "crm_sv_deliveries",
        "crm_outgoing_requests_total",
        "crm_outgoing_request_seconds_bucket",
        "django_http_requests_latency_seconds_by_view_method_bucket",
    ):
        assert name in text, name


def test_json_logs_carry_the_request_id_the_response_returned_and_the_standin_received(stack, api, mifact, new_id):
    opportunity_id = api.create_opportunity("E2E - registro con id de solicitud")["id"]
    service_order_id = new_id()
    log_offset, standin_offset = stack.log_offset("gunicorn"), mifact.log_offset()
    response = api.put(
        f"/opportunity/update-opportunity-procces/{opportunity_id}",
        json={"cClinicHistory": "HC-TRACE", "cOrdenesServicio": [service_order_id]},
        headers={"X-Request-ID": "e2e-trace-7f3a"},
    )
    assert response.status_code == 200
    assert response.headers["X-Request-ID"] == "e2e-trace-7f3a"

    deadline = time.monotonic() + 10
    lines: list[dict] = []
    while time.monotonic() < deadline and not lines:
        with stack.log_path("gunicorn").open("rb") as log:
            log.seek(log_offset)
            for raw in log.read().decode("utf-8", "replace").splitlines():
                if raw.startswith("{"):
                    record = json.loads(raw)
                    if record.get("request_id") == "e2e-trace-7f3a":
                        lines.append(record)
        time.sleep(0.1)
    assert lines, "no JSON log line with the request id"
    applied = next(r for r in lines if r["message"].startswith("Process update applied"))
    assert applied["opportunity_id"] == opportunity_id
    assert {"time", "level", "logger", "message", "request_id"} <= set(applied)

    with mifact.log_path.open("rb") as log:
        log.seek(standin_offset)
        standin = log.read().decode("utf-8", "replace")
    status_calls = re.findall(rf"GET /api/service-order/{service_order_id}/invoice-status .* request_id=(\S+)", standin)
    assert status_calls == ["e2e-trace-7f3a"], standin[-2000:]


def test_a_dead_cron_turns_health_into_a_503_that_names_the_reason(stack, api, manage, new_id):
    """A run record aged on purpose: O.S pending for an hour, the last poll that worked 40 minutes ago."""
    opportunity_id = api.create_opportunity("E2E - cron detenido")["id"]
    api.put_process(opportunity_id, {"cClinicHistory": "HC-CRON", "cOrdenesServicio": [new_id()]})
    script = (
        "import datetime as dt; from django.utils import timezone; "
        "from billing.models import OpportunityServiceOrder as O; from jobs.models import CommandRun as R; "
        "now = timezone.now(); "
        "O.objects.filter(facturado=False).update(created_at=now - dt.timedelta(hours=1)); "
        "R.objects.filter(command='poll_invoices').update(started_at=now - dt.timedelta(hours=2)); "
        "R.objects.create(command='poll_invoices', host='nodo-1', outcome='ok', "
        "started_at=now - dt.timedelta(minutes=40), finished_at=now - dt.timedelta(minutes=40))"
    )
    assert manage("shell", "-c", script).returncode == 0
    response = api.health_until(lambda answer: answer.status_code == 503)
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "degraded" and body["statusCode"] == 503
    assert "poll_invoices no funciona desde hace 40 min" in body["reason"]
    assert requests.get(f"{stack.base_url}/health/live", timeout=10).status_code == 200

    # cron comes back: a run that reaches invoice-mifact makes it healthy again.
    assert manage("poll_invoices").returncode == 0
    healthy = api.health_until(lambda answer: answer.status_code == 200)
    assert healthy.status_code == 200, "health stayed degraded after a good poll"
