"""The staff's opportunity page in the Django admin (Spanish): the opportunity with its service
orders, comprobantes, meetings, SV deliveries and action history, and the "check invoicing now"
action. Staff correct only names, amount and documents (`opportunity_correct`); no add (the
front-end creates opportunities) and no delete (their comprobantes are fiscal records).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import HttpRequest
from django.utils.html import format_html

from billing.admin import (
    CHECK_ACTION_LABEL,
    ServiceOrderInline,
    service_orders_check_now,
    user_can_check_service_orders,
)
from billing.services.registration import pending_service_orders
from crm.readonly_admin import ReadOnlyAdminMixin, pretty_json
from opportunities.admin import attachment_download_url
from opportunities.models import ActionHistory, Attachment, Meeting, Opportunity, SvDelivery
from opportunities.services import opportunity_correct


class ReadOnlyInline(ReadOnlyAdminMixin, admin.TabularInline):
    """An inline that shows rows and never adds, changes or deletes them."""

    extra = 0
    max_num = 0
    can_delete = False


class AttachmentInline(ReadOnlyInline):
    model = Attachment
    fields = ("kind", "file_name", "size", "service_order_id", "created_at", "download_link")
    readonly_fields = fields
    ordering = ("created_at", "id")

    @admin.display(description="PDF")
    def download_link(self, obj: Attachment) -> str:
        return format_html('<a href="{}" target="_blank" rel="noopener">Ver PDF</a>', attachment_download_url(obj))


class MeetingInline(ReadOnlyInline):
    model = Meeting
    fields = ("name", "status", "date_start", "date_end", "doctor", "specialty", "environment", "reservation_id")
    readonly_fields = fields
    ordering = ("date_start", "id")


class SvDeliveryInline(ReadOnlyInline):
    model = SvDelivery
    fields = ("reservation_id", "clinic_history", "status", "attempts", "next_attempt_at", "delivered_at", "last_error")
    readonly_fields = fields
    ordering = ("-created_at", "-id")
    verbose_name_plural = "envíos de historia clínica a SV"


class ActionHistoryInline(ReadOnlyInline):
    model = ActionHistory
    fields = ("created_at", "action", "user_name", "data_pretty")
    readonly_fields = fields
    ordering = ("-created_at", "-id")

    @admin.display(description="datos")
    def data_pretty(self, obj: ActionHistory) -> str:
        return pretty_json(obj.data)


@admin.register(Opportunity)
class OpportunityAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "stage", "c_facturacion_sub_estado", "is_presaved", "c_clinic_history", "modified_at")
    list_display_links = ("id", "name")
    list_filter = ("stage", "c_facturacion_sub_estado", "is_presaved")
    search_fields = (
        "=id",
        "name",
        "c_clinic_history",
        "c_customer_document",
        "c_last_name_father",
        "c_last_name_mother",
        "c_patient_document",
        "c_patientsname",
        "c_patients_paternal_last_name",
        "c_patients_maternal_last_name",
    )
    search_help_text = (
        "Buscar por id, nombre, historia clínica, documento o nombre y apellidos del cliente o del paciente."
    )
    list_per_page = 50
    ordering = ("-modified_at",)
    actions = ("check_invoice_status_now",)
    inlines = (ServiceOrderInline, AttachmentInline, MeetingInline, SvDeliveryInline, ActionHistoryInline)
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "id",
                    "name",
                    "amount",
                    "stage",
                    "c_facturacion_sub_estado",
                    "is_presaved",
                    "created_at",
                    "modified_at",
                )
            },
        ),
        (
            "Cliente",
            {"fields": ("c_last_name_father", "c_last_name_mother", "c_customer_document_type", "c_customer_document")},
        ),
        (
            "Paciente",
            {
                "fields": (
                    "c_patientsname",
                    "c_patients_paternal_last_name",
                    "c_patients_maternal_last_name",
                    "c_patient_document_type",
                    "c_patient_document",
                    "c_clinic_history",
                )
            },
        ),
        (
            "Cita",
            {
                "fields": (
                    "reservation_id",
                    "c_date_reservation",
                    "c_appointment",
                    "c_doctor",
                    "c_environment",
                    "c_specialty",
                    "c_tariff",
                )
            },
        ),
    )
    # Everything but the correctable columns.
    readonly_fields = (
        "id",
        "stage",
        "c_facturacion_sub_estado",
        "is_presaved",
        "created_at",
        "modified_at",
        "c_clinic_history",
        "reservation_id",
        "c_date_reservation",
        "c_appointment",
        "c_doctor",
        "c_environment",
        "c_specialty",
        "c_tariff",
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_check_permission(self, request: HttpRequest) -> bool:
        return user_can_check_service_orders(request)

    def save_model(self, request: HttpRequest, obj: Opportunity, form: ModelForm, change: bool) -> None:
        """Staff's corrections go through `opportunity_correct` (changed columns only, history)."""
        opportunity_correct(
            opportunity=obj, user=request.user, old_values={name: form.initial.get(name) for name in form.changed_data}
        )

    @admin.action(description=CHECK_ACTION_LABEL, permissions=["check"])
    def check_invoice_status_now(self, request: HttpRequest, queryset: QuerySet[Opportunity]) -> None:
        rows = (
            pending_service_orders().filter(opportunity_id__in=queryset.values("pk")).order_by("opportunity_id", "id")
        )
        service_orders_check_now(
            request=request,
            rows=rows,
            nothing_pending_message=(
                "Las oportunidades seleccionadas no tienen órdenes de servicio pendientes de facturación."
            ),
        )
