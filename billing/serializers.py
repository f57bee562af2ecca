"""Output serializers of the billing API (CONTRACT.md section 4, "Service order")."""
from __future__ import annotations

from rest_framework import serializers

from opportunities.fields import LocalDateTimeField

from .models import OpportunityServiceOrder


class ServiceOrderOutputSerializer(serializers.ModelSerializer):
    """One O.S of an opportunity with its invoicing state."""

    serviceOrderId = serializers.IntegerField(source="service_order_id")
    metadata = serializers.JSONField(allow_null=True)
    invoiceResultHeadId = serializers.IntegerField(source="invoice_result_head_id", allow_null=True)
    urlSoles = serializers.CharField(source="url_soles", allow_null=True)
    urlDolares = serializers.CharField(source="url_dolares", allow_null=True)
    lastCheckedAt = LocalDateTimeField(source="last_checked_at", allow_null=True)
    lastError = serializers.CharField(source="last_error")
    createdAt = LocalDateTimeField(source="created_at")
    updatedAt = LocalDateTimeField(source="updated_at")

    class Meta:
        model = OpportunityServiceOrder
        fields = ["serviceOrderId", "metadata", "facturado", "invoiceResultHeadId", "urlSoles", "urlDolares",
                  "lastCheckedAt", "lastError", "createdAt", "updatedAt"]
        read_only_fields = fields
