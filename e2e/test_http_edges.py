"""What any HTTP client gets at the edges of the API: bodies too large, paths that do not exist
(docs/decisions.md: every error is JSON)."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from e2e import bodies
from e2e.harness import iter_chunks, json_error

MIB = 1024 * 1024
BODY_SIZES = {"1.5 MiB": 3 * MIB // 2, "3 MiB": 3 * MIB, "30 MiB": 30 * MIB}


def padded_json(field: str, size: int) -> bytes:
    """A valid JSON object of exactly `size` bytes: `{"<field>": "aaaa..."}`."""
    head, tail = f'{{"{field}": "'.encode(), b'"}'
    return head + b"a" * (size - len(head) - len(tail)) + tail


def test_bodies_over_the_limit_answer_a_json_413_and_change_nothing(stack, api, new_id):
    """Regression: bodies larger than Django's 2.5 MiB upload limit answer a 500, and
    chunked bodies (no Content-Length) are read as empty (400), instead of the API's JSON 413."""
    opportunity_id = api.create_opportunity("E2E - cuerpos enormes")["id"]
    api.put_process(opportunity_id, bodies.data_and_appointment(new_id()))
    before = api.opportunity(opportunity_id)
    history_before = api.listing(opportunity_id, "action-history")
    targets = [
        ("PUT", f"/opportunity/update-opportunity-procces/{opportunity_id}", "cDoctor", True),
        ("POST", "/opportunity", "name", True),
        ("POST", "/auth/signin", "username", False),
        ("POST", "/auth/signin", "username", True),
    ]

    outcomes = []
    for label, size in BODY_SIZES.items():
        for method, path, field, with_token in targets:
            body = padded_json(field, size)
            for chunked in (False, True):
                with stack.session(stack.token if with_token else None) as http:
                    # A generator body is sent chunked, without Content-Length.
                    data = iter_chunks(body) if chunked else body
                    try:
                        response = http.request(method, path, data=data, headers={"Content-Type": "application/json"})
                        problem = json_error(response, 413)
                    except requests.ConnectionError as exc:
                        # urllib3 reads the answer even when the server closes while the body is
                        # still being sent; an exception here means no answer arrived at all.
                        problem = f"no response: connection closed ({exc.__class__.__name__})"
                how = "chunked" if chunked else "Content-Length"
                token = "token" if with_token else "no token"
                shown = path.replace(opportunity_id, "<id>")
                outcomes.append((f"{method} {shown}, {label}, {how}, {token}", problem))

    assert api.opportunity(opportunity_id) == before
    assert api.listing(opportunity_id, "action-history") == history_before
    failures = [f"{what}: {problem}" for what, problem in outcomes if problem]
    assert not failures, f"{len(failures)} of {len(outcomes)} requests did not answer a JSON 413:\n" + "\n".join(
        failures
    )


UNKNOWN_PATHS = ["/opportunity/update-opportunity-process/1", "/opportunity/a%2Fb/whatever", "/nope"]


@pytest.mark.parametrize("with_token", [True, False], ids=["token", "no-token"])
def test_unknown_paths_answer_a_json_404_whatever_the_method(stack, with_token):
    """Regression: PUT, POST, PATCH and DELETE on a path no route matches answer Django's
    HTML CSRF 403 page instead of the API's JSON 404."""
    outcomes = []
    with stack.session(stack.token if with_token else None) as http:
        for path in UNKNOWN_PATHS:
            for method in ("PUT", "POST", "PATCH", "DELETE", "GET"):
                kwargs: dict[str, Any] = {"json": {"cDoctor": "x"}} if method in ("PUT", "POST", "PATCH") else {}
                response = http.request(method, path, allow_redirects=False, **kwargs)
                outcomes.append((f"{method} {path}", json_error(response, 404)))
    failures = [f"{what}: {problem}" for what, problem in outcomes if problem]
    assert not failures, f"{len(failures)} of {len(outcomes)} requests did not answer a JSON 404:\n" + "\n".join(
        failures
    )
