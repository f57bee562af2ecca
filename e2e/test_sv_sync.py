"""The clinic history reaches SV, also when SV was down during the PUT (docs/api.md "SV sync")."""

from __future__ import annotations

import re
import time

from e2e.harness import SV_BACKOFF_SECONDS

SYNC_RE = re.compile(r"^sync_sv: due=(\d+) delivered=(\d+) retried=(\d+) failed=(\d+) seconds=[\d.]+")


def test_a_clinic_history_saved_while_sv_is_down_is_delivered_once_by_sync_sv(api, sv, manage, new_id):
    reservation_id = new_id()
    clinic_history = f"HC-{reservation_id}"
    opportunity_id = api.create_opportunity("E2E - SV caído")["id"]

    sv.down()
    try:
        answer = api.put_process(opportunity_id, {"cClinicHistory": clinic_history, "reservationId": reservation_id})
        saved_at = time.monotonic()
    finally:
        sv.up()
    assert (answer["opportunity"]["cClinicHistory"], answer["opportunity"]["reservationId"]) == (
        clinic_history,
        reservation_id,
    )
    assert sv.patches(reservation_id) == [], "SV was down: nothing can have reached it"

    # The failed attempt of the PUT is retried after SV_SYNC_BACKOFF_SECONDS.
    time.sleep(max(0.0, saved_at + SV_BACKOFF_SECONDS + 0.3 - time.monotonic()))
    first = manage("sync_sv")

    assert first.returncode == 0, first
    match = SYNC_RE.match(first.stdout.strip())
    assert match and int(match.group(2)) >= 1, first.stdout
    patches = sv.patches(reservation_id)
    assert [(p.status, p.body) for p in patches] == [(200, {"clinicHistoryCrm": clinic_history})], patches
    token = patches[0].authorization.removeprefix("Bearer ")
    assert sv.issued_token(token), "the PATCH carries the token SV handed out at sign-in"

    second = manage("sync_sv")

    assert second.returncode == 0, second
    assert len(sv.patches(reservation_id)) == 1, "a delivered clinic history is not sent again"
