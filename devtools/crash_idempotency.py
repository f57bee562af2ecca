"""Kill this process with SIGKILL at the K-th executed line of the project's own code while it
answers `POST /opportunity` with an `Idempotency-Key`, then retry: how the crash-safety tests prove
that a create with a key is done once whatever moment its process dies at (docs/api.md "Safe
retries"; the killer is `devtools.crash_points`'s).

    python -m devtools.crash_idempotency run NAME KEY K   # the create, killed at line K (0: to the end)
    python -m devtools.crash_idempotency retry NAME KEY   # what was left, then the client's retry

`run` with K = 0 prints, as JSON, every line event it counted. `retry` prints, as JSON, what the
killed process left (opportunities called NAME, the key's state) and what the retry got and left;
the key's lock is taken to be expired (a retry after `IDEMPOTENCY_LOCK_SECONDS`).
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings_test")
django.setup()  # before the project's models are imported below

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from rest_framework.test import APIClient  # noqa: E402

from crm.models import IdempotencyKey  # noqa: E402
from devtools.crash_points import killed_at  # noqa: E402
from opportunities.models import Opportunity  # noqa: E402

USERNAME = "ventas-crash-idempotency"


def _post(name: str, key: str) -> Any:
    client = APIClient()
    client.force_authenticate(get_user_model().objects.get_or_create(username=USERNAME)[0])
    return client.post("/opportunity", {"name": name}, format="json", HTTP_IDEMPOTENCY_KEY=key, HTTP_HOST="localhost")


def _left(name: str, key: str) -> dict[str, Any]:
    return {
        "opportunities": list(Opportunity.objects.filter(name=name).values_list("pk", flat=True)),
        "key": IdempotencyKey.objects.filter(key=key).values_list("state", flat=True).first(),
    }


def main(argv: list[str]) -> int:
    command, name, key = argv[0], argv[1], argv[2]
    if command == "retry":
        settings.IDEMPOTENCY_LOCK_SECONDS = 0
        before = _left(name, key)
        answer = _post(name, key)
        print(
            json.dumps(
                {
                    "before": before,
                    "status": answer.status_code,
                    "id": answer.json().get("id"),
                    "after": _left(name, key),
                }
            )
        )
        return 0
    get_user_model().objects.get_or_create(username=USERNAME)
    return killed_at(int(argv[3]), lambda: _post(name, key))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
