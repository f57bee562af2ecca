"""Input and output serializers of the API (docs/api.md).

Keys are the front-end's camelCase names. The process update's fields (customer, patient,
appointment) are not written here: each is built from its declaration in `Opportunity`
(opportunities/process_fields.py).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from billing.models import OpportunityServiceOrder
from billing.schedule import service_order_next_check_at
from crm.fields import (
    AppointmentRangeField,
    HttpUrlField,
    LocalDateTimeField,
    PositiveInt32Field,
    ReservationDateField,
    StrictCharField,
)
from opportunities.models import PROCESS_FIELDS, ActionHistory, Attachment, FacturacionSubEstado, Meeting, Stage
from opportunities.process_fields import Kind, ProcessField

from .attachment_links import AttachmentLink, attachment_link_issue


def _process_input_field(field: ProcessField) -> serializers.Field:
    """The input field of a declared process field. null and blank are accepted and mean "not
    sent" (docs/api.md "Process update")."""
    options: dict[str, Any] = {"required": False, "allow_null": True, "help_text": field.help_text or None}
    if field.kind is Kind.DATE:
        return ReservationDateField(**options)
    if field.kind is Kind.POSITIVE_INT:
        return PositiveInt32Field(**options)
    text_field = AppointmentRangeField if field.kind is Kind.TIME_RANGE else StrictCharField
    return text_field(allow_blank=True, max_length=field.max_length, **options)


def _process_output_field(field: ProcessField) -> serializers.Field:
    """The output field of a declared process field."""
    output_field = {Kind.DATE: serializers.DateField, Kind.POSITIVE_INT: serializers.IntegerField}.get(
        field.kind, serializers.CharField
    )
    return output_field(source=field.column, allow_null=field.model_field.null, read_only=True)


METADATA_MAX_CHARS = 20_000
METADATA_MAX_DEPTH = 10
SERVICE_ORDER_KEY_RE = re.compile(r"[0-9]{1,10}")


