"""Service orders (O.S) of the invoicing service invoice-mifact-v3, per opportunity.

Table `opportunity_service_order`, the columns of the docs/api.md "Service orders and the poller" plus
`last_error` and `claimed_until` (the poller's claim, docs/api.md "Service orders and the poller").
"""

from __future__ import annotations

from django.db import models

from opportunities.models import Opportunity


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
    # seen voided (docs/api.md "Voided and reissued comprobantes").
    invoiced_at = models.DateTimeField("facturada", null=True, blank=True)
    voided_at = models.DateTimeField("anulada", null=True, blank=True)
    last_error = models.TextField("último error", blank=True, default="")
    claimed_until = models.DateTimeField("reservada hasta", null=True, blank=True, editable=False)
    created_at = models.DateTimeField("creada", auto_now_add=True)
    updated_at = models.DateTimeField("actualizada", auto_now=True)

    class Meta:
        db_table = "opportunity_service_order"
        verbose_name = "orden de servicio"
        verbose_name_plural = "órdenes de servicio"
        ordering = ["created_at", "id"]
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
        ]

    def __str__(self) -> str:
        return f"O.S {self.service_order_id} ({self.opportunity_id})"
