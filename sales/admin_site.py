"""The clinic's admin site: Spanish titles, "Ver el sitio" leading to the product's page (`/`),
and the staff's start page as its index (sales/start_page.py; docs/admin.md "The start page").

Installed through `sales.apps.ClinicAdminConfig` in `INSTALLED_APPS` (Django's documented way
to replace the default admin site), so every `@admin.register` lands here.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.template.response import TemplateResponse

from .start_page import start_page


class ClinicAdminSite(admin.AdminSite):
    site_header = "CRM Clínica · Administración"
    site_title = "CRM Clínica"
    index_title = "Inicio"
    site_url = "/"
    index_template = "sales/admin/start.html"
    # Lists need the width (1366 px screens): the start page and the breadcrumbs lead everywhere.
    enable_nav_sidebar = False

    def index(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> TemplateResponse:
        context = {"start": start_page(request=request), **(extra_context or {})}
        return super().index(request, extra_context=context)