def _metadata_problem(value: Any) -> str | None:
    """Why `value` cannot be stored as O.S metadata, or None. Walks iteratively (no recursion
    limit to hit): nesting deeper than `METADATA_MAX_DEPTH`, NUL or lone surrogates in any
    string, and non-finite numbers (JSON columns refuse them) are refused."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > METADATA_MAX_DEPTH:
            return f"La metadata no puede tener más de {METADATA_MAX_DEPTH} niveles de anidación."
        if isinstance(item, str):
            if "\x00" in item or any("\ud800" <= ch <= "\udfff" for ch in item):
                return "La metadata contiene caracteres no permitidos (NUL o sustitutos Unicode)."
        elif isinstance(item, float) and not math.isfinite(item):
            return "La metadata contiene un número no finito."
        elif isinstance(item, dict):
            stack.extend((key, depth + 1) for key in item)
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
    return None


IGNORED_FIELDS_HELP = (
    "Claves de primer nivel del cuerpo que este endpoint no conoce o no permite escribir, y que "
    "se ignoraron (ordenadas; vacío si ninguna): p. ej. una errata como `doctor` por `cDoctor`."
)


def ignored_fields(serializer: serializers.Serializer, body: dict[str, Any]) -> list[str]:
    """The top-level keys of `body` that `serializer` has no field for, sorted: DRF drops them
    silently, and the response lists them so that a typo does not pass unnoticed."""
    return sorted(key for key in body if key not in serializer.fields)


def drop_unsent(value: Any) -> Any:
    """Remove keys whose value is null or blank text: such fields count as not sent (docs/api.md "Process update")."""
    if not isinstance(value, dict):
        return value
    return {
        key: item
        for key, item in value.items()
        if item is not None and not (isinstance(item, str) and not item.strip())
    }


class FacturasInputSerializer(serializers.Serializer):
    """`cFacturas`: public URLs of the invoice PDFs (docs/api.md "Closing as Cierre ganado")."""

    comprobante_soles = HttpUrlField(
        required=False, allow_null=True, allow_blank=True, help_text="URL del comprobante en soles"
    )
    comprobante_dolares = HttpUrlField(
        required=False, allow_null=True, allow_blank=True, help_text="URL del comprobante en dólares"
    )

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        return super().to_internal_value(drop_unsent(data))


class OpportunityFieldsInputSerializer(serializers.Serializer):
    """The customer, patient and appointment fields shared by create and process update."""

    def get_fields(self) -> dict[str, serializers.Field]:
        return {field.key: _process_input_field(field) for field in PROCESS_FIELDS} | super().get_fields()

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise serializers.ValidationError("El cuerpo debe ser un objeto JSON")
        return super().to_internal_value(drop_unsent(data))


class ProcessUpdateInputSerializer(OpportunityFieldsInputSerializer):
    """Body of `PUT /opportunity/update-opportunity-procces/<id>` (docs/api.md "Process update")."""

    cFacturas = FacturasInputSerializer(
        required=False,
        allow_null=True,
        help_text="URLs de los comprobantes; al menos una no nula cierra como Cierre ganado (factura_directa)",
    )
    cOrdenesServicio = serializers.ListField(
        child=PositiveInt32Field(),
        required=False,
        allow_null=True,
        max_length=100,
        help_text="IDs de órdenes de servicio (invoice-mifact-v3); no vacío cierra como Cierre ganado",
    )
    cOrdenesServicioMetadata = serializers.DictField(
        child=serializers.DictField(allow_empty=True),
        required=False,
        allow_null=True,
        help_text="Metadata por O.S: { [serviceOrderId]: { descripcion?, numero_os?, ... } }",
    )

    def validate_cOrdenesServicioMetadata(self, value: dict[str, Any]) -> dict[int, dict[str, Any]]:
        problem = _metadata_problem(value)
        if problem:
            raise serializers.ValidationError(problem)
        if len(json.dumps(value, ensure_ascii=False)) > METADATA_MAX_CHARS:
            raise serializers.ValidationError(f"La metadata no puede superar {METADATA_MAX_CHARS} caracteres.")
        cleaned: dict[int, dict[str, Any]] = {}
        for key, item in value.items():
            # ASCII digits only: "²".isdigit() is true but int("²") fails; " 9" would collide with "9".
            if not SERVICE_ORDER_KEY_RE.fullmatch(str(key)) or not 1 <= int(key) <= 2**31 - 1:
                raise serializers.ValidationError(f"Clave de O.S inválida: {key!r}")
            cleaned[int(key)] = item
        return cleaned


class OpportunityCreateInputSerializer(OpportunityFieldsInputSerializer):
    """Body of `POST /opportunity`: `name` required, plus any writable field. The stage is not
    one of them: new opportunities start in `Prospección` (docs/api.md "Endpoints")."""

    name = StrictCharField(max_length=255)
    amount = serializers.DecimalField(max_digits=12, decimal_places=2, required=False, min_value=0)


class OpportunityOutputSerializer(serializers.Serializer):
    """An opportunity as the API returns it (camelCase keys, docs/api.md "Endpoints").

    A plain Serializer (not a ModelSerializer) with shared fields: it is built on every
    response of the hot endpoints.
    """

    id = serializers.CharField(read_only=True, help_text="17 caracteres hexadecimales")
    name = serializers.CharField(read_only=True)
    stage = serializers.ChoiceField(choices=Stage.choices, read_only=True)
    amount = serializers.DecimalField(max_digits=12, decimal_places=2, allow_null=True, read_only=True)
    cFacturacionSubEstado = serializers.ChoiceField(
        source="c_facturacion_sub_estado", choices=FacturacionSubEstado.choices, allow_null=True, read_only=True
    )
    isPresaved = serializers.BooleanField(source="is_presaved", read_only=True)
    createdAt = LocalDateTimeField(source="created_at", read_only=True)
    modifiedAt = LocalDateTimeField(source="modified_at", read_only=True)

    def get_fields(self) -> dict[str, serializers.Field]:
        """The declared fields with the process fields after `amount`."""
        fields = super().get_fields()
        head = {name: fields.pop(name) for name in ("id", "name", "stage", "amount")}
        return head | {field.key: _process_output_field(field) for field in PROCESS_FIELDS} | fields


class OpportunityCreateOutputSerializer(OpportunityOutputSerializer):
    """The 201 of `POST /opportunity`: the opportunity, plus the body's keys that were ignored
    (`context["ignored_fields"]`)."""

    ignoredFields = serializers.ListField(child=serializers.CharField(), read_only=True, help_text=IGNORED_FIELDS_HELP)

    def to_representation(self, instance: Any) -> dict[str, Any]:
        data = OpportunityOutputSerializer().to_representation(instance)
        data["ignoredFields"] = list(self.context.get("ignored_fields", []))
        return data


class MeetingOutputSerializer(serializers.ModelSerializer):
    """A meeting (cita) as the API returns it."""

    dateStart = LocalDateTimeField(source="date_start", allow_null=True)
    dateEnd = LocalDateTimeField(source="date_end", allow_null=True)
    reservationId = serializers.IntegerField(source="reservation_id")
    createdAt = LocalDateTimeField(source="created_at")

    class Meta:
        model = Meeting
        fields = [
            "id",
            "name",
            "status",
            "dateStart",
            "dateEnd",
            "doctor",
            "environment",
            "specialty",
            "tariff",
            "reservationId",
            "createdAt",
        ]
        read_only_fields = fields


class ActionHistoryOutputSerializer(serializers.ModelSerializer):
    """One action-history record; `userName` is null for the poller."""

    userName = serializers.CharField(source="user_name", allow_null=True)
    data = serializers.JSONField()  # type: ignore[assignment]  # the API's key; shadows Serializer.data
    createdAt = LocalDateTimeField(source="created_at")

    class Meta:
        model = ActionHistory
        fields = ["id", "action", "userName", "data", "createdAt"]
        read_only_fields = fields


class AttachmentOutputSerializer(serializers.ModelSerializer):
    """An attached invoice PDF; `downloadUrl` is a fresh signed link for the requesting user
    (sales/attachment_links.py), so the context must hold the request."""

    fileName = serializers.CharField(source="file_name")
    contentType = serializers.CharField(source="content_type")
    sourceUrl = serializers.CharField(source="source_url")
    serviceOrderId = serializers.IntegerField(source="service_order_id", allow_null=True)
    invoiceResultHeadId = serializers.IntegerField(
        source="invoice_result_head_id",
        allow_null=True,
        help_text="Cabecera en invoice-mifact del comprobante al que pertenece el PDF (null: factura directa)",
    )
    status = serializers.ChoiceField(
        choices=Attachment.Status.choices,
        help_text="`vigente`; `reemplazado` (el comprobante fue reemitido) o `anulado` (fue anulado)",
    )
    statusChangedAt = LocalDateTimeField(
        source="status_changed_at", allow_null=True, help_text="Cuándo dejó de estar vigente (null si lo está)"
    )
    createdAt = LocalDateTimeField(source="created_at")
    fileProblem = serializers.SerializerMethodField(
        help_text=(
            "null si el PDF guardado está completo; si falta o está dañado y no se pudo volver a "
            "descargar, el motivo (el PDF no se entrega hasta que se repare)"
        )
    )
    downloadUrl = serializers.SerializerMethodField(
        help_text=(
            "Enlace firmado que abre el PDF sin la cabecera Authorization (como `<a href>`, pestaña o "
            "`<iframe>`) hasta `downloadUrlExpiresAt`; cada listado entrega enlaces nuevos"
        )
    )
    downloadUrlExpiresAt = serializers.SerializerMethodField(help_text="Hasta cuándo abre `downloadUrl`")

    class Meta:
        model = Attachment
        fields = [
            "id",
            "kind",
            "fileName",
            "size",
            "sha256",
            "contentType",
            "sourceUrl",
            "serviceOrderId",
            "invoiceResultHeadId",
            "status",
            "statusChangedAt",
            "fileProblem",
            "createdAt",
            "downloadUrl",
            "downloadUrlExpiresAt",
        ]
        read_only_fields = fields

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._links: dict[int, AttachmentLink] = {}  # one link per attachment, shared by its two fields

    def _link(self, obj: Attachment) -> AttachmentLink:
        if obj.pk not in self._links:
            self._links[obj.pk] = attachment_link_issue(attachment=obj, user_id=self.context["request"].user.pk)
        return self._links[obj.pk]

    def get_fileProblem(self, obj: Attachment) -> str | None:
        return obj.file_problem or None

    @extend_schema_field(OpenApiTypes.URI)
    def get_downloadUrl(self, obj: Attachment) -> str:
        return str(self.context["request"].build_absolute_uri(self._link(obj).path))

    @extend_schema_field(LocalDateTimeField())
    def get_downloadUrlExpiresAt(self, obj: Attachment) -> str:
        return str(LocalDateTimeField().to_representation(self._link(obj).expires_at))


class ServiceOrderOutputSerializer(serializers.ModelSerializer):
    """One O.S of an opportunity with its invoicing state."""

    serviceOrderId = serializers.IntegerField(source="service_order_id")
    metadata = serializers.JSONField(allow_null=True)
    invoiceResultHeadId = serializers.IntegerField(
        source="invoice_result_head_id",
        allow_null=True,
        help_text="Cabecera del comprobante vigente en invoice-mifact (null mientras no haya uno vigente)",
    )
    urlSoles = serializers.CharField(
        source="url_soles", allow_null=True, help_text="URL del comprobante vigente en soles (null si no hay)"
    )
    urlDolares = serializers.CharField(
        source="url_dolares", allow_null=True, help_text="URL del comprobante vigente en dólares (null si no hay)"
    )
    lastCheckedAt = LocalDateTimeField(source="last_checked_at", allow_null=True)
    lastError = serializers.CharField(source="last_error")
    invoicedAt = LocalDateTimeField(source="invoiced_at", allow_null=True, help_text="Cuándo quedó facturada")
    voidedAt = LocalDateTimeField(
        source="voided_at", allow_null=True, help_text="Cuándo se vio anulado su comprobante (null si nunca)"
    )
    nextCheckAt = serializers.SerializerMethodField(
        help_text=(
            "Cuándo la consulta automática (cada 5 minutos) preguntará de nuevo por esta O.S a invoice-mifact: "
            "la hora de la respuesta o antes significa en la próxima ejecución. Pendiente: según su antigüedad "
            "(cada ejecución hasta 7 días, cada hora hasta 30, cada día hasta 90); null una vez detenida "
            "(sin factura tras 90 días, hasta que el personal la reanude). Facturada: su próxima revisión "
            "de anulación o reemisión; null pasado ese plazo."
        )
    )
    createdAt = LocalDateTimeField(source="created_at")
    updatedAt = LocalDateTimeField(source="updated_at")

    @extend_schema_field(LocalDateTimeField(allow_null=True))
    def get_nextCheckAt(self, obj: OpportunityServiceOrder) -> str | None:
        moment = service_order_next_check_at(obj, now=timezone.now())
        return None if moment is None else str(LocalDateTimeField().to_representation(moment))

    class Meta:
        model = OpportunityServiceOrder
        fields = [
            "serviceOrderId",
            "metadata",
            "facturado",
            "invoiceResultHeadId",
            "urlSoles",
            "urlDolares",
            "lastCheckedAt",
            "lastError",
            "invoicedAt",
            "voidedAt",
            "nextCheckAt",
            "createdAt",
            "updatedAt",
        ]
        read_only_fields = fields
