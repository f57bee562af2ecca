"""Who may use the API: a user an administrator switches off loses access at once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from e2e.harness import GUNICORN_WORKERS, json_error

#: Requests made with each token after the change.
REQUESTS = 8
#: Most requests made with each token before the change, to reach both gunicorn workers.
WARM_UP_LIMIT = 60


def test_a_deactivated_or_deleted_user_loses_api_access_with_the_very_next_request(stack, api):
    """Regression: the API trusted a cached copy of the token's user for up to 60 s,
    so a deactivated or deleted user kept access for a minute."""
    users = {"deactivated": "e2e-baja", "deleted": "e2e-borrado"}
    password = "e2e-clave-Temporal-2026"
    creates = "; ".join(f"User.objects.create_user({name!r}, password={password!r})" for name in users.values())
    stack.manage_ok(
        "shell", "-c", f"from django.contrib.auth import get_user_model; User = get_user_model(); {creates}"
    )
    opportunity_id = api.create_opportunity("E2E - acceso revocado")["id"]
    sessions = {case: stack.session(stack.sign_in(name, password)) for case, name in users.items()}
    try:
        path = f"/opportunity/{opportunity_id}"
        for case, http in sessions.items():
            # Until every worker has served this user (and so may have remembered it).
            # Four at a time: while one worker is busy, another must take a request.
            since = stack.log_offset("gunicorn")
            for _ in range(WARM_UP_LIMIT // 4):
                with ThreadPoolExecutor(4) as pool:
                    for response in pool.map(lambda _, http=http: http.get(path), range(4)):
                        assert response.status_code == 200, (case, response.text[:300])
                if len(stack.workers_that_served(path, since)) == GUNICORN_WORKERS:
                    break
            else:
                raise AssertionError(f"{WARM_UP_LIMIT} requests did not reach all {GUNICORN_WORKERS} workers")

        # As an administrator does it (the admin saves the user; it deletes the instance).
        stack.manage_ok(
            "shell",
            "-c",
            "from django.contrib.auth import get_user_model; User = get_user_model(); "
            f"user = User.objects.get(username={users['deactivated']!r}); user.is_active = False; "
            f"user.save(); User.objects.get(username={users['deleted']!r}).delete()",
        )

        outcomes = []
        for case, http in sessions.items():
            for n in range(1, REQUESTS + 1):
                outcomes.append((f"{case}, request {n}", json_error(http.get(path), 401)))
    finally:
        for http in sessions.values():
            http.close()
    failures = [f"{what}: {problem}" for what, problem in outcomes if problem]
    assert not failures, "still served after the change:\n" + "\n".join(failures)
    assert api.get(path).status_code == 200, "other users keep their access"
