"""Input and output serializers of the opportunity API (CONTRACT.md sections 4 and 5).

Keys are the front-end's camelCase names; `FIELD_COLUMNS` maps each one to its model column.
"""
from __future__ import annotations

from typing import Any

from rest_framework import serializers

from .fields import (
    AppointmentRangeField,
    HttpUrlField,
    PositiveInt32Field,
    ReservationDateField,
    StrictCharField,
)
from .models import ActionHistory, Attachment, Meeting, Opportunity, Stage

# Source document section 3: the "main" and "appointment" field lists, exactly as written there
# (note that cLastNameMother is in neither list).
MAIN_FIELDS: tuple[str, ...] = (
    "cLastNameFather",
    "cCustomerDocumentType",
    "cCustomerDocument",
    "cPatientsname",
    "cPatientsPaternalLastName",
    "cPatientsMaternalLastName",
    "cPatientDocument",
    "cPatientDocumentType",
    "cClinicHistory",
)
APPOINTMENT_FIELDS: tuple[str, ...] = (
    "cAppointment",
    "cDoctor",
    "cEnvironment",
    "cSpecialty",
    "cTariff",
    "cDateReservation",
)

# Every stored field the process update may write: API key -> model column.
FIELD_COLUMNS: dict[str, str] = {
    "cLastNameFather": "c_last_name_father",
    "cLastNameMother": "c_last_name_mother",
    "cCustomerDocumentType": "c_customer_document_type",
    "cCustomerDocument": "c_customer_document",
    "cPatientsname": "c_patientsname",
    "cPatientsPaternalLastName": "c_patients_paternal_last_name",
    "cPatientsMaternalLastName": "c_patients_maternal_last_name",
    "cPatientDocument": "c_patient_document",
    "cPatientDocumentType": "c_patient_document_type",
    "cClinicHistory": "c_clinic_history",
    "cAppointment": "c_appointment",
    "cDateReservation": "c_date_reservation",
    "cDoctor": "c_doctor",
    "cEnvironment": "c_environment",
    "cSpecialty": "c_specialty",
    "cTariff": "c_tariff",
    "reservationId": "reservation_id",
}


def _max_length(column: str) -> int | None:
    return Opportunity._meta.get_field(column).max_length


def _text(column: str) -> StrictCharField:
    return StrictCharField(required=False, max_length=_max_length(column))


def drop_unsent(value: Any) -> Any:
    """Remove keys whose value is null or blank text: such fields count as not sent (contract 5.2)."""
    if not isinstance(value, dict):
        return value
    return {
        key: item
        for key, item in value.items()
        if item is not None and not (isinstance(item, str) and not item.strip())
    }


class FacturasInputSerializer(serializers.Serializer):
    """`cFacturas`: public URLs of the invoice PDFs (source document section 2.2)."""

    comprobante_soles = HttpUrlField(required=False, help_text="URL del comprobante en soles")
    comprobante_dolares = HttpUrlField(required=False, help_text="URL del comprobante en dólares")

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        return super().to_internal_value(drop_unsent(data))


class OpportunityFieldsInputSerializer(serializers.Serializer):
    """The customer, patient and appointment fields shared by create and process update."""

    cLastNameFather = _text("c_last_name_father")
    cLastNameMother = _text("c_last_name_mother")
    cCustomerDocumentType = _text("c_customer_document_type")
    cCustomerDocument = _text("c_customer_document")
    cPatientsname = _text("c_patientsname")
    cPatientsPaternalLastName = _text("c_patients_paternal_last_name")
    cPatientsMaternalLastName = _text("c_patients_maternal_last_name")
    cPatientDocument = _text("c_patient_document")
    cPatientDocumentType = _text("c_patient_document_type")
    cClinicHistory = _text("c_clinic_history")
    cAppointment = AppointmentRangeField(required=False, max_length=_max_length("c_appointment"))
    cDateReservation = ReservationDateField(required=False)
    cDoctor = _text("c_doctor")
    cEnvironment = _text("c_environment")
    cSpecialty = _text("c_specialty")
    cTariff = _text("c_tariff")
    reservationId = PositiveInt32Field(required=False, help_text="ID de la reserva en SV")

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise serializers.ValidationError("El cuerpo debe ser un objeto JSON")
        return super().to_internal_value(drop_unsent(data))


