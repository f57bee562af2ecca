"""Signed links to a comprobante's PDF, so the front-end can open it as a plain link without the
`Authorization` header: Django's `TimestampSigner` over the listing user's id, salted with the
opportunity and the attachment, nothing stored (what a link allows and for how long: docs/api.md
"Signed links to comprobantes").
"""

from __future__ import annotations

import datetime
import logging
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import signing
from django.utils import timezone

from opportunities.models import Attachment

logger = logging.getLogger(__name__)

_SALT = "sales.attachment-link"
#: Characters of a token (the user id, a base62 timestamp and a URL-safe base64 signature).
TOKEN_PATTERN = r"[0-9]{1,18}:[0-9A-Za-z]{1,12}:[0-9A-Za-z_-]{20,100}"


class LinkRefused(Exception):
    """The link does not open: tampered, expired, or its user can no longer see comprobantes.
    `message` is Spanish, for the person who clicked it."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class AttachmentLink:
    path: str
    expires_at: datetime.datetime


def _signer(*, opportunity_id: str, attachment_id: int) -> signing.TimestampSigner:
    return signing.TimestampSigner(salt=f"{_SALT}:{opportunity_id}:{attachment_id}")


def link_lifetime() -> datetime.timedelta:
    return datetime.timedelta(minutes=settings.ATTACHMENT_LINK_MINUTES)


def attachment_link_issue(*, attachment: Attachment, user_id: int) -> AttachmentLink:
    """A fresh signed link to `attachment`'s PDF for the user `user_id`."""
    issued_at = timezone.now().replace(microsecond=0)
    token = _signer(opportunity_id=attachment.opportunity_id, attachment_id=attachment.pk).sign(str(user_id))
    path = f"/opportunity/{attachment.opportunity_id}/attachments/{attachment.pk}/open/{token}"
    return AttachmentLink(path=path, expires_at=issued_at + link_lifetime())


def attachment_link_user(*, opportunity_id: str, attachment_id: int, token: str) -> tuple[int, str]:
    """The id and username of the user a valid, unexpired link of this attachment was issued to;
    raises `LinkRefused` otherwise. Checks the signature before touching the database."""
    signer = _signer(opportunity_id=opportunity_id, attachment_id=attachment_id)
    try:
        user_id = int(signer.unsign(token, max_age=link_lifetime()))
    except signing.SignatureExpired:
        raise LinkRefused(
            "El enlace del comprobante expiró; vuelva a listar los comprobantes para obtener uno nuevo"
        ) from None
    except (signing.BadSignature, ValueError):
        raise LinkRefused("El enlace del comprobante no es válido") from None
    username = get_user_model().objects.filter(pk=user_id, is_active=True).values_list("username", flat=True).first()
    if username is None:
        raise LinkRefused("El enlace del comprobante ya no es válido: su usuario no está activo")
    return user_id, username


def attachment_link_opened(*, attachment: Attachment, user_id: int, username: str) -> None:
    """Log who saw which comprobante (the request id is added to every log line)."""
    logger.info(
        "Comprobante opened by signed link: attachment %s of opportunity %s, link issued to user %s (%s)",
        attachment.pk,
        attachment.opportunity_id,
        user_id,
        username,
        extra={"opportunity_id": attachment.opportunity_id, "attachment_id": attachment.pk, "link_user_id": user_id},
    )
