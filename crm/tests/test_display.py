"""Times for clinic staff: one format in the clinic's zone, waiting times in Spanish words."""

from __future__ import annotations

import datetime as dt

import pytest

from crm.admin_ui.display import clinic_datetime, waiting_time

NOW = dt.datetime(2026, 3, 2, 20, 0, tzinfo=dt.UTC)


def test_clinic_datetime_is_lima_time() -> None:
    assert clinic_datetime(NOW) == "02/03/2026 15:00"  # UTC-5
    assert clinic_datetime(None) == "-" and clinic_datetime(None, empty="nunca") == "nunca"


@pytest.mark.parametrize(
    ("ago", "text"),
    [
        (dt.timedelta(seconds=20), "menos de 1 min"),
        (dt.timedelta(minutes=45), "45 min"),
        (dt.timedelta(hours=3), "3 h"),
        (dt.timedelta(hours=3, minutes=20), "3 h 20 min"),
        (dt.timedelta(days=1), "1 día"),
        (dt.timedelta(days=2, hours=4), "2 días 4 h"),
        (dt.timedelta(days=10), "10 días"),
        (dt.timedelta(days=22), "3 semanas"),
        (dt.timedelta(seconds=-5), "menos de 1 min"),
    ],
)
def test_waiting_time(ago: dt.timedelta, text: str) -> None:
    assert waiting_time(NOW - ago, NOW) == text
