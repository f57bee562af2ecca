"""Service orders (O.S) of the invoicing service invoice-mifact-v3, per opportunity.

Table `opportunity_service_order`: its columns are those of docs/api.md "Service orders and the
poller", plus the poller's bookkeeping (last error, claim).
"""

from __future__ import annotations

from django.db import models
from django.db.models.fields.json import KeyTextTransform

from crm.search import search_text
from opportunities.models import Opportunity


class ServiceOrderErrorKind(models.TextChoices):
    """What the last failed check of an O.S ran into (billing/problems.py says who must act)."""

    CONFIGURATION = "configuration", "invoice-mifact sin configurar"
    CREDENTIALS = "credentials", "credenciales rechazadas"
    UNAVAILABLE = "unavailable", "invoice-mifact no responde"
    UNKNOWN_ORDER = "unknown_order", "O.S desconocida en invoice-mifact"
    BAD_RESPONSE = "bad_response", "respuesta ilegible de invoice-mifact"
    NO_COMPROBANTE = "no_comprobante", "facturada sin comprobante"
    DOWNLOAD = "download", "descarga del comprobante fallida"
    INTERNAL = "internal", "error interno del CRM"


class OpportunityServiceOrder(models.Model):
    """One O.S attached to an opportunity; pending while `facturado` is false."""

    id = models.AutoField(primary_key=True)
    opportunity = models.ForeignKey(
        Opportunity,
        on_delete=models.CASCADE,
        related_name="service_orders",
        db_column="opportunity_id",
        verbose_name="oportunidad",
    )
    service_order_id = models.IntegerField("O.S (invoice-mifact)")
    metadata = models.JSONField("metadata", null=True, blank=True)
    facturado = models.BooleanField("facturado", default=False)
    invoice_result_head_id = models.IntegerField("cabecera invoice-mifact", null=True, blank=True)
    url_soles = models.TextField("URL comprobante soles", null=True, blank=True)
    url_dolares = models.TextField("URL comprobante dólares", null=True, blank=True)
    last_checked_at = models.DateTimeField("última consulta", null=True, blank=True)
    # When it became facturado (its follow-up window starts there) and when its comprobante was
    # seen voided.
    invoiced_at = models.DateTimeField("facturada", null=True, blank=True)
    voided_at = models.DateTimeField("anulada", null=True, blank=True)
    # The polling schedule (billing/schedule.py) counts the O.S's age from here when staff
    # resumed its checks ("Reanudar consultas"), else from `created_at`.
    checks_resumed_at = models.DateTimeField("consultas reanudadas", null=True, blank=True)
    # invoice-mifact's 4xx answers in a row about this O.S, and when the poll may ask again
    # (billing/backoff.py); both cleared by an answer.
    error_streak = models.PositiveIntegerField("errores seguidos", default=0)
    retry_not_before = models.DateTimeField("reintentar desde", null=True, blank=True)
    last_error = models.TextField("último error", blank=True, default="")
    last_error_kind = models.CharField(
        "tipo de error", max_length=20, blank=True, default="", choices=ServiceOrderErrorKind.choices
    )
    claimed_until = models.DateTimeField("reservada hasta", null=True, blank=True, editable=False)
    # The poll run holding the claim (jobs/claims.py): its claims end when that run is over.
    claimed_by_run = models.ForeignKey(
        "jobs.CommandRun",
        verbose_name="reservada por la ejecución",
        null=True,
        blank=True,
        editable=False,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField("registrada", auto_now_add=True)
    updated_at = models.DateTimeField("actualizada", auto_now=True)
    # What the admin searches, folded (crm/search.py): the O.S id, and `numero_os` and
    # `descripcion` from the metadata the front-end sent. Computed by the database on every write.
    search_text = models.GeneratedField(
        expression=search_text(
            "service_order_id", KeyTextTransform("numero_os", "metadata"), KeyTextTransform("descripcion", "metadata")
        ),
        output_field=models.TextField(),
        db_persist=True,
        verbose_name="texto de búsqueda",
    )

    class Meta:
        db_table = "opportunity_service_order"
        verbose_name = "orden de servicio"
        verbose_name_plural = "órdenes de servicio"
        ordering = ["created_at", "id"]
        # The admin list's export (django-import-export; docs/admin.md "Exports").
        permissions = [("export_opportunityserviceorder", "Can export órdenes de servicio")]
        constraints = [
            models.UniqueConstraint(
                fields=["opportunity", "service_order_id"], name="service_order_unique_per_opportunity"
            ),
        ]
        indexes = [
            # "Pending service orders" (facturado = false) stays cheap however many are invoiced.
            models.Index(
                fields=["last_checked_at", "id"],
                condition=models.Q(facturado=False),
                name="service_order_pending_idx",
            ),
            # The follow-up checks of invoiced O.S, by how recently they became facturado.
            models.Index(
                fields=["invoiced_at", "last_checked_at"],
                condition=models.Q(facturado=True),
                name="service_order_follow_up_idx",
            ),
            # The same O.S id on other sales (billing.selectors.service_orders_with_shared_count,
            # shared_service_order_count: the pair is read from the index alone).
            models.Index(fields=["service_order_id", "opportunity"], name="service_order_id_sales_idx"),
            # The oldest pending O.S (the start page, the waiting list's order).
            models.Index(
                fields=["created_at", "id"],
                condition=models.Q(facturado=False),
                name="service_order_waiting_idx",
            ),
            # The admin list's default order (newest first): a page reads 50 index entries.
            models.Index(fields=["-created_at", "-id"], name="service_order_created_idx"),
        ]

    def __str__(self) -> str:
        return f"O.S {self.service_order_id} ({self.opportunity_id})"

    def _metadata_text(self, key: str) -> str:
        value = self.metadata.get(key) if isinstance(self.metadata, dict) else None
        return "" if value is None or isinstance(value, (dict, list)) else str(value).strip()

    @property
    def numero_os(self) -> str:
        """`numero_os` from the metadata the front-end sent, or ""."""
        return self._metadata_text("numero_os")

    @property
    def number(self) -> str:
        """The O.S number people know: `numero_os` from the metadata when the front-end sent one,
        else the invoice-mifact id."""
        return self._metadata_text("numero_os") or str(self.service_order_id)

    @property
    def label(self) -> str:
        """How the O.S is named in sentences: its `numero_os` ("OS-456"), else "O.S 456"."""
        return self._metadata_text("numero_os") or f"O.S {self.service_order_id}"

    @property
    def description(self) -> str:
        """`descripcion` from the metadata, or ""."""
        return self._metadata_text("descripcion")


class SaleAwaitingInvoice(Opportunity):
    """An opportunity seen as a sale waiting for its invoice (it has pending O.S): the admin's
    "Ventas esperando factura" list (billing/admin_waiting.py). No table of its own."""

    class Meta:
        proxy = True
        verbose_name = "venta esperando factura"
        verbose_name_plural = "ventas esperando factura"
        permissions = [("export_saleawaitinginvoice", "Can export ventas esperando factura")]
