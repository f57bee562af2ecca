"""Safe retries through gunicorn (docs/api.md "Safe retries"): `Idempotency-Key` on the create and
the process update, `ETag` / `If-Match` / `If-None-Match` on the opportunity."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import requests

from devtools.testing import at_once
from e2e import bodies
from e2e.harness import CommandResult, Stack, json_error

PUT = "/opportunity/update-opportunity-procces/{}"


def opportunities_named(manage: Callable[..., CommandResult], name: str) -> int:
    """How many opportunities are called `name` (read through manage.py, as an operator would)."""
    done = manage(
        "shell",
        "-c",
        f"from opportunities.models import Opportunity; print(Opportunity.objects.filter(name={name!r}).count())",
    )
    assert done.returncode == 0, done.stderr
    return int(done.stdout.strip().splitlines()[-1])  # after the shell's note on its imports


def sent_at_once(stack: Stack, copies: int, send: Callable[[Any], requests.Response]) -> list[requests.Response]:
    """`copies` requests released together (threads behind a barrier), each on its own session."""

    def one(_: int) -> requests.Response:
        with stack.session(stack.token) as http:
            return send(http)

    answers = at_once(copies, one)
    assert all(isinstance(answer, requests.Response) for answer in answers), answers
    return answers


def test_a_retried_create_with_the_same_key_creates_one_opportunity(api, manage):
    name = f"E2E - reintento {uuid.uuid4().hex[:8]}"
    key = str(uuid.uuid4())
    first = api.post("/opportunity", json={"name": name}, headers={"Idempotency-Key": key})
    again = api.post("/opportunity", json={"name": name}, headers={"Idempotency-Key": key})
    assert (first.status_code, again.status_code) == (201, 201), again.text
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first.headers
    assert again.headers["ETag"] == first.headers["ETag"]
    assert opportunities_named(manage, name) == 1


def test_the_same_key_with_another_body_is_a_422_and_creates_nothing(api, manage):
    name = f"E2E - clave reusada {uuid.uuid4().hex[:8]}"
    key = str(uuid.uuid4())
    assert api.post("/opportunity", json={"name": name}, headers={"Idempotency-Key": key}).status_code == 201
    other = api.post("/opportunity", json={"name": f"{name} (otra)"}, headers={"Idempotency-Key": key})
    assert json_error(other, 422) is None, other.text
    assert opportunities_named(manage, f"{name} (otra)") == 0


def test_eight_creates_with_one_key_at_once_do_the_work_once(stack, api, manage):
    name = f"E2E - a la vez {uuid.uuid4().hex[:8]}"
    key = str(uuid.uuid4())
    answers = sent_at_once(
        stack, 8, lambda http: http.post("/opportunity", json={"name": name}, headers={"Idempotency-Key": key})
    )
    statuses = sorted(answer.status_code for answer in answers)
    assert set(statuses) <= {201, 409} and 201 in statuses, [(a.status_code, a.text[:200]) for a in answers]
    assert all(json_error(answer, 409) is None for answer in answers if answer.status_code == 409)
    assert len({answer.json()["id"] for answer in answers if answer.status_code == 201}) == 1
    assert opportunities_named(manage, name) == 1
    # Once the first is done, a retry gets its answer.
    retry = api.post("/opportunity", json={"name": name}, headers={"Idempotency-Key": key})
    assert retry.status_code == 201 and retry.headers["Idempotent-Replayed"] == "true"
    assert opportunities_named(manage, name) == 1


def test_a_retried_process_update_is_replayed_and_not_done_again(api, new_id):
    opportunity_id = api.create_opportunity("E2E - PUT reintentado")["id"]
    reservation_id = new_id()
    body = bodies.data_and_appointment(reservation_id)
    key = str(uuid.uuid4())
    first = api.put(PUT.format(opportunity_id), json=body, headers={"Idempotency-Key": key})
    # A colleague moves the appointment meanwhile; the lost answer's retry must not move it back.
    api.put_process(opportunity_id, bodies.appointment(reservation_id, doctor="Dr. Otro"))
    again = api.put(PUT.format(opportunity_id), json=body, headers={"Idempotency-Key": key})
    assert (first.status_code, again.status_code) == (200, 200)
    assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
    assert [m["doctor"] for m in api.listing(opportunity_id, "meetings")] == ["Dr. Otro"]
    created = [r for r in api.listing(opportunity_id, "action-history") if r["action"] == "meeting_created"]
    assert len(created) == 1


def test_a_stale_if_match_is_a_412_and_nothing_changed(api, new_id):
    opportunity_id = api.create_opportunity("E2E - edición concurrente")["id"]
    read = api.get(f"/opportunity/{opportunity_id}")
    etag = read.headers["ETag"]
    # Another staff member saves first.
    saved = api.put(PUT.format(opportunity_id), json={"cPatientsname": "Rosa"}, headers={"If-Match": etag})
    assert saved.status_code == 200 and saved.headers["ETag"] != etag
    history = api.listing(opportunity_id, "action-history")

    stale = api.put(
        PUT.format(opportunity_id),
        json={"cPatientsname": "María", **bodies.appointment(new_id())},
        headers={"If-Match": etag},
    )
    assert json_error(stale, 412) is None, stale.text
    assert stale.headers["ETag"] == saved.headers["ETag"]
    assert list(stale.json()["errors"]) == ["cPatientsname"]
    after = api.get(f"/opportunity/{opportunity_id}")
    assert after.json()["cPatientsname"] == "Rosa" and after.headers["ETag"] == saved.headers["ETag"]
    assert api.listing(opportunity_id, "meetings") == []
    assert api.listing(opportunity_id, "action-history") == history


def test_if_none_match_is_a_304_until_the_opportunity_changes(api):
    opportunity_id = api.create_opportunity("E2E - caché del front-end")["id"]
    etag = api.get(f"/opportunity/{opportunity_id}").headers["ETag"]
    cached = api.get(f"/opportunity/{opportunity_id}", headers={"If-None-Match": etag})
    assert cached.status_code == 304 and cached.content == b"" and cached.headers["ETag"] == etag
    api.put_process(opportunity_id, {"cPatientsname": "Rosa"})
    fresh = api.get(f"/opportunity/{opportunity_id}", headers={"If-None-Match": etag})
    assert fresh.status_code == 200 and fresh.json()["cPatientsname"] == "Rosa" and fresh.headers["ETag"] != etag