class ProcessUpdateInputSerializer(OpportunityFieldsInputSerializer):
    """Body of `PUT /opportunity/update-opportunity-procces/<id>` (source document section 2)."""

    cFacturas = FacturasInputSerializer(required=False)
    cOrdenesServicio = serializers.ListField(
        child=PositiveInt32Field(), required=False, max_length=100,
        help_text="IDs de órdenes de servicio (invoice-mifact-v3)",
    )
    cOrdenesServicioMetadata = serializers.DictField(
        child=serializers.DictField(allow_empty=True), required=False,
        help_text="Metadata por O.S: { [serviceOrderId]: { descripcion?, numero_os?, ... } }",
    )

    def validate_cOrdenesServicioMetadata(self, value: dict[str, Any]) -> dict[int, dict[str, Any]]:
        cleaned: dict[int, dict[str, Any]] = {}
        for key, item in value.items():
            text = str(key).strip()
            if not text.isdigit() or not 1 <= int(text) <= 2**31 - 1:
                raise serializers.ValidationError(f"Clave de O.S inválida: {key!r}")
            cleaned[int(text)] = item
        return cleaned


class OpportunityCreateInputSerializer(OpportunityFieldsInputSerializer):
    """Body of `POST /opportunity`: `name` required, plus any writable field."""

    name = StrictCharField(max_length=255)
    stage = serializers.ChoiceField(choices=Stage.choices, required=False)
    amount = serializers.DecimalField(max_digits=12, decimal_places=2, required=False, min_value=0)


class OpportunityOutputSerializer(serializers.ModelSerializer):
    """An opportunity as the API returns it (camelCase keys, CONTRACT.md section 4)."""

    cLastNameFather = serializers.CharField(source="c_last_name_father")
    cLastNameMother = serializers.CharField(source="c_last_name_mother")
    cCustomerDocumentType = serializers.CharField(source="c_customer_document_type")
    cCustomerDocument = serializers.CharField(source="c_customer_document")
    cPatientsname = serializers.CharField(source="c_patientsname")
    cPatientsPaternalLastName = serializers.CharField(source="c_patients_paternal_last_name")
    cPatientsMaternalLastName = serializers.CharField(source="c_patients_maternal_last_name")
    cPatientDocument = serializers.CharField(source="c_patient_document")
    cPatientDocumentType = serializers.CharField(source="c_patient_document_type")
    cClinicHistory = serializers.CharField(source="c_clinic_history")
    cAppointment = serializers.CharField(source="c_appointment")
    cDateReservation = serializers.DateField(source="c_date_reservation", allow_null=True)
    cDoctor = serializers.CharField(source="c_doctor")
    cEnvironment = serializers.CharField(source="c_environment")
    cSpecialty = serializers.CharField(source="c_specialty")
    cTariff = serializers.CharField(source="c_tariff")
    reservationId = serializers.IntegerField(source="reservation_id", allow_null=True)
    cFacturacionSubEstado = serializers.CharField(source="c_facturacion_sub_estado", allow_null=True)
    isPresaved = serializers.BooleanField(source="is_presaved")
    createdAt = serializers.DateTimeField(source="created_at")
    modifiedAt = serializers.DateTimeField(source="modified_at")

    class Meta:
        model = Opportunity
        fields = [
            "id", "name", "stage", "amount",
            *FIELD_COLUMNS.keys(),
            "cFacturacionSubEstado", "isPresaved", "createdAt", "modifiedAt",
        ]
        read_only_fields = fields


class MeetingOutputSerializer(serializers.ModelSerializer):
    """A meeting (cita) as the API returns it."""

    dateStart = serializers.DateTimeField(source="date_start", allow_null=True)
    dateEnd = serializers.DateTimeField(source="date_end", allow_null=True)
    reservationId = serializers.IntegerField(source="reservation_id")
    createdAt = serializers.DateTimeField(source="created_at")

    class Meta:
        model = Meeting
        fields = ["id", "name", "status", "dateStart", "dateEnd", "doctor", "environment",
                  "specialty", "tariff", "reservationId", "createdAt"]
        read_only_fields = fields


class ActionHistoryOutputSerializer(serializers.ModelSerializer):
    """One action-history record; `userName` is null for the poller."""

    userName = serializers.CharField(source="user_name", allow_null=True)
    data = serializers.JSONField()
    createdAt = serializers.DateTimeField(source="created_at")

    class Meta:
        model = ActionHistory
        fields = ["id", "action", "userName", "data", "createdAt"]
        read_only_fields = fields


class AttachmentOutputSerializer(serializers.ModelSerializer):
    """An attached invoice PDF; `downloadUrl` needs the bearer token too."""

    fileName = serializers.CharField(source="file_name")
    contentType = serializers.CharField(source="content_type")
    sourceUrl = serializers.CharField(source="source_url")
    serviceOrderId = serializers.IntegerField(source="service_order_id", allow_null=True)
    createdAt = serializers.DateTimeField(source="created_at")
    downloadUrl = serializers.SerializerMethodField()

    class Meta:
        model = Attachment
        fields = ["id", "kind", "fileName", "size", "sha256", "contentType", "sourceUrl",
                  "serviceOrderId", "createdAt", "downloadUrl"]
        read_only_fields = fields

    def get_downloadUrl(self, obj: Attachment) -> str:
        path = f"/opportunity/{obj.opportunity_id}/attachments/{obj.pk}/download"
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request is not None else path
