"""Sentry: unhandled errors and cron monitors when `SENTRY_DSN` is set; nothing imported without it."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from devtools.harness import settings_run


def settings_import(**env: str) -> str:
    code = (
        "import os, sys, django; os.environ['DJANGO_SETTINGS_MODULE'] = 'crm.settings'; django.setup(); "
        "print('sentry_sdk' in sys.modules, end=' '); "
        "print(__import__('sentry_sdk').get_client().is_active() if 'sentry_sdk' in sys.modules else '-')"
    )
    result = settings_run(code, {"SENTRY_DSN": "", **env})
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_without_a_dsn_sentry_is_not_even_imported():
    assert settings_import() == "False -"


def test_with_a_dsn_the_django_integration_is_active():
    # A DSN on a closed local port: nothing leaves the machine.
    assert settings_import(SENTRY_DSN="http://public@127.0.0.1:9/1") == "True True"


@pytest.mark.django_db
def test_the_cron_commands_report_their_runs_as_cron_monitors(settings):
    import sentry_sdk
    from sentry_sdk.transport import Transport

    envelopes = []

    class Capture(Transport):
        def capture_envelope(self, envelope):
            envelopes.append(envelope)

    settings.SENTRY_DSN = "http://public@127.0.0.1:9/1"
    settings.URL_SV = ""
    sentry_sdk.init(dsn=settings.SENTRY_DSN, transport=Capture)
    try:
        call_command("sync_sv", stdout=io.StringIO())
        call_command("poll_invoices", stdout=io.StringIO())
        call_command("attachments_check", stdout=io.StringIO())
        sentry_sdk.flush()
    finally:
        sentry_sdk.init(dsn=None)
    check_ins = [item.payload.json for envelope in envelopes for item in envelope.items if item.type == "check_in"]
    assert [(c["monitor_slug"], c["status"]) for c in check_ins] == [
        ("sync-sv", "in_progress"),
        ("sync-sv", "ok"),
        ("poll-invoices", "in_progress"),
        ("poll-invoices", "ok"),
        ("attachments-check", "in_progress"),
        ("attachments-check", "ok"),
    ]
    assert check_ins[0]["monitor_config"]["schedule"] == {"type": "crontab", "value": "*/5 * * * *"}
    assert check_ins[4]["monitor_config"]["schedule"] == {"type": "crontab", "value": "17 3 * * *"}


@pytest.mark.django_db
def test_a_poll_that_could_check_nothing_is_an_error_check_in(settings, make_opportunity):
    import sentry_sdk
    from sentry_sdk.transport import Transport

    from billing.models import OpportunityServiceOrder

    envelopes = []

    class Capture(Transport):
        def capture_envelope(self, envelope):
            envelopes.append(envelope)

    OpportunityServiceOrder.objects.create(opportunity=make_opportunity(), service_order_id=456)
    settings.SENTRY_DSN = "http://public@127.0.0.1:9/1"
    settings.URL_INVOICE_MIFACT_V3 = ""
    sentry_sdk.init(dsn=settings.SENTRY_DSN, transport=Capture)
    try:
        with pytest.raises(SystemExit) as exited:
            call_command("poll_invoices", stdout=io.StringIO(), stderr=io.StringIO())
        sentry_sdk.flush()
    finally:
        sentry_sdk.init(dsn=None)
    assert exited.value.code == 1
    statuses = [
        item.payload.json["status"] for envelope in envelopes for item in envelope.items if item.type == "check_in"
    ]
    assert statuses == ["in_progress", "error"]
