"""`GET /opportunity/<id>/attachments/<attachmentId>/open/<token>`: a comprobante's PDF by its
signed link (sales/attachment_links.py), without a token."""

from __future__ import annotations

from django.conf import settings
from django.http import FileResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.request import Request

from crm.errors import ApiError
from crm.schema import ATTACHMENT_ID_PARAMETER, OPPORTUNITY_ID_PARAMETER, error_example, error_responses
from opportunities import selectors

from .apis import ATTACHMENT_NOT_FOUND_ERRORS, PdfApiView, pdf_answer
from .attachment_links import LinkRefused, attachment_link_opened, attachment_link_user

TOKEN_PARAMETER = OpenApiParameter(
    "token",
    str,
    OpenApiParameter.PATH,
    description="La firma del enlace, tal como viene en `downloadUrl` del listado de comprobantes",
)


class AttachmentOpenApi(PdfApiView):
    """The PDF, shown in the browser (`inline`); no authentication: the signed token is the key."""

    authentication_classes: list[type] = []
    permission_classes = [AllowAny]

    @extend_schema(
        auth=[],
        responses={
            **pdf_answer("Los bytes del PDF, para mostrarlo en el navegador"),
            **error_responses(
                403,
                404,
                specific={
                    403: (
                        "Enlace alterado, de otro comprobante, expirado, o de un usuario desactivado: "
                        "no se entrega ningún byte",
                        [
                            error_example(403, "Enlace inválido", "El enlace del comprobante no es válido"),
                            error_example(
                                403,
                                "Enlace expirado",
                                "El enlace del comprobante expiró; vuelva a listar los comprobantes para "
                                "obtener uno nuevo",
                            ),
                        ],
                    ),
                    404: ATTACHMENT_NOT_FOUND_ERRORS,
                },
            ),
        },
        parameters=[OPPORTUNITY_ID_PARAMETER, ATTACHMENT_ID_PARAMETER, TOKEN_PARAMETER],
        tags=["opportunity"],
        summary="Abrir un comprobante (PDF) por su enlace firmado",
        description=(
            "El `downloadUrl` de un comprobante: abre el PDF sin la cabecera `Authorization` durante "
            f"`ATTACHMENT_LINK_MINUTES` minutos ({settings.ATTACHMENT_LINK_MINUTES}) desde que se listó, "
            "mientras el usuario que lo listó siga activo. Sirve como enlace (`<a href>`, pestaña nueva, "
            "`<iframe>`). Cada apertura queda registrada con el id de la solicitud."
        ),
    )
    def get(self, request: Request, opportunity_id: str, attachment_id: int, token: str) -> FileResponse:
        try:
            user_id, username = attachment_link_user(
                opportunity_id=opportunity_id, attachment_id=int(attachment_id), token=token
            )
        except LinkRefused as refused:
            raise ApiError(refused.message, status_code=403) from None
        opportunity = selectors.opportunity_get(opportunity_id=opportunity_id)
        attachment = selectors.attachment_get(opportunity=opportunity, attachment_id=attachment_id)
        handle = selectors.attachment_file_open(attachment=attachment)
        attachment_link_opened(attachment=attachment, user_id=user_id, username=username)
        response = FileResponse(handle, content_type="application/pdf", filename=attachment.file_name)
        # Patient data behind a short-lived key: no cache keeps it past the link's life.
        response["Cache-Control"] = "private, no-store"
        # An <iframe> preview in the front-end's pages (CORS_ALLOWED_ORIGINS), nowhere else. Browsers
        # follow frame-ancestors over X-Frame-Options; the view is also exempt from the site-wide
        # X-Frame-Options: DENY (sales/urls.py), so none refuses the front-end's frame.
        response["Content-Security-Policy"] = "frame-ancestors " + " ".join(["'self'", *settings.CORS_ALLOWED_ORIGINS])
        return response
