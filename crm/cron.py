"""What cron runs: `settings.CRONJOBS` names `command_for_cron` with a management command.

django-crontab calls a function and logs whatever it raises with a traceback, then exits 0: a
command that ends with status 1 (invoice-mifact down) would mail a traceback and report success.
`command_for_cron` keeps the command's own output and status: when the command exits with a
status other than 0, it has already printed its summary and its Spanish line, and the process
ends there with that status.
"""

from __future__ import annotations

import logging
import os
import sys

import sentry_sdk
from django.core.management import CommandError, call_command


def _end(status: int) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    logging.shutdown()
    sentry_sdk.flush(timeout=2)  # a no-op unless SENTRY_DSN initialised it
    os._exit(status)  # not SystemExit: django-crontab would catch it


def command_for_cron(name: str, *args: str) -> None:
    """Run `manage.py <name> <args>` for cron; exit with its status when it is not 0."""
    try:
        call_command(name, *args)
    except SystemExit as exc:
        status = exc.code if isinstance(exc.code, int) else 1
        if status:
            _end(status)
    except CommandError as exc:
        sys.stderr.write(f"{name}: {exc}\n")
        _end(exc.returncode or 1)
