"""Opportunities (a patient's sale), their meetings, action history and invoice attachments.

Tables and columns follow the docs/api.md "Process update", 4 and 5 (docs/development.md "Layout").
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models

from crm.admin_ui.display import clinic_datetime
from crm.search import search_text
from jobs.models import OutboxRow

from .process_fields import (
    APPOINTMENT,
    CASE,
    CUSTOMER,
    DECLARED,
    PATIENT,
    STAFF,
    ProcessFields,
    date,
    positive_int,
    text,
    time_range,
)


def new_opportunity_id() -> str:
    """Return a fresh opportunity id: 17 lowercase hex characters (fits `varchar(17)`)."""
    return secrets.token_hex(9)[:17]


class Stage(models.TextChoices):
    """Sales stages of an opportunity; new ones start in `Prospección`."""

    PROSPECCION = "Prospección", "Prospección"
    CALIFICACION = "Calificación", "Calificación"
    PROPUESTA = "Propuesta", "Propuesta"
    NEGOCIACION = "Negociación", "Negociación"
    CIERRE_GANADO = "Cierre ganado", "Cierre ganado"
    CIERRE_PERDIDO = "Cierre perdido", "Cierre perdido"


class FacturacionSubEstado(models.TextChoices):
    """Billing sub-state of a *Cierre ganado* opportunity (docs/api.md "Closing as Cierre ganado")."""

    FACTURA_DIRECTA = "factura_directa", "Factura directa"
    ORDEN_SERVICIO_PENDIENTE_FACTURA = (
        "orden_servicio_pendiente_factura",
        "O.S pendiente de factura",
    )


# The columns the admin's search looks into (through `Opportunity.search_text`).
SEARCHED_COLUMNS: tuple[str, ...] = (
    "id",
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


class Opportunity(models.Model):
    """A patient's sale in the CRM (table `opportunity`)."""

    id = models.CharField(primary_key=True, max_length=17, default=new_opportunity_id, editable=False)
    name = models.CharField("nombre", max_length=255)
    stage = models.CharField("etapa", max_length=20, choices=Stage.choices, default=Stage.PROSPECCION)
    amount = models.DecimalField("monto", max_digits=12, decimal_places=2, null=True, blank=True)

    # The process update's fields (opportunities/process_fields.py): API key, group, label, max
    # length, roles (CASE: in a list of docs/api.md "The four cases"; STAFF: staff may correct it).
    c_last_name_father = text("cLastNameFather", CUSTOMER, "apellido paterno del cliente", 100, CASE | STAFF)
    c_last_name_mother = text("cLastNameMother", CUSTOMER, "apellido materno del cliente", 100, STAFF)
    c_customer_document_type = text(
        "cCustomerDocumentType", CUSTOMER, "tipo de documento del cliente", 20, CASE | STAFF
    )
    c_customer_document = text("cCustomerDocument", CUSTOMER, "documento del cliente", 20, CASE | STAFF)
    c_patientsname = text("cPatientsname", PATIENT, "nombre del paciente", 200, CASE | STAFF)
    c_patients_paternal_last_name = text(
        "cPatientsPaternalLastName", PATIENT, "apellido paterno del paciente", 100, CASE | STAFF
    )
    c_patients_maternal_last_name = text(
        "cPatientsMaternalLastName", PATIENT, "apellido materno del paciente", 100, CASE | STAFF
    )
    c_patient_document = text("cPatientDocument", PATIENT, "documento del paciente", 20, CASE | STAFF)
    c_patient_document_type = text("cPatientDocumentType", PATIENT, "tipo de documento del paciente", 20, CASE | STAFF)
    c_clinic_history = text("cClinicHistory", PATIENT, "historia clínica", 50, CASE, db_index=True)
    c_appointment = time_range(
        "cAppointment", APPOINTMENT, "horario", 20, CASE, help_text='Rango de horario "HH:MM - HH:MM"'
    )
    c_date_reservation = date(
        "cDateReservation", APPOINTMENT, "fecha de reserva", CASE, help_text="Fecha de reserva yyyy-MM-dd"
    )
    c_doctor = text("cDoctor", APPOINTMENT, "doctor", 150, CASE)
    c_environment = text("cEnvironment", APPOINTMENT, "ambiente", 150, CASE)
    c_specialty = text("cSpecialty", APPOINTMENT, "especialidad", 150, CASE)
    c_tariff = text("cTariff", APPOINTMENT, "tarifa", 150, CASE)
    reservation_id = positive_int(
        "reservationId",
        APPOINTMENT,
        "reserva (SV)",
        help_text="ID de la reserva en SV; obligatorio cuando se envían datos de cita",
    )

    c_facturacion_sub_estado = models.CharField(
        "sub-estado de facturación",
        max_length=40,
        choices=FacturacionSubEstado.choices,
        null=True,
        blank=True,
    )
    is_presaved = models.BooleanField("pre-guardada", default=True)
    created_at = models.DateTimeField("creada", auto_now_add=True)
    modified_at = models.DateTimeField("modificada", auto_now=True)
    # Bumped by every unit of work that writes history (opportunities/versions.py): its ETag.
    version = models.PositiveIntegerField("versión", default=0, editable=False)
    # What the admin searches, folded (crm/search.py): computed by the database on every write.
    search_text = models.GeneratedField(
        expression=search_text(*SEARCHED_COLUMNS),
        output_field=models.TextField(),
        db_persist=True,
        verbose_name="texto de búsqueda",
    )

    class Meta:
        db_table = "opportunity"
        verbose_name = "oportunidad"
        verbose_name_plural = "oportunidades"
        ordering = ["-modified_at"]
        # The admin list's export (django-import-export; docs/admin.md "Exports").
        permissions = [("export_opportunity", "Can export oportunidades")]
        indexes = [
            models.Index(fields=["stage", "c_facturacion_sub_estado"], name="opportunity_stage_sub_idx"),
            # The admin list's default order (newest change first): a page reads 50 index entries.
            models.Index(fields=["-modified_at"], name="opportunity_modified_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.id})"


# The process update's fields, as declared above.
PROCESS_FIELDS = ProcessFields(DECLARED)


class Meeting(models.Model):
    """An appointment (cita) booked for an opportunity; one per SV reservation."""

    class Status(models.TextChoices):
        PLANNED = "Planned", "Planificada"

    opportunity = models.ForeignKey(
        Opportunity, on_delete=models.CASCADE, related_name="meetings", verbose_name="oportunidad"
    )
    name = models.CharField("nombre", max_length=255)
    status = models.CharField("estado", max_length=20, choices=Status.choices, default=Status.PLANNED)
    date_start = models.DateTimeField("inicio", null=True, blank=True)
    date_end = models.DateTimeField("fin", null=True, blank=True)
    doctor = models.CharField("doctor", max_length=150, blank=True, default="")
    environment = models.CharField("ambiente", max_length=150, blank=True, default="")
    specialty = models.CharField("especialidad", max_length=150, blank=True, default="")
    tariff = models.CharField("tarifa", max_length=150, blank=True, default="")
    reservation_id = models.PositiveIntegerField("reserva (SV)")
    created_at = models.DateTimeField("creada", auto_now_add=True)
    updated_at = models.DateTimeField("actualizada", auto_now=True)

    class Meta:
        db_table = "opportunity_meeting"
        verbose_name = "reunión"
        verbose_name_plural = "reuniones"
        ordering = ["date_start", "id"]
        constraints = [
            models.UniqueConstraint(fields=["opportunity", "reservation_id"], name="meeting_unique_reservation"),
        ]

    def __str__(self) -> str:
        return self.name


class ActionHistory(models.Model):
    """One audit record of something done to an opportunity (by a user, or by the poller)."""

    class Action(models.TextChoices):
        OPPORTUNITY_CREATED = "opportunity_created", "Oportunidad creada"
        OPPORTUNITY_UPDATED = "opportunity_updated", "Oportunidad actualizada"
        MEETING_CREATED = "meeting_created", "Reunión creada"
        MEETING_UPDATED = "meeting_updated", "Reunión actualizada"
        CLOSED_WON = "closed_won", "Cierre ganado"
        INVOICE_ATTACHED = "invoice_attached", "Comprobante adjuntado"
        SERVICE_ORDERS_REGISTERED = "service_orders_registered", "O.S registradas"
        SERVICE_ORDER_INVOICED = "service_order_invoiced", "O.S facturada"
        SERVICE_ORDER_INVOICE_REPLACED = "service_order_invoice_replaced", "Comprobante de O.S reemplazado"
        SERVICE_ORDER_INVOICE_VOIDED = "service_order_invoice_voided", "Comprobante de O.S anulado"

    opportunity = models.ForeignKey(
        Opportunity, on_delete=models.CASCADE, related_name="history", verbose_name="oportunidad"
    )
    action = models.CharField("acción", max_length=40, choices=Action.choices)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, verbose_name="usuario"
    )
    user_name = models.CharField("nombre de usuario", max_length=150, null=True, blank=True)
    data = models.JSONField("datos", default=dict, blank=True)
    created_at = models.DateTimeField("fecha", auto_now_add=True)
    # The opportunity's version this record's unit of work produced (null before versions existed).
    opportunity_version = models.PositiveIntegerField("versión de la oportunidad", null=True, blank=True)

    class Meta:
        db_table = "opportunity_action_history"
        verbose_name = "historial de acciones"
        verbose_name_plural = "historial de acciones"
        ordering = ["-created_at", "-id"]
        indexes = [
            # The start page's sales closed per week (closed_won records of the last weeks).
            models.Index(fields=["action", "created_at"], name="history_action_created_idx"),
            # Whether a closed_won record is its sale's first (`first_closings`): one probe each.
            models.Index(
                fields=["opportunity", "created_at", "id"],
                condition=models.Q(action="closed_won"),
                name="history_closed_won_idx",
            ),
            # An opportunity's newest records (its admin page, its filtered history list).
            models.Index(fields=["opportunity", "-created_at", "-id"], name="history_opportunity_latest_idx"),
            # The history list's default order, newest first.
            models.Index(fields=["-created_at", "-id"], name="history_created_idx"),
        ]

    def __str__(self) -> str:
        # The clinic's time, as every other time in the admin (the stored value is UTC).
        return f"{self.get_action_display()} · {clinic_datetime(self.created_at)}"


def attachment_upload_to(instance: Attachment, filename: str) -> str:
    return f"invoices/{instance.opportunity_id}/{filename}"


class Attachment(models.Model):
    """An invoice PDF (comprobante) attached to an opportunity; its file is stored under its
    SHA-256 before the row commits (`opportunities.attachment_files`).

    Unique per opportunity by SHA-256: the same PDF sent twice is stored once. `file_problem` is
    set by `manage.py attachments_check` when the file is missing or wrong and could not be
    repaired from `source_url`.
    """

    class Kind(models.TextChoices):
        COMPROBANTE_SOLES = "comprobante_soles", "Comprobante en soles"
        COMPROBANTE_DOLARES = "comprobante_dolares", "Comprobante en dólares"

    class Status(models.TextChoices):
        """Whether the comprobante is still the valid one (docs/api.md "Voided and reissued comprobantes")."""

        VIGENTE = "vigente", "Vigente"
        REEMPLAZADO = "reemplazado", "Reemplazado"
        ANULADO = "anulado", "Anulado"

    opportunity = models.ForeignKey(
        Opportunity, on_delete=models.CASCADE, related_name="attachments", verbose_name="oportunidad"
    )
    kind = models.CharField("tipo", max_length=30, choices=Kind.choices)
    file = models.FileField("archivo", upload_to=attachment_upload_to, max_length=255)
    file_name = models.CharField("nombre de archivo", max_length=255)
    size = models.PositiveBigIntegerField("tamaño (bytes)")
    sha256 = models.CharField("SHA-256", max_length=64)
    content_type = models.CharField("tipo de contenido", max_length=100, default="application/pdf")
    source_url = models.TextField("URL de origen")
    service_order_id = models.PositiveIntegerField("O.S", null=True, blank=True)
    # The invoice-mifact comprobante (its head id) this PDF belongs to: tells a voided or replaced
    # comprobante from its reissue on the opportunity page. None for direct invoices.
    invoice_result_head_id = models.IntegerField("cabecera invoice-mifact", null=True, blank=True)
    status = models.CharField("estado", max_length=15, choices=Status.choices, default=Status.VIGENTE)
    status_changed_at = models.DateTimeField("estado cambiado", null=True, blank=True)
    created_at = models.DateTimeField("creado", auto_now_add=True)
    file_problem = models.CharField("problema del archivo", max_length=200, blank=True, default="")
    file_checked_at = models.DateTimeField("archivo verificado", null=True, blank=True)

    class Meta:
        db_table = "opportunity_attachment"
        verbose_name = "comprobante adjunto"
        verbose_name_plural = "comprobantes adjuntos"
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["opportunity", "sha256"], name="attachment_unique_sha256"),
        ]
        indexes = [
            # The start page counts the rows whose file could not be repaired.
            models.Index(fields=["id"], condition=~models.Q(file_problem=""), name="attachment_file_problem"),
        ]

    def __str__(self) -> str:
        return self.file_name


