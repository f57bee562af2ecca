"""Running a management command in the test process as cron does: its exit code and output."""

from __future__ import annotations

import io
from typing import Any

from django.core.management import call_command
from django.core.management.base import CommandError


def run_command(name: str, *args: Any, capture: Any = None) -> tuple[int | str | None, str, str]:
    """(exit code, stdout, stderr) of `manage.py <name> <args>`; `capture` is pytest-django's
    `django_capture_on_commit_callbacks`, to run on-commit callbacks too."""
    out, err = io.StringIO(), io.StringIO()
    code: int | str | None = 0
    try:
        if capture is not None:
            with capture(execute=True):
                call_command(name, *args, stdout=out, stderr=err)
        else:
            call_command(name, *args, stdout=out, stderr=err)
    except SystemExit as exc:
        code = exc.code
    except CommandError as exc:  # manage.py prints "CommandError: <message>" and exits with its returncode
        code = exc.returncode
        err.write(str(exc))
    return code, out.getvalue(), err.getvalue()
