"""The clinic history reaches SV, also when SV was down during the PUT (docs/api.md "SV sync")."""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor

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


#: Seconds a slow SV takes to apply and answer a PATCH (below SV_INLINE_TIMEOUT, 3 s).
SLOW_SV_SECONDS = 1.5


def wait_for_arrival(sv, reservation_id: int, values: list[str], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while sv.arrived(reservation_id) != values:
        assert time.monotonic() < deadline, f"SV received {sv.arrived(reservation_id)}, waited for {values}"
        time.sleep(0.02)


def test_sv_ends_with_the_newest_clinic_history_when_sync_sv_sends_an_older_one_slowly(stack, api, sv, manage, new_id):
    """Regression: a PUT's own attempt sent the newer value while sync_sv's slow PATCH of the
    older one was still being applied, so SV ended with the older value (both rows delivered)."""
    reservation_id = new_id()
    opportunity_id = api.create_opportunity("E2E - SV lento, sync_sv")["id"]
    sv.down()
    try:
        api.put_process(opportunity_id, {"cClinicHistory": "HC-ANTIGUA", "reservationId": reservation_id})
        saved_at = time.monotonic()
    finally:
        sv.up()
    time.sleep(max(0.0, saved_at + SV_BACKOFF_SECONDS + 0.3 - time.monotonic()))

    # sync_sv sends the older value to an SV that takes its time to apply it...
    sv.slow_patches(SLOW_SV_SECONDS)
    run = stack.manage_popen("sync_sv")
    try:
        wait_for_arrival(sv, reservation_id, ["HC-ANTIGUA"])
        # ... while the newer value is saved, and its PUT makes its own attempt at once.
        api.put_process(opportunity_id, {"cClinicHistory": "HC-NUEVA"})
    finally:
        out, err = run.communicate(timeout=120)

    assert run.returncode == 0, (out, err)
    assert sv.clinic_history(reservation_id) == "HC-NUEVA", sv.arrived(reservation_id)
    assert sv.arrived(reservation_id) == ["HC-ANTIGUA", "HC-NUEVA"]
    again = manage("sync_sv")
    assert again.returncode == 0 and again.stdout.startswith("sync_sv: due=0 delivered=0"), again
    assert sv.clinic_history(reservation_id) == "HC-NUEVA"


def test_sv_ends_with_the_newest_clinic_history_when_two_puts_send_at_once(api, sv, new_id):
    """The older PUT's attempt is slow; the newer PUT (on the other gunicorn worker) waits for it
    instead of overtaking it, and the older PUT's worker sends the newer value right after."""
    reservation_id = new_id()
    opportunity_id = api.create_opportunity("E2E - SV lento, dos PUT")["id"]
    sv.slow_patches(SLOW_SV_SECONDS)
    with ThreadPoolExecutor(1) as pool:
        older = pool.submit(
            api.put_process, opportunity_id, {"cClinicHistory": "HC-ANTIGUA", "reservationId": reservation_id}
        )
        wait_for_arrival(sv, reservation_id, ["HC-ANTIGUA"])
        api.put_process(opportunity_id, {"cClinicHistory": "HC-NUEVA"})
        older.result(timeout=60)

    assert sv.arrived(reservation_id) == ["HC-ANTIGUA", "HC-NUEVA"]
    assert sv.clinic_history(reservation_id) == "HC-NUEVA"
