"""The REST API of opportunities and their service orders (docs/api.md): validate, call one service,
serialize."""

from __future__ import annotations

from collections.abc import Iterable

from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.parsers import BaseParser
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from billing.selectors import service_order_list
from crm.errors import InvalidRequest
from crm.idempotency import idempotent
from crm.parsers import require_json_object
from crm.schema import (
    ATTACHMENT_ID_PARAMETER,
    NOT_MODIFIED,
    OPPORTUNITY_ID_PARAMETER,
    error_example,
    error_responses,
    ok,
)
from opportunities import selectors, services, versions

from . import process_update
from .api_safe_retries import CREATE_HEADERS, DETAIL_HEADERS, PRECONDITION_FAILED_ERRORS, PROCESS_UPDATE_HEADERS
from .example_bodies import CLOSE_WITH_INVOICE, CLOSE_WITH_SERVICE_ORDERS, DATA_AND_APPOINTMENT
from .serializers import (
    IGNORED_FIELDS_HELP,
    ActionHistoryOutputSerializer,
    AttachmentOutputSerializer,
    MeetingOutputSerializer,
    OpportunityCreateInputSerializer,
    OpportunityCreateOutputSerializer,
    OpportunityOutputSerializer,
    ProcessUpdateInputSerializer,
    ServiceOrderOutputSerializer,
    ignored_fields,
)

ProcessUpdateResponseSerializer = inline_serializer(
    "ProcessUpdateResponse",
    {
        "success": serializers.BooleanField(),
        "message": serializers.CharField(),
        "opportunity": OpportunityOutputSerializer(),
        "ignoredFields": serializers.ListField(child=serializers.CharField(), help_text=IGNORED_FIELDS_HELP),
    },
)

# The example bodies (README "Example session with curl"), as request examples of the process update.
PROCESS_UPDATE_EXAMPLES = [
    OpenApiExample("8.1 Actualizar datos y cita (sin cerrar)", request_only=True, value=DATA_AND_APPOINTMENT),
    OpenApiExample("8.2 Cierre ganado con factura directa", request_only=True, value=CLOSE_WITH_INVOICE),
    OpenApiExample("8.3 Cierre ganado con O.S", request_only=True, value=CLOSE_WITH_SERVICE_ORDERS),
]

# The 404s of the two ways to fetch a comprobante's PDF (with the token, and by its signed link).
ATTACHMENT_NOT_FOUND_ERRORS = (
    "Oportunidad o comprobante no encontrado, o su archivo no está disponible",
    [
        error_example(404, "Comprobante inexistente", selectors.ATTACHMENT_NOT_FOUND),
        error_example(404, "Archivo no disponible", selectors.ATTACHMENT_FILE_MISSING),
    ],
)


class FirstRendererNegotiation(BaseContentNegotiation):
    """Always answer with the view's first renderer (the PDF view sets its body itself), so a
    client asking `Accept: application/pdf` is not refused with 406."""

    def select_parser(self, request: Request, parsers: Iterable[BaseParser]) -> BaseParser | None:
        return next(iter(parsers), None)

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        renderer = next(iter(renderers))
        return renderer, renderer.media_type


class PdfApiView(APIView):
    """A view answering a PDF's bytes (its body set by the view) or a JSON error, whatever the
    client's `Accept`."""

    renderer_classes = [JSONRenderer]
    content_negotiation_class = FirstRendererNegotiation


def pdf_answer(description: str) -> dict[tuple[int, str], OpenApiResponse]:
    """The OpenAPI answer of a PDF view: status 200, `application/pdf`, binary."""
    return {(200, "application/pdf"): OpenApiResponse(OpenApiTypes.BINARY, description=description)}


class OpportunityCreateApi(APIView):
    """`POST /opportunity`: create an opportunity (`name` required)."""

    @extend_schema(
        request=OpportunityCreateInputSerializer,
        responses={
            201: ok(OpportunityCreateOutputSerializer, "Oportunidad creada"),
            **error_responses(
                400,
                401,
                409,
                413,
                415,
                422,
                503,
                specific={
                    400: (
                        "Datos inválidos: falta `name`, un campo no es válido o la `Idempotency-Key` está mal formada "
                        "(no se creó nada)",
                        [
                            error_example(
                                400,
                                "Sin nombre",
                                "La solicitud contiene datos inválidos",
                                {"name": ["Este campo es requerido."]},
                            ),
                            error_example(
                                400,
                                "Fecha de reserva inválida",
                                "La solicitud contiene datos inválidos",
                                {"cDateReservation": ["Debe ser una fecha válida con formato yyyy-MM-dd."]},
                            ),
                        ],
                    ),
                },
            ),
        },
        parameters=CREATE_HEADERS,
        tags=["opportunity"],
        summary="Crear una oportunidad",
        description=(
            "Crea una oportunidad en `Prospección`, pre-guardada (`isPresaved: true`). `name` es "
            "obligatorio; acepta también los datos de cliente, paciente y cita. Las claves que no conoce "
            "(también `stage`) se ignoran y se listan en `ignoredFields`."
        ),
    )
    @idempotent(atomic=True)
    def post(self, request: Request) -> Response:
        body = require_json_object(request)
        serializer = OpportunityCreateInputSerializer(data=body)
        serializer.is_valid(raise_exception=True)
        opportunity = services.opportunity_create(user=request.user, data=serializer.validated_data)
        output = OpportunityCreateOutputSerializer(
            opportunity, context={"ignored_fields": ignored_fields(serializer, body)}
        )
        return Response(
            output.data, status=status.HTTP_201_CREATED, headers={"ETag": versions.opportunity_etag(opportunity)}
        )


