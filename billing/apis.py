"""HTTP endpoints of billing: the service orders of an opportunity."""
from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from crm.schema import OPPORTUNITY_ID_PARAMETER, error_responses, ok
from opportunities.selectors import opportunity_get

from .selectors import service_order_list
from .serializers import ServiceOrderOutputSerializer


class ServiceOrderListApi(APIView):
    """`GET /opportunity/<id>/service-orders`."""

    @extend_schema(responses={200: ok(ServiceOrderOutputSerializer(many=True), "Las órdenes de servicio"),
                              **error_responses(401, 404)},
                   parameters=[OPPORTUNITY_ID_PARAMETER], tags=["opportunity"],
                   summary="Órdenes de servicio (O.S) de la oportunidad",
                   description="Las O.S de la oportunidad con su estado de facturación en invoice-mifact.")
    def get(self, request: Request, opportunity_id: str) -> Response:
        opportunity = opportunity_get(opportunity_id=opportunity_id)
        return Response(ServiceOrderOutputSerializer(service_order_list(opportunity=opportunity), many=True).data)
