"""PostgreSQL connection options: persistent connections with health checks, and server-side
binding with prepared statements, which PgBouncer in transaction mode needs turned off
(`DB_PREPARE_THRESHOLD=none`)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from django.db import connection

from devtools.harness import settings_run

ROOT = Path(__file__).resolve().parents[2]


def load_settings(code: str, **variables: str) -> subprocess.CompletedProcess:
    """Run `code` in a fresh interpreter with the settings of a PostgreSQL `DATABASE_URL`."""
    return settings_run(code, {"DATABASE_URL": "postgres://postgres@127.0.0.1:5432/unused", **variables})


def postgres_options(**variables: str) -> dict:
    code = "import json; from django.conf import settings; print(json.dumps(settings.DATABASES['default']['OPTIONS']))"
    done = load_settings(code, **variables)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_prepared_statements_are_on_by_default_and_can_be_turned_off():
    assert postgres_options() == {"server_side_binding": True, "prepare_threshold": 5}
    assert postgres_options(DB_PREPARE_THRESHOLD="none")["prepare_threshold"] is None
    assert postgres_options(DB_PREPARE_THRESHOLD="0")["prepare_threshold"] == 0
    assert postgres_options(DB_SERVER_SIDE_BINDING="false")["server_side_binding"] is False


def test_a_bad_prepare_threshold_is_refused():
    done = load_settings("import django; django.setup()", DB_PREPARE_THRESHOLD="often")
    assert done.returncode != 0 and "DB_PREPARE_THRESHOLD" in done.stderr


@pytest.mark.skipif(connection.vendor != "postgresql", reason="prepared statements are a PostgreSQL feature")
@pytest.mark.django_db(transaction=True)
def test_the_process_update_statements_get_prepared(api_client, make_opportunity, settings):
    if connection.settings_dict["OPTIONS"].get("prepare_threshold") is None:
        pytest.skip("DB_PREPARE_THRESHOLD=none in this run")
    opportunity = make_opportunity()
    url = f"/opportunity/update-opportunity-procces/{opportunity.pk}"
    for attempt in range(8):
        body = {
            "cDoctor": f"Dr. {attempt}",
            "cAppointment": "15:30 - 16:00",
            "cDateReservation": "2026-03-02",
            "reservationId": 98765,
        }
        assert api_client.put(url, body, format="json").status_code == 200
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        prepared = [row[0] for row in cursor.fetchall()]
    assert any(sql.startswith('SELECT "opportunity"."id"') and "FOR UPDATE" in sql for sql in prepared), prepared
    assert any(sql.startswith('INSERT INTO "opportunity_action_history"') for sql in prepared), prepared


def connection_settings(**variables: str) -> tuple:
    code = (
        "from django.conf import settings; d = settings.DATABASES['default']; "
        "print(d['CONN_MAX_AGE'], d['CONN_HEALTH_CHECKS'])"
    )
    done = load_settings(code, **variables)
    assert done.returncode == 0, done.stderr
    return tuple(done.stdout.split())


def test_postgresql_keeps_connections_and_checks_them_before_each_request():
    assert connection_settings() == ("600", "True")
    assert connection_settings(CONN_MAX_AGE="60") == ("60", "True")
    # CONN_MAX_AGE=0 opens one connection per request: nothing to check.
    assert connection_settings(CONN_MAX_AGE="0") == ("0", "False")


def test_sqlite_opens_a_connection_per_request_unless_told_otherwise(tmp_path):
    sqlite = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    assert connection_settings(DATABASE_URL=sqlite) == ("0", "False")
    assert connection_settings(DATABASE_URL=sqlite, CONN_MAX_AGE="600") == ("600", "True")


def test_relative_paths_are_the_project_folders_whatever_folder_a_command_starts_in(tmp_path):
    """Cron starts commands in the user's home: a `.env` with `sqlite:///db.sqlite3` and
    `MEDIA_ROOT=media/` must still mean the project's database and media."""
    code = (
        "import json; from django.conf import settings; "
        "print(json.dumps([settings.DATABASES['default']['NAME'], str(settings.MEDIA_ROOT), "
        "str(settings.INVOICE_DOWNLOAD_DIR)]))"
    )
    settings = {"DATABASE_URL": "sqlite:///db.sqlite3", "MEDIA_ROOT": "media/", "INVOICE_DOWNLOAD_DIR": "var/downloads"}
    done = settings_run(code, {**settings, "PYTHONPATH": str(ROOT)}, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [str(ROOT / "db.sqlite3"), str(ROOT / "media"), str(ROOT / "var" / "downloads")]