class SvDelivery(OutboxRow):
    """Outbox row: one (reservation, clinic history) value to deliver to SV (docs/api.md "SV sync").

    Written in the same transaction as the process update that produced the pair; delivered
    right after the commit and, while SV fails, by `manage.py sync_sv` with exponential backoff.
    """

    class Status(models.TextChoices):  # the outbox's statuses and one of SV's own
        PENDING = "pending", "Pendiente"
        DELIVERED = "delivered", "Entregada"
        FAILED = "failed", "Fallida (sin más reintentos)"
        SUPERSEDED = "superseded", "Reemplazada por otra historia clínica"

    opportunity = models.ForeignKey(
        Opportunity, on_delete=models.CASCADE, related_name="sv_deliveries", verbose_name="oportunidad"
    )
    reservation_id = models.PositiveIntegerField("reserva (SV)")
    clinic_history = models.CharField("historia clínica", max_length=50)
    status = models.CharField("estado", max_length=20, choices=Status.choices, default=Status.PENDING)

    class Meta(OutboxRow.Meta):
        db_table = "opportunity_sv_delivery"
        verbose_name = "envío a SV"
        verbose_name_plural = "envíos a SV"
        ordering = ["-created_at", "-id"]
        # No unique pair: going back to an earlier clinic history (A -> B -> A) is a new delivery,
        # so that SV ends with the newest value. The latest row per reservation decides.
        indexes = [
            models.Index(
                fields=["next_attempt_at", "id"], condition=models.Q(status="pending"), name="sv_delivery_due_idx"
            ),
            models.Index(fields=["opportunity", "reservation_id", "-created_at"], name="sv_delivery_latest_idx"),
        ]

    def __str__(self) -> str:
        return f"SV reserva {self.reservation_id} ← {self.clinic_history} ({self.get_status_display()})"