class OpportunityDetailApi(APIView):
    """`GET /opportunity/<id>`: one opportunity."""

    @extend_schema(
        responses={
            200: ok(OpportunityOutputSerializer, "La oportunidad"),
            304: NOT_MODIFIED,
            **error_responses(401, 404),
        },
        parameters=[OPPORTUNITY_ID_PARAMETER, *DETAIL_HEADERS],
        tags=["opportunity"],
        summary="Obtener una oportunidad",
        description="Una oportunidad por su ID, con su `ETag` (304 sin cuerpo si `If-None-Match` lo nombra).",
    )
    def get(self, request: Request, opportunity_id: str) -> Response:
        opportunity = selectors.opportunity_get(opportunity_id=opportunity_id)
        headers = {"ETag": versions.opportunity_etag(opportunity)}
        if versions.if_none_match_matches(request.headers.get("If-None-Match"), opportunity):
            return Response(status=status.HTTP_304_NOT_MODIFIED, headers=headers)
        return Response(OpportunityOutputSerializer(opportunity).data, headers=headers)


class OpportunityProcessUpdateApi(APIView):
    """`PUT /opportunity/update-opportunity-procces/<id>` (docs/api.md "Process update")."""

    @extend_schema(
        request=ProcessUpdateInputSerializer,
        responses={
            200: ok(
                ProcessUpdateResponseSerializer,
                "Oportunidad actualizada: la oportunidad tal como quedó, y las claves ignoradas",
            ),
            **error_responses(
                400,
                401,
                404,
                409,
                412,
                413,
                415,
                422,
                503,
                specific={
                    412: PRECONDITION_FAILED_ERRORS,
                    400: (
                        "Datos inválidos, o falta `reservationId` con datos de cita, o `cClinicHistory` para el "
                        "cierre, o una factura no se pudo descargar, o `If-Match` o `Idempotency-Key` están mal "
                        "formadas: nada se modificó",
                        [
                            error_example(
                                400,
                                "reservationId faltante",
                                "El campo reservationId no puede estar vacío",
                                {"reservationId": ["El campo reservationId no puede estar vacío"]},
                            ),
                            error_example(
                                400,
                                "Fecha de reserva inválida",
                                "La solicitud contiene datos inválidos",
                                {"cDateReservation": ["Debe ser una fecha válida con formato yyyy-MM-dd."]},
                            ),
                            error_example(
                                400,
                                "Cierre sin historia clínica",
                                "El campo cClinicHistory es obligatorio para el Cierre ganado",
                                {"cClinicHistory": ["El campo cClinicHistory es obligatorio para el Cierre ganado"]},
                            ),
                        ],
                    ),
                },
            ),
        },
        parameters=[OPPORTUNITY_ID_PARAMETER, *PROCESS_UPDATE_HEADERS],
        tags=["opportunity"],
        operation_id="opportunity_update_process",
        summary="Actualizar la oportunidad con datos del proceso (cliente, paciente, cita, facturas, O.S)",
        description=(
            "Todos los campos son opcionales; un campo cuenta como "
            "enviado cuando su valor no es null ni texto vacío. Los datos de cita exigen `reservationId` "
            "(400 `El campo reservationId no puede estar vacío`). `cFacturas` con al menos una URL, o "
            "`cOrdenesServicio` no vacío, cierran como *Cierre ganado* (requieren `cClinicHistory`, "
            "enviado o ya guardado). En cada llamada se consulta el estado de facturación de las O.S "
            "pendientes. Un 4xx no modifica nada. Las claves que el endpoint no conoce (o no permite "
            "escribir, como `stage`) se ignoran y se listan en `ignoredFields` de la respuesta. Con `If-Match` "
            "solo se aplica si la oportunidad no cambió desde ese `ETag` (412 si cambió); con `Idempotency-Key` un "
            "reintento recibe la primera respuesta."
        ),
        examples=PROCESS_UPDATE_EXAMPLES,
    )
    @idempotent(atomic=False)
    def put(self, request: Request, opportunity_id: str) -> Response:
        selectors.opportunity_id_check(opportunity_id=opportunity_id)
        try:
            body = require_json_object(request)
            serializer = ProcessUpdateInputSerializer(data=body)
            serializer.is_valid(raise_exception=True)
            opportunity = process_update.opportunity_process_update(
                opportunity_id=opportunity_id,
                user=request.user,
                data=serializer.validated_data,
                if_match=versions.if_match_parse(request.headers.get("If-Match")),
            )
        except (InvalidRequest, ValidationError):
            # An unknown opportunity is a 404 whatever the body. Looked up only on this error
            # path (on success the service's locked read finds out), to keep the PUT's queries low.
            selectors.opportunity_must_exist(opportunity_id=opportunity_id)
            raise
        return Response(
            {
                "success": True,
                "message": "Opportunity updated successfully",
                "opportunity": OpportunityOutputSerializer(opportunity).data,
                "ignoredFields": ignored_fields(serializer, body),
            },
            headers={"ETag": versions.opportunity_etag(opportunity)},
        )


