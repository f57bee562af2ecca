"""Django admin for clinic staff (Spanish): the action history, the comprobantes and the SV
deliveries on their own (the opportunity page is `sales.admin`).

What the admin may change is deliberately small, because every other write has rules that live
in the services (history, meetings, closing, SV delivery):

- Opportunity: only its name, amount and the customer's and patient's names and documents; each
  save writes an `opportunity_updated` history record (`"via": "admin"`) and updates only the
  changed columns, so a concurrent PUT or poller write to the stage or sub-state is never undone.
  No add (opportunities come from the front-end) and no delete (their comprobantes are fiscal
  records).
- Action history: read-only for everyone, superusers included.
- Comprobantes (attachments): read-only; they come only from downloads. The PDF is served by a
  staff-only view (`<attachment pk>/download/` under the attachment admin), never from MEDIA_ROOT.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, SuspiciousFileOperation
from django.db.models import QuerySet
from django.http import FileResponse, HttpRequest, HttpResponseRedirect
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join

from crm.admin_ui.display import clinic_datetime
from crm.admin_ui.outbox import OUTBOX_FIELDS, OUTBOX_LIST_DISPLAY, OutboxAdminMixin
from crm.admin_ui.readonly import ReadOnlyAdminMixin
from crm.admin_ui.search import FoldedSearchMixin

from .attachment_files import attachment_file_checked_open
from .history_text import history_describe, history_raw, history_user
from .models import ActionHistory, Attachment, Opportunity, SvDelivery
from .selectors import CLOSING_WAYS, first_closings
from .sv import SvNotConfigured
from .sv_outbox import sv_deliveries_retry_now


def attachment_download_url(attachment: Attachment) -> str:
    """The admin URL that streams `attachment`'s PDF to staff."""
    return reverse("admin:opportunities_attachment_download", args=[attachment.pk])


def opportunity_link(opportunity: Opportunity) -> str:
    """A link to the opportunity's admin page, named by the opportunity."""
    url = reverse("admin:opportunities_opportunity_change", args=[opportunity.pk])
    return format_html('<a href="{}">{}</a>', url, opportunity.name)


def history_html(record: ActionHistory, *, raw: bool = True) -> str:
    """The record as people read it (opportunities/history_text.py), with the stored data one
    click away (a closed <details>, unless `raw` is False) for support."""
    text = history_describe(action=record.action, data=record.data)
    details = format_html("<ul>{}</ul>", format_html_join("", "<li>{}</li>", ((line,) for line in text.details)))
    stored = format_html(
        '<details class="crm-raw"><summary>Datos técnicos</summary><pre>{}</pre></details>', history_raw(record)
    )
    return format_html(
        '<div class="crm-history"><strong>{}</strong>{}{}</div>',
        text.title,
        details if text.details else "",
        stored if raw else "",
    )


class ClosingFilter(admin.SimpleListFilter):
    """The sales closed (their first `closed_won` record), by way of closing: the list behind
    the start page's weekly chart."""

    title = "cierre de venta"
    parameter_name = "cierre"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return list(CLOSING_WAYS.items())

    def queryset(self, request: HttpRequest, queryset: QuerySet[ActionHistory]) -> QuerySet[ActionHistory]:
        if self.value() in CLOSING_WAYS:
            return queryset.filter(pk__in=first_closings(way=self.value()).values("pk"))
        return queryset


