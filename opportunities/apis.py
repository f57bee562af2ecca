"""HTTP endpoints of opportunities (CONTRACT.md section 4): validate, call one service, serialize."""
from __future__ import annotations

from typing import Any

from django.http import FileResponse, Http404
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from crm.errors import ApiError

from . import selectors, services
from .models import Opportunity
from .serializers import (
    ActionHistoryOutputSerializer,
    AttachmentOutputSerializer,
    MeetingOutputSerializer,
    OpportunityCreateInputSerializer,
    OpportunityOutputSerializer,
    ProcessUpdateInputSerializer,
)

BODY_NOT_OBJECT_MESSAGE = "El cuerpo de la solicitud debe ser un objeto JSON"


def _require_object(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ApiError(BODY_NOT_OBJECT_MESSAGE)
    return data


class OpportunityCreateApi(APIView):
    """`POST /opportunity`: create an opportunity (`name` required)."""

    @extend_schema(
        request=OpportunityCreateInputSerializer,
        responses={201: OpportunityOutputSerializer},
        tags=["opportunity"],
    )
    def post(self, request: Request) -> Response:
        serializer = OpportunityCreateInputSerializer(data=_require_object(request.data))
        serializer.is_valid(raise_exception=True)
        opportunity = services.opportunity_create(user=request.user, data=serializer.validated_data)
        return Response(OpportunityOutputSerializer(opportunity).data, status=status.HTTP_201_CREATED)


class OpportunityDetailApi(APIView):
    """`GET /opportunity/<id>`: one opportunity."""

    @extend_schema(responses={200: OpportunityOutputSerializer}, tags=["opportunity"])
    def get(self, request: Request, opportunity_id: str) -> Response:
        opportunity = selectors.opportunity_get(opportunity_id=opportunity_id)
        return Response(OpportunityOutputSerializer(opportunity).data)


class OpportunityProcessUpdateApi(APIView):
    """`PUT /opportunity/update-opportunity-procces/<id>` (source document section 1)."""

    @extend_schema(
        request=ProcessUpdateInputSerializer,
        responses={200: OpportunityOutputSerializer},
        tags=["opportunity"],
        operation_id="opportunity_update_process",
    )
    def put(self, request: Request, opportunity_id: str) -> Response:
        selectors.opportunity_get(opportunity_id=opportunity_id)
        serializer = ProcessUpdateInputSerializer(data=_require_object(request.data))
        serializer.is_valid(raise_exception=True)
        try:
            opportunity = services.opportunity_process_update(
                opportunity_id=opportunity_id, user=request.user, data=serializer.validated_data
            )
        except Opportunity.DoesNotExist:
            raise Http404 from None
        return Response(
            {
                "success": True,
                "message": "Opportunity updated successfully",
                "opportunity": OpportunityOutputSerializer(opportunity).data,
            }
        )


class MeetingListApi(APIView):
    """`GET /opportunity/<id>/meetings`."""

    @extend_schema(responses={200: MeetingOutputSerializer(many=True)}, tags=["opportunity"])
    def get(self, request: Request, opportunity_id: str) -> Response:
        opportunity = selectors.opportunity_get(opportunity_id=opportunity_id)
        meetings = selectors.meeting_list(opportunity=opportunity)
        return Response(MeetingOutputSerializer(meetings, many=True).data)


class ActionHistoryListApi(APIView):
    """`GET /opportunity/<id>/action-history`: newest first."""

    @extend_schema(responses={200: ActionHistoryOutputSerializer(many=True)}, tags=["opportunity"])
    def get(self, request: Request, opportunity_id: str) -> Response:
        opportunity = selectors.opportunity_get(opportunity_id=opportunity_id)
        records = selectors.action_history_list(opportunity=opportunity)
        return Response(ActionHistoryOutputSerializer(records, many=True).data)


class AttachmentListApi(APIView):
    """`GET /opportunity/<id>/attachments`."""

    @extend_schema(responses={200: AttachmentOutputSerializer(many=True)}, tags=["opportunity"])
    def get(self, request: Request, opportunity_id: str) -> Response:
        opportunity = selectors.opportunity_get(opportunity_id=opportunity_id)
        attachments = selectors.attachment_list(opportunity=opportunity)
        return Response(AttachmentOutputSerializer(attachments, many=True, context={"request": request}).data)


class AttachmentDownloadApi(APIView):
    """`GET /opportunity/<id>/attachments/<attachmentId>/download`: the PDF bytes."""

    @extend_schema(
        responses={(200, "application/pdf"): bytes},
        tags=["opportunity"],
    )
    def get(self, request: Request, opportunity_id: str, attachment_id: int) -> FileResponse:
        opportunity = selectors.opportunity_get(opportunity_id=opportunity_id)
        attachment = selectors.attachment_get(opportunity=opportunity, attachment_id=attachment_id)
        try:
            handle = attachment.file.open("rb")
        except (FileNotFoundError, OSError):
            raise ApiError("El archivo del comprobante no está disponible", status_code=404) from None
        return FileResponse(
            handle, content_type="application/pdf", as_attachment=True, filename=attachment.file_name
        )