class MeetingListApi(APIView):
    """`GET /opportunity/<id>/meetings`."""

    @extend_schema(
        responses={
            200: ok(MeetingOutputSerializer(many=True), "Las reuniones, la más temprana primero"),
            **error_responses(401, 404),
        },
        parameters=[OPPORTUNITY_ID_PARAMETER],
        tags=["opportunity"],
        summary="Reuniones (citas) de la oportunidad",
        description="Las reuniones creadas por la actualización del proceso, una por reserva.",
    )
    def get(self, request: Request, opportunity_id: str) -> Response:
        opportunity = selectors.opportunity_get(opportunity_id=opportunity_id)
        meetings = selectors.meeting_list(opportunity=opportunity)
        return Response(MeetingOutputSerializer(meetings, many=True).data)


class ActionHistoryListApi(APIView):
    """`GET /opportunity/<id>/action-history`: newest first."""

    @extend_schema(
        responses={
            200: ok(ActionHistoryOutputSerializer(many=True), "El historial, lo más reciente primero"),
            **error_responses(401, 404),
        },
        parameters=[OPPORTUNITY_ID_PARAMETER],
        tags=["opportunity"],
        summary="Historial de acciones (más reciente primero)",
        description="Qué cambió en la oportunidad, quién y cuándo.",
    )
    def get(self, request: Request, opportunity_id: str) -> Response:
        opportunity = selectors.opportunity_get(opportunity_id=opportunity_id)
        records = selectors.action_history_list(opportunity=opportunity)
        return Response(ActionHistoryOutputSerializer(records, many=True).data)


class AttachmentListApi(APIView):
    """`GET /opportunity/<id>/attachments`."""

    @extend_schema(
        responses={
            200: ok(AttachmentOutputSerializer(many=True), "Los comprobantes adjuntos"),
            **error_responses(401, 404),
        },
        parameters=[OPPORTUNITY_ID_PARAMETER],
        tags=["opportunity"],
        summary="Comprobantes adjuntos",
        description=(
            "Los PDF descargados al cerrar la oportunidad. `downloadUrl` es un enlace firmado nuevo en cada "
            "listado: abre el PDF sin token hasta `downloadUrlExpiresAt`."
        ),
    )
    def get(self, request: Request, opportunity_id: str) -> Response:
        opportunity = selectors.opportunity_get(opportunity_id=opportunity_id)
        attachments = selectors.attachment_list(opportunity=opportunity)
        return Response(AttachmentOutputSerializer(attachments, many=True, context={"request": request}).data)


class AttachmentDownloadApi(PdfApiView):
    """`GET /opportunity/<id>/attachments/<attachmentId>/download`: the PDF bytes."""

    @extend_schema(
        responses={
            **pdf_answer("Los bytes del PDF, como descarga"),
            **error_responses(
                401,
                404,
                specific={
                    404: ATTACHMENT_NOT_FOUND_ERRORS,
                },
            ),
        },
        parameters=[OPPORTUNITY_ID_PARAMETER, ATTACHMENT_ID_PARAMETER],
        tags=["opportunity"],
        summary="Descargar un comprobante (PDF)",
        description="El PDF del comprobante (`application/pdf`), como archivo adjunto.",
    )
    def get(self, request: Request, opportunity_id: str, attachment_id: int) -> FileResponse:
        opportunity = selectors.opportunity_get(opportunity_id=opportunity_id)
        attachment = selectors.attachment_get(opportunity=opportunity, attachment_id=attachment_id)
        handle = selectors.attachment_file_open(attachment=attachment)
        return FileResponse(handle, content_type="application/pdf", as_attachment=True, filename=attachment.file_name)


class ServiceOrderListApi(APIView):
    """`GET /opportunity/<id>/service-orders`."""

    @extend_schema(
        responses={
            200: ok(ServiceOrderOutputSerializer(many=True), "Las órdenes de servicio"),
            **error_responses(401, 404),
        },
        parameters=[OPPORTUNITY_ID_PARAMETER],
        tags=["opportunity"],
        summary="Órdenes de servicio (O.S) de la oportunidad",
        description="Las O.S de la oportunidad con su estado de facturación en invoice-mifact.",
    )
    def get(self, request: Request, opportunity_id: str) -> Response:
        opportunity = selectors.opportunity_get(opportunity_id=opportunity_id)
        return Response(ServiceOrderOutputSerializer(service_order_list(opportunity=opportunity), many=True).data)
