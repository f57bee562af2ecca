"""`/`: a small page that names the product and leads to the admin and the API docs (the
admin's "Ver el sitio" link); JSON with the same links for clients that ask for JSON
(`Accept: application/json`). Every other unknown path stays a JSON 404 (crm/urls.py)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.cache import patch_vary_headers

from crm.errors import error_body

PRODUCT_NAME = "CRM de la clínica"
PRODUCT_SUMMARY = (
    "Oportunidades de venta de la clínica, su cierre con factura directa u órdenes de servicio (O.S) "
    "y la consulta de facturación en invoice-mifact."
)


def _links() -> list[dict[str, Any]]:
    return [
        {
            "rel": "admin",
            "title": "Administración (personal de la clínica)",
            "href": reverse("admin:index"),
            "description": "Ventas esperando factura, órdenes de servicio, historial y procesos automáticos.",
        },
        {
            "rel": "docs",
            "title": "Documentación de la API (Swagger UI)",
            "href": reverse("swagger-ui"),
            "description": "Cada ruta de la API, con ejemplos, para quien la integra.",
        },
        {
            "rel": "redoc",
            "title": "Documentación de la API (ReDoc)",
            "href": reverse("redoc"),
            "description": "La misma documentación, para leer.",
        },
        {
            "rel": "schema",
            "title": "Esquema OpenAPI",
            "href": reverse("schema"),
            "description": "El esquema OpenAPI 3 de la API.",
        },
        {
            "rel": "health",
            "title": "Estado del servicio",
            "href": reverse("health"),
            "description": "Base de datos y consulta periódica de facturas.",
        },
    ]


def home(request: HttpRequest) -> HttpResponse:
    """GET or HEAD `/`: HTML, or JSON when the client prefers `application/json`."""
    if request.method not in ("GET", "HEAD"):
        response: HttpResponse = JsonResponse(error_body(405, "Método no permitido"), status=405)
        response["Allow"] = "GET, HEAD"
        return response
    links = _links()
    if request.get_preferred_type(["text/html", "application/json"]) == "application/json":
        response = JsonResponse({"name": PRODUCT_NAME, "description": PRODUCT_SUMMARY, "links": links})
    else:
        response = render(
            request, "crm/home.html", {"name": PRODUCT_NAME, "description": PRODUCT_SUMMARY, "links": links}
        )
    patch_vary_headers(response, ["Accept"])
    return response
