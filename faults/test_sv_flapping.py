"""SV slow and flapping (issue 17 B; defect A.6): a slow PATCH of an older clinic history, answers
503 and SV switched off between PUTs; once SV is back and cron has run, SV holds the newest clinic
history of each reservation and no delivery was made twice."""

from __future__ import annotations

import itertools
import re
import threading
import time

from e2e import bodies
from faults import invariants

_IDS = itertools.count(850001)
SYNC_RE = re.compile(r"^sync_sv: due=(\d+) delivered=(\d+) retried=(\d+) failed=(\d+)")
#: Seconds SV takes to answer (and apply) the slow PATCH; the PUT's inline attempt waits up to 3.
SLOW_SECONDS = 2.0


def _drain_outbox(scene, timeout: float = 30.0) -> list[str]:
    """Run sync_sv as cron does until nothing is due or pending (the backoff is 1-2 s here)."""
    outputs = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = scene.manage("sync_sv")
        outputs.append(f"exit {result.returncode}: {result.stdout.strip()} {result.stderr.strip()}")
        pending = scene.stack.query(
            "SELECT count(*) AS n FROM opportunity_sv_delivery d JOIN opportunity o ON o.id = d.opportunity_id "
            "WHERE d.status = 'pending' AND o.created_at >= %s",
            scene.started_at,
        )[0]["n"]
        if not pending:
            break
        time.sleep(0.5)
    return outputs


def test_sv_slow_and_flapping_ends_with_the_newest_clinic_history(scene, api):
    stack, sv = scene.stack, scene.stack.sv
    slow_reservation, flapping_reservation = next(_IDS), next(_IDS)
    slow = api.create_opportunity("Fallas - SV lento")["id"]
    flapping = api.create_opportunity("Fallas - SV intermitente")["id"]
    api.put_process(slow, bodies.data_and_appointment(slow_reservation))
    api.put_process(flapping, bodies.data_and_appointment(flapping_reservation))

    # Slow: the first clinic history's PATCH takes SLOW_SECONDS; meanwhile the clinic history is
    # corrected twice (the first correction meets a 503, the second goes through at once).
    sv.plan_patches([(SLOW_SECONDS, 200), (0.0, 503)])
    arrived = sv.patches_arrived
    first = threading.Thread(target=api.put_process, args=(slow, {"cClinicHistory": f"HC-{slow_reservation}-1"}))
    with stack.session(stack.token) as other:
        first.start()
        sv.wait_for_patches(arrived + 1, timeout=10)
        other.put_process(slow, {"cClinicHistory": f"HC-{slow_reservation}-2"})
        other.put_process(slow, {"cClinicHistory": f"HC-{slow_reservation}-3"})
    first.join(30)

    # Flapping: SV off, on, failing, off again between the PUTs and cron's runs.
    for step in range(1, 5):
        if step % 2:
            sv.down()
        else:
            sv.plan_patches([(0.0, 503)])
        api.put_process(flapping, {"cClinicHistory": f"HC-{flapping_reservation}-{step}"})
        scene.manage("sync_sv")
        sv.up()
    time.sleep(SLOW_SECONDS)  # the slow PATCH has answered by now, whatever the CRM did meanwhile
    runs = _drain_outbox(scene)

    held = {reservation: sv.applied(reservation) for reservation in (slow_reservation, flapping_reservation)}
    scene.figure(f"SV holds {held} after {len(runs)} sync_sv runs")
    problems = invariants.all_problems(scene, sv=True)
    deliveries = stack.query(
        "SELECT d.reservation_id, d.clinic_history, d.status FROM opportunity_sv_delivery d "
        "WHERE d.opportunity_id = ANY(%s) ORDER BY d.created_at DESC, d.id DESC",
        [slow, flapping],
    )
    for reservation in (slow_reservation, flapping_reservation):
        newest = next((d for d in deliveries if d["reservation_id"] == reservation), None)
        if newest is None or newest["status"] != "delivered":
            problems.append(f"reservation {reservation}: the newest delivery is {newest}, not delivered")
    assert not problems, "\n".join(problems + runs)
