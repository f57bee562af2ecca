"""Errors and cron runs reported to Sentry when `SENTRY_DSN` is set (docs/operations.md
"Monitoring"). Without it nothing is imported and nothing changes."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Any

from django.conf import settings


def cron_schedule(command: str) -> str:
    """The crontab schedule of `command` in settings.CRONJOBS (what Sentry expects of its runs)."""
    return next(job[0] for job in settings.CRONJOBS if job[2] == [command])


def sentry_init(*, dsn: str, environment: str, release: str, traces_sample_rate: float) -> None:
    """Start sentry-sdk with its Django integration (called by the settings when a DSN is set)."""
    import sentry_sdk  # imported only when Sentry is configured
    from sentry_sdk.integrations.django import DjangoIntegration

    sentry_sdk.init(
        dsn=dsn,
        environment=environment or None,
        release=release or None,
        traces_sample_rate=traces_sample_rate,
        integrations=[DjangoIntegration()],
        send_default_pii=False,
    )


def cron_monitor(command: str) -> AbstractContextManager[Any]:
    """A Sentry cron monitor around one run of `command` (check-ins: in progress, then ok or
    error; Sentry reports a missed run, a failed one, and one that ran too long); a no-op
    without `SENTRY_DSN`."""
    if not settings.SENTRY_DSN:
        return nullcontext()
    from sentry_sdk.crons import monitor  # imported only when Sentry is configured

    return monitor(
        monitor_slug=command.replace("_", "-"),
        monitor_config={
            "schedule": {"type": "crontab", "value": cron_schedule(command)},
            "checkin_margin": settings.SENTRY_CRON_CHECKIN_MARGIN_MINUTES,
            "max_runtime": settings.SENTRY_CRON_MAX_RUNTIME_MINUTES,
            "timezone": "UTC",
        },
    )
