"""Error pages under the admin (`/admin/`): the admin's own HTML, in Spanish, with its header
and a way back to the start page, instead of the API's JSON (docs/admin.md "Error pages").
`crm/errors.py`'s handlers call `admin_error_page` for admin paths; every other path keeps JSON."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.urls import reverse

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ErrorPage:
    title: str
    text: str
    what_to_do: str


PAGES = {
    403: ErrorPage(
        "No tiene permiso para ver esta página",
        "Su usuario no tiene el permiso que esta página necesita.",
        "Si la necesita para su trabajo, pida a un administrador del CRM que lo agregue al grupo de su rol "
        "(Ventas, Facturación o Supervisión).",
    ),
    404: ErrorPage(
        "Página no encontrada",
        "La dirección no existe en la administración, o lo que buscaba ya no está.",
        "Vuelva al inicio y búsquelo desde su lista.",
    ),
    500: ErrorPage(
        "Error interno del servidor",
        "El CRM falló al preparar esta página; el error quedó registrado.",
        "Intente de nuevo en unos minutos. Si se repite, avise a TI de la clínica con la hora y la dirección "
        "de la página.",
    ),
}


def is_admin_path(request: HttpRequest) -> bool:
    return request.path.startswith(reverse("admin:index"))


def admin_error_page(request: HttpRequest, status: int) -> HttpResponse:
    """The admin page for `status` (403, 404 or 500). A 500 is drawn without the request (no user
    menu): what failed may be the database the session and the user are read from."""
    page = PAGES[status]
    context = {"title": page.title, "error": page, "status": status, "home_url": reverse("admin:index")}
    if status == 500:
        context |= {"site_header": admin.site.site_header, "site_title": admin.site.site_title}
        html = render_to_string("admin/crm_error.html", context)
    else:
        html = render_to_string("admin/crm_error.html", admin.site.each_context(request) | context, request=request)
    return HttpResponse(html, status=status)