@admin.register(ActionHistory)
class ActionHistoryAdmin(FoldedSearchMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """The audit trail, as sentences: visible to staff with the view permission, never writable."""

    list_display = ("when", "opportunity_name", "what", "who")
    list_display_links = ("when",)
    list_filter = ("action", ClosingFilter, "created_at")
    search_fields = ("=opportunity__id", "opportunity__search_text__contains", "user_name__icontains")
    search_help_text = "Buscar por paciente, historia clínica, documento, id de la oportunidad o usuario."
    list_select_related = ("opportunity",)
    list_per_page = 100
    ordering = ("-created_at", "-id")
    fields = ("opportunity", "action", "who", "when", "what_with_data")
    # One count per page (of the filtered rows), not a second one of the whole table (docs/admin.md "The lists").
    show_full_result_count = False
    readonly_fields = fields

    @admin.display(description="fecha (hora de Lima)", ordering="created_at")
    def when(self, obj: ActionHistory) -> str:
        return clinic_datetime(obj.created_at)

    @admin.display(description="usuario", ordering="user_name")
    def who(self, obj: ActionHistory) -> str:
        return history_user(obj)

    @admin.display(description="oportunidad", ordering="opportunity__name")
    def opportunity_name(self, obj: ActionHistory) -> str:
        return opportunity_link(obj.opportunity)

    @admin.display(description="qué pasó")
    def what(self, obj: ActionHistory) -> str:
        return history_html(obj, raw=False)

    @admin.display(description="qué pasó")
    def what_with_data(self, obj: ActionHistory) -> str:
        return history_html(obj)


class FileProblemFilter(admin.SimpleListFilter):
    """Comprobantes whose file `manage.py attachments_check` could not repair."""

    title = "archivo"
    parameter_name = "archivo"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("con_problema", "Falta o no coincide (sin reparar)"), ("correcto", "Correcto")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == "con_problema":
            return queryset.exclude(file_problem="")
        if self.value() == "correcto":
            return queryset.filter(file_problem="")
        return queryset


@admin.register(Attachment)
class AttachmentAdmin(FoldedSearchMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """Comprobantes: read-only rows; the PDF through the staff-only download view."""

    list_display = ("file_name", "opportunity_name", "kind", "service_order_id", "size", "when", "download_link")
    list_filter = ("kind", "status", FileProblemFilter, "created_at")
    search_fields = ("=opportunity__id", "opportunity__search_text__contains", "file_name__icontains", "=sha256")
    search_help_text = "Buscar por paciente, historia clínica, id de la oportunidad, nombre de archivo o SHA-256."
    list_select_related = ("opportunity",)
    list_per_page = 50
    ordering = ("-created_at", "-id")
    # `file` is never shown as a form field: the stored name is internal and must not be edited.
    fields = (
        "opportunity",
        "kind",
        "file_name",
        "size",
        "sha256",
        "content_type",
        "source_url",
        "service_order_id",
        "status",
        "status_changed_at",
        "created_at",
        "file_problem",
        "file_checked_at",
        "download_link",
    )
    readonly_fields = fields

    @admin.display(description="PDF")
    def download_link(self, obj: Attachment) -> str:
        return format_html('<a href="{}" target="_blank" rel="noopener">Ver PDF</a>', attachment_download_url(obj))

    @admin.display(description="oportunidad", ordering="opportunity__name")
    def opportunity_name(self, obj: Attachment) -> str:
        return opportunity_link(obj.opportunity)

    @admin.display(description="creado", ordering="created_at")
    def when(self, obj: Attachment) -> str:
        return clinic_datetime(obj.created_at)

    def get_urls(self) -> list[URLPattern]:
        download = path(
            "<int:attachment_id>/download/",
            self.admin_site.admin_view(self.download_view),
            name="opportunities_attachment_download",
        )
        return [download, *super().get_urls()]

    def download_view(self, request: HttpRequest, attachment_id: int) -> HttpResponseBase:
        """Stream the PDF to an active staff user with the attachment view permission.

        `admin_view` already sends anonymous and non-staff users to the login page and marks the
        response never-cache.
        """
        attachment = get_object_or_404(Attachment, pk=attachment_id)
        if not self.has_view_permission(request, attachment):
            raise PermissionDenied
        try:
            handle = attachment_file_checked_open(attachment)
        except (OSError, SuspiciousFileOperation, ValueError):
            messages.error(request, f"El archivo del comprobante «{attachment.file_name}» no está disponible.")
            opportunity_url = reverse("admin:opportunities_opportunity_change", args=[attachment.opportunity_id])
            return HttpResponseRedirect(opportunity_url)
        response = FileResponse(handle, content_type="application/pdf", filename=attachment.file_name)
        response["Cache-Control"] = "private, no-store"
        return response


@admin.register(SvDelivery)
class SvDeliveryAdmin(FoldedSearchMixin, OutboxAdminMixin, admin.ModelAdmin):
    """The SV outbox (docs/api.md "SV sync"): what was, or still has to be, sent to the clinic system.
    The list keeps what fits a 1366 px screen; delivery time and full error on the row's page;
    "Reintentar envío a SV ahora" for Facturación (`crm.admin_ui.outbox`)."""

    list_display = ("when", "opportunity_name", "reservation_id", "clinic_history", *OUTBOX_LIST_DISPLAY)
    list_display_links = ("when",)
    list_filter = ("status", "created_at", "delivered_at")
    search_fields = (
        "=opportunity__id",
        "=reservation_id",
        "clinic_history__icontains",
        "opportunity__search_text__contains",
    )
    search_help_text = "Buscar por paciente, historia clínica, reserva o id de la oportunidad."
    list_select_related = ("opportunity",)
    list_per_page = 100
    ordering = ("-created_at", "-id")
    fields = ("opportunity", "reservation_id", "clinic_history", *OUTBOX_FIELDS)
    readonly_fields = fields
    retry_permission = "opportunities.change_svdelivery"
    retry_description = "Reintentar envío a SV ahora"
    not_configured_errors = (SvNotConfigured,)
    not_configured_message = "SV no está configurado (URL_SV); no se reintentó ningún envío."

    def outbox_retry(self, pks: Iterable[int]) -> dict[str, int]:
        return sv_deliveries_retry_now(delivery_pks=pks)

    @admin.display(description="oportunidad", ordering="opportunity__name")
    def opportunity_name(self, obj: SvDelivery) -> str:
        return opportunity_link(obj.opportunity)
