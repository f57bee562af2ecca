"""The page django-axes answers once an admin login is locked out (`AXES_LOCKOUT_CALLABLE`): an
admin page in Spanish that says how long the lock lasts, what to do, and leads back to the login
(docs/admin.md "Admin-login lockouts")."""

from __future__ import annotations

from typing import Any

from axes.helpers import get_cool_off
from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse


def duration_text(minutes: int) -> str:
    """15 -> "15 minutos", 60 -> "1 hora", 90 -> "1 hora y 30 minutos"."""
    hours, rest = divmod(minutes, 60)
    parts = []
    if hours:
        parts.append(f"{hours} hora" + ("s" if hours != 1 else ""))
    if rest or not hours:
        parts.append(f"{rest} minuto" + ("s" if rest != 1 else ""))
    return " y ".join(parts)


def admin_lockout_page(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials: dict[str, Any] | None = None
) -> HttpResponse:
    cool_off = get_cool_off(request)
    context = admin.site.each_context(request) | {
        "title": "Acceso bloqueado temporalmente",
        "failure_limit": settings.AXES_FAILURE_LIMIT,
        "lock_duration": duration_text(round(cool_off.total_seconds() / 60)) if cool_off else None,
        "login_url": reverse("admin:login"),
    }
    response = TemplateResponse(
        request, "admin/crm_lockout.html", context, status=getattr(settings, "AXES_HTTP_RESPONSE_CODE", 429)
    )
    return response.render()
