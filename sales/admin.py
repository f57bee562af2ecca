"""The staff's opportunity page in the Django admin (Spanish): the opportunity with its service
orders, comprobantes, meetings, SV deliveries and action history, and the "check invoicing now"
action. Staff correct only names, amount and documents (`opportunity_correct`); no add (the
front-end creates opportunities) and no delete (their comprobantes are fiscal records).

A closed sale (*Cierre ganado*) shows its billing first (docs/admin.md "The opportunity page"):
the summary, its O.S, its valid comprobantes, then the voided or replaced ones set apart with
their invoice-mifact head id; the customer, patient and appointment data, meetings, SV deliveries
and history follow, folded.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.contrib import admin
from django.db.models import Exists, OuterRef, Q, QuerySet, Subquery
from django.forms import ModelForm
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from billing.admin import ServiceOrderInline
from billing.admin_checks import CHECK_ACTION_LABEL, opportunities_check_now, user_can_check_service_orders
from billing.admin_waiting import patient_name
from billing.problems import service_order_problem
from billing.selectors import service_orders_pending
from crm.admin_ui.display import clinic_datetime, waiting_time
from crm.admin_ui.export import ListExportMixin
from crm.admin_ui.readonly import ReadOnlyAdminMixin
from crm.admin_ui.search import FoldedSearchMixin
from opportunities.admin import attachment_download_url
from opportunities.models import PROCESS_FIELDS, Attachment, Meeting, Opportunity, Stage, SvDelivery
from opportunities.process_fields import Group, Role
from opportunities.services import opportunity_correct

from .admin_history import opportunity_history_section


def opportunity_is_closed(opportunity: Opportunity | None) -> bool:
    """A sale closed as *Cierre ganado*: its page shows the billing first."""
    return opportunity is not None and opportunity.stage == Stage.CIERRE_GANADO


# What `is_presaved` means, for people: a sale is finished once its invoice is attached.
CLOSING_PENDING = "Pendiente de cierre"
CLOSING_DONE = "Cerrada"


class ReadOnlyInline(ReadOnlyAdminMixin, admin.TabularInline):
    """An inline that shows rows and never adds, changes or deletes them."""

    extra = 0
    max_num = 0
    can_delete = False

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.fields  # every column shown is read-only


class AttachmentSection(ReadOnlyInline):
    """What both comprobante sections share: the valid ones (`valid`) or the voided and replaced
    ones, and their columns."""

    model = Attachment
    valid: ClassVar[bool]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Attachment]:
        rows = super().get_queryset(request)
        vigente = Q(status=Attachment.Status.VIGENTE)
        return rows.filter(vigente) if self.valid else rows.exclude(vigente)

    @admin.display(description="PDF")
    def download_link(self, obj: Attachment) -> str:
        return format_html('<a href="{}" target="_blank" rel="noopener">Ver PDF</a>', attachment_download_url(obj))

    @admin.display(description="adjuntado")
    def created(self, obj: Attachment) -> str:
        return clinic_datetime(obj.created_at)


class AttachmentInline(AttachmentSection):
    """The valid (`vigente`) comprobantes."""

    valid = True
    fields = ("kind", "file_name", "size", "service_order_id", "invoice_result_head_id", "created", "download_link")
    ordering = ("created_at", "id")
    verbose_name = "comprobante vigente"
    verbose_name_plural = "comprobantes vigentes"


class PastAttachmentInline(AttachmentSection):
    """Voided or replaced comprobantes, set apart below the valid ones, each labelled with the
    invoice-mifact head id it belonged to; shown only when there is one."""

    valid = False
    fields = ("kind", "file_name", "service_order_id", "past_status", "status_changed", "download_link")
    ordering = ("-status_changed_at", "-id")
    verbose_name = "comprobante anulado o reemplazado"
    verbose_name_plural = "comprobantes anulados o reemplazados (ya no valen)"

    @admin.display(description="estado")
    def past_status(self, obj: Attachment) -> str:
        head = f"cabecera {obj.invoice_result_head_id}" if obj.invoice_result_head_id else "sin cabecera"
        return format_html('<span class="crm-alert">{} ({})</span>', obj.get_status_display(), head)

    @admin.display(description="desde")
    def status_changed(self, obj: Attachment) -> str:
        return clinic_datetime(obj.status_changed_at)


class MeetingInline(ReadOnlyInline):
    model = Meeting
    fields = ("name", "status", "date_start", "date_end", "doctor", "specialty", "environment", "reservation_id")
    ordering = ("date_start", "id")
    classes = ("collapse",)


class SvDeliveryInline(ReadOnlyInline):
    model = SvDelivery
    fields = ("reservation_id", "clinic_history", "status", "attempts", "next_attempt_at", "delivered_at", "last_error")
    ordering = ("-created_at", "-id")
    verbose_name_plural = "envíos de historia clínica a SV"
    classes = ("collapse",)


class ClosingStateFilter(admin.SimpleListFilter):
    """`is_presaved`, named for what it means."""

    title = "cierre"
    parameter_name = "cierre"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("pendiente", CLOSING_PENDING), ("cerrada", CLOSING_DONE)]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Opportunity]) -> QuerySet[Opportunity]:
        if self.value() == "pendiente":
            return queryset.filter(is_presaved=True)
        if self.value() == "cerrada":
            return queryset.filter(is_presaved=False)
        return queryset


class AwaitingInvoiceFilter(admin.SimpleListFilter):
    """Opportunities with pending O.S."""

    title = "esperando factura"
    parameter_name = "esperando_factura"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("si", "Sí"), ("no", "No")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Opportunity]) -> QuerySet[Opportunity]:
        pending = Exists(service_orders_pending().filter(opportunity=OuterRef("pk")))
        if self.value() == "si":
            return queryset.filter(pending)
        if self.value() == "no":
            return queryset.exclude(pending)
        return queryset


@admin.register(Opportunity)
class OpportunityAdmin(ListExportMixin, FoldedSearchMixin, admin.ModelAdmin):
    """The list keeps what fits a 1366 px screen (the id, documents and appointment are on each
    opportunity's page); the search ignores case and accents (crm/search.py)."""

    list_display = (
        "name",
        "patient",
        "c_clinic_history",
        "stage",
        "sub_state",
        "closing_state",
        "awaiting_invoice",
        "modified",
    )
    list_display_links = ("name",)
    list_filter = ("stage", "c_facturacion_sub_estado", ClosingStateFilter, AwaitingInvoiceFilter)
    search_fields = ("=id", "search_text__contains", "service_orders__search_text__contains")
    search_help_text = (
        "Buscar por nombre, paciente, cliente, documento, historia clínica, número de O.S o id (sin importar "
        "mayúsculas ni tildes)."
    )
    list_per_page = 50
    ordering = ("-modified_at",)
    # One count per page (of the filtered rows), not a second one of the whole table (docs/admin.md "The lists").
    show_full_result_count = False
    actions = ("check_invoice_status_now",)
    inlines = (
        ServiceOrderInline,
        AttachmentInline,
        PastAttachmentInline,
        MeetingInline,
        SvDeliveryInline,
    )
    change_form_template = "sales/admin/opportunity_change_form.html"
    fieldsets = (
        (
            None,
            {
                "fields": (
                    ("name", "id"),
                    ("amount", "stage"),
                    ("c_facturacion_sub_estado", "closing_state_detail"),
                    ("created_at", "modified_at"),
                )
            },
        ),
        (Group.CUSTOMER.value, {"fields": PROCESS_FIELDS.columns(Group.CUSTOMER)}),
        (Group.PATIENT.value, {"fields": PROCESS_FIELDS.columns(Group.PATIENT)}),
        (Group.APPOINTMENT.value, {"fields": PROCESS_FIELDS.columns(Group.APPOINTMENT)}),
    )
    # Everything but the correctable columns.
    readonly_fields = (
        "id",
        "stage",
        "c_facturacion_sub_estado",
        "closing_state_detail",
        "created_at",
        "modified_at",
        *(field.column for field in PROCESS_FIELDS if Role.STAFF not in field.roles),
    )

    def get_fieldsets(self, request: HttpRequest, obj: Opportunity | None = None) -> Any:
        """A closed sale folds its customer, patient and appointment data (its billing comes first)."""
        fieldsets = super().get_fieldsets(request, obj)
        if not opportunity_is_closed(obj):
            return fieldsets
        return [
            (name, {**options, "classes": ("collapse",)}) if name else (name, options) for name, options in fieldsets
        ]

    def get_inline_instances(self, request: HttpRequest, obj: Opportunity | None = None) -> list[Any]:
        """Without the voided-or-replaced section while there is none."""
        instances = super().get_inline_instances(request, obj)
        if obj is not None and obj.attachments.exclude(status=Attachment.Status.VIGENTE).exists():
            return instances
        return [inline for inline in instances if not isinstance(inline, PastAttachmentInline)]

    def render_change_form(self, request: HttpRequest, context: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        """Split the inlines for the template: billing (O.S, comprobantes) and the rest; then the
        history section (sales/admin_history.py)."""
        formsets = context.get("inline_admin_formsets", [])
        billing_inlines = (ServiceOrderInline, AttachmentInline, PastAttachmentInline)
        billing = [f for f in formsets if isinstance(f.opts, billing_inlines)]
        obj = kwargs.get("obj")
        context.update(
            billing_first=opportunity_is_closed(obj),
            billing_inline_formsets=billing,
            other_inline_formsets=[f for f in formsets if f not in billing],
            history=opportunity_history_section(request=request, opportunity=obj) if obj else None,
        )
        return super().render_change_form(request, context, *args, **kwargs)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Opportunity]:
        """With, per opportunity, since when its oldest pending O.S waits and the error kind of
        its most recently failed one (two subqueries: the list's query count stays flat)."""
        pending = service_orders_pending().filter(opportunity=OuterRef("pk"))
        failed = pending.exclude(last_error="").order_by("-last_checked_at", "-id")
        return (
            super()
            .get_queryset(request)
            .annotate(
                waiting_since=Subquery(pending.order_by("created_at", "id").values("created_at")[:1]),
                failed_error=Subquery(failed.values("last_error")[:1]),
                failed_kind=Subquery(failed.values("last_error_kind")[:1]),
            )
        )

    @admin.display(description="paciente", ordering="c_patients_paternal_last_name")
    def patient(self, obj: Opportunity) -> str:
        return patient_name(obj)

    @admin.display(description="cierre", ordering="is_presaved")
    def closing_state(self, obj: Opportunity) -> str:
        return CLOSING_PENDING if obj.is_presaved else CLOSING_DONE

    @admin.display(description="estado de cierre")
    def closing_state_detail(self, obj: Opportunity) -> str:
        if obj.is_presaved:
            return f"{CLOSING_PENDING} (pre-guardada: falta el comprobante de la venta)"
        return f"{CLOSING_DONE} (comprobante adjunto)"

    @admin.display(description="esperando factura", ordering="waiting_since")
    def awaiting_invoice(self, obj: Any) -> str:
        if obj.waiting_since is None:
            return "-"
        waiting = format_html(
            '<a href="{}?q={}">{}</a>',
            reverse("admin:billing_saleawaitinginvoice_changelist"),
            obj.pk,
            waiting_time(obj.waiting_since),
        )
        problem = service_order_problem(last_error=obj.failed_error or "", kind=obj.failed_kind or "")
        if problem is None:
            return waiting
        return format_html(
            '{}<br><span class="crm-problem crm-actor-{}">'
            '<strong class="crm-who">Con error: debe actuar {}</strong></span>',
            waiting,
            problem.responsible.value,
            problem.who,
        )

    @admin.display(description="facturación", ordering="c_facturacion_sub_estado")
    def sub_state(self, obj: Opportunity) -> str:
        return obj.get_c_facturacion_sub_estado_display() or "-"

    @admin.display(description="modificada", ordering="modified_at")
    def modified(self, obj: Opportunity) -> str:
        return clinic_datetime(obj.modified_at)

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
        opportunities_check_now(request=request, opportunities=queryset)
