"""How times read for clinic staff (the admin): one format, in the clinic's time zone
(`TIME_ZONE`, America/Lima), and waiting times in Spanish words."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone
from django.utils.dateformat import format as date_format

CLINIC_DATETIME_FORMAT = "d/m/Y H:i"


def clinic_datetime(value: dt.datetime | None, *, empty: str = "-") -> str:
    """`value` in the clinic's time zone as `dd/mm/yyyy HH:MM`, or `empty` for None."""
    if value is None:
        return empty
    return date_format(timezone.localtime(value), CLINIC_DATETIME_FORMAT)


def waiting_time(since: dt.datetime | None, now: dt.datetime | None = None, *, empty: str = "-") -> str:
    """How long ago `since` was, in Spanish and rounded down to its largest unit: "45 min",
    "3 h 20 min", "2 días 4 h", "3 semanas"."""
    if since is None:
        return empty
    seconds = max(0, int(((now or timezone.now()) - since).total_seconds()))
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if seconds < 60:
        return "menos de 1 min"
    if hours < 1:
        return f"{minutes} min"
    if days < 1:
        rest = minutes - hours * 60
        return f"{hours} h {rest} min" if rest else f"{hours} h"
    if days < 14:
        rest = hours - days * 24
        unit = "día" if days == 1 else "días"
        return f"{days} {unit} {rest} h" if rest else f"{days} {unit}"
    return f"{days // 7} semanas"
