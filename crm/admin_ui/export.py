"""Exporting an admin list as staff see it (django-import-export; docs/admin.md "Exports"): the
list's columns with their captions, its rows with the filters, search and order in force, as
Excel (XLSX) or CSV in UTF-8 with a byte-order mark, so that Excel opens the accents intact.

A list offers *Exportar* to users with its model's `export_<model>` permission (and its view
permission); the roles grant it (sales/roles.py).
"""

from __future__ import annotations

import datetime as dt
import html
import re
from collections.abc import Callable
from typing import Any

from django.contrib.admin.utils import display_for_field, display_for_value, label_for_field, lookup_field
from django.db import models
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import strip_tags
from django.utils.text import capfirst, slugify
from import_export import resources
from import_export.admin import ExportMixin
from import_export.fields import Field
from import_export.formats.base_formats import CSV, XLSX
from import_export.forms import ExportForm

from crm.admin_ui.display import clinic_datetime

EMPTY = "-"
_LINE_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)
_SPACES = re.compile(r"\s+")


def cell_text(value: Any) -> str:
    """A list cell as plain text: a line break becomes a space, tags go, entities are decoded."""
    return _SPACES.sub(" ", html.unescape(strip_tags(_LINE_BREAK.sub(" ", str(value))))).strip()


def column_value(model_admin: Any, name: str, obj: Any) -> str:
    """What the list shows in column `name` for `obj`, as text (the admin's own lookup)."""
    field, attr, value = lookup_field(name, obj, model_admin)
    if isinstance(value, bool) or getattr(attr, "boolean", False):
        return EMPTY if value is None else ("Sí" if value else "No")
    if isinstance(value, dt.datetime):
        return clinic_datetime(value)
    if field is not None and not isinstance(field, models.ForeignObjectRel):
        return cell_text(display_for_field(value, field, EMPTY))
    return cell_text(display_for_value(value, EMPTY))


def _column(model_admin: Any, name: str) -> Callable[[Any], str]:
    return lambda obj: column_value(model_admin, name, obj)


def list_resource(model_admin: Any, request: HttpRequest) -> type[resources.ModelResource]:
    """A resource whose fields are the list's columns, in order, captioned as in the list."""
    names = [name for name in model_admin.get_list_display(request) if name != "action_checkbox"]
    attrs: dict[str, Any] = {
        name: Field(
            column_name=capfirst(str(label_for_field(name, model_admin.model, model_admin))),
            dehydrate_method=_column(model_admin, name),
        )
        for name in names
    }
    meta = {"model": model_admin.model, "fields": names, "export_order": names}
    attrs["Meta"] = type("Meta", (), {**meta, "name": str(model_admin.opts.verbose_name_plural)})
    return type(f"{model_admin.model.__name__}ListResource", (resources.ModelResource,), attrs)


_SHEET_TITLE_FORBIDDEN = re.compile(r"[\[\]:*?/\\]")


def sheet_title(name: str) -> str:
    """An Excel sheet name: at most 31 characters, none of []:*?/\\."""
    return _SHEET_TITLE_FORBIDDEN.sub(" ", capfirst(name))[:31].strip()


class Utf8CSV(CSV):
    """CSV whose content type names its charset (the file starts with the BOM Excel needs)."""

    CONTENT_TYPE = "text/csv; charset=utf-8"


class ListExportForm(ExportForm):
    """The columns are the list's: nothing to pick but the format, XLSX first and already chosen
    (the library's empty "---" choice would make a click on *Exportar* an error)."""

    def __init__(self, formats: Any, resources: Any, **kwargs: Any) -> None:
        super().__init__(formats, resources, **kwargs)
        field = self.fields["format"]
        field.choices = [choice for choice in field.choices if choice[0] != ""]
        field.initial = "0"


class ListExportMixin(ExportMixin):
    """*Exportar* on a `ModelAdmin`'s list: a page to pick XLSX or CSV, then the file."""

    export_formats = (XLSX, Utf8CSV)
    export_form_class = ListExportForm
    to_encoding = "utf-8-sig"  # CSV: the BOM tells Excel the file is UTF-8

    def get_export_resource_classes(self, request: HttpRequest) -> list[type[resources.ModelResource]]:
        return [list_resource(self, request)]

    def has_export_permission(self, request: HttpRequest) -> bool:
        return bool(super().has_export_permission(request)) and bool(self.has_view_permission(request))

    def get_data_for_export(self, request: HttpRequest, queryset: Any, **kwargs: Any) -> Any:
        data = super().get_data_for_export(request, queryset, **kwargs)
        data.title = sheet_title(str(self.model._meta.verbose_name_plural))  # the XLSX sheet's name
        return data

    def get_export_filename(self, request: HttpRequest, queryset: Any, file_format: Any) -> str:
        name = slugify(str(self.model._meta.verbose_name_plural))
        return f"{name}-{timezone.localdate().isoformat()}.{file_format.get_extension()}"
