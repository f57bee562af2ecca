"""An attachment's `downloadUrl` is a signed link that opens its PDF without a token, bound to
that attachment, for ATTACHMENT_LINK_MINUTES (docs/api.md "Calling from a browser")."""

from __future__ import annotations

import datetime
import hashlib
import logging
import re

import pytest
import time_machine
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone

from devtools.testing import make_pdf
from opportunities.models import Attachment

pytestmark = pytest.mark.django_db

LINK = re.compile(r"http://testserver(/opportunity/([0-9a-f]+)/attachments/([0-9]+)/open/([^/]+))")


@pytest.fixture
def make_attachment(make_opportunity):
    def make(opportunity=None, number="F001-123"):
        opportunity = opportunity or make_opportunity(c_clinic_history="HC-000123")
        body = make_pdf(number)
        name = default_storage.save(f"invoices/{opportunity.pk}/{number}.pdf", ContentFile(body))
        attachment = Attachment.objects.create(
            opportunity=opportunity,
            kind="comprobante_soles",
            file=name,
            file_name=f"{number}.pdf",
            size=len(body),
            sha256=hashlib.sha256(body).hexdigest(),
            source_url=f"https://facturas.example.com/{number}.pdf",
        )
        return attachment, body

    return make


def listed(api_client, opportunity_id):
    response = api_client.get(f"/opportunity/{opportunity_id}/attachments")
    assert response.status_code == 200
    return response.json()


def link_path(api_client, attachment):
    url = listed(api_client, attachment.opportunity_id)[0]["downloadUrl"]
    match = LINK.fullmatch(url)
    assert match, url
    return match.group(1)


def assert_refused(response, status, message_part):
    assert response.status_code == status
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["statusCode"] == status and message_part in body["message"]
    assert b"%PDF" not in response.content


def test_the_listed_link_opens_the_pdf_without_a_token_inline(api_client, anon_client, make_attachment):
    attachment, pdf = make_attachment()
    [item] = listed(api_client, attachment.opportunity_id)
    match = LINK.fullmatch(item["downloadUrl"])
    assert match and match.group(2) == attachment.opportunity_id and match.group(3) == str(attachment.pk)

    response = anon_client.get(match.group(1))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert b"".join(response.streaming_content) == pdf
    assert response["Content-Disposition"] == 'inline; filename="F001-123.pdf"'
    assert response["Cache-Control"] == "private, no-store"
    # Framed only by this server's and the front-end's pages: no X-Frame-Options: DENY.
    assert response["Content-Security-Policy"] == "frame-ancestors 'self'"
    assert "X-Frame-Options" not in response


def test_the_link_may_be_framed_by_the_front_end_origins(api_client, anon_client, make_attachment, settings):
    settings.CORS_ALLOWED_ORIGINS = ["https://crm.clinica.pe"]
    attachment, _ = make_attachment()
    response = anon_client.get(link_path(api_client, attachment))
    assert response["Content-Security-Policy"] == "frame-ancestors 'self' https://crm.clinica.pe"


def test_the_link_expires_after_attachment_link_minutes_and_a_new_list_gives_fresh_ones(
    api_client, anon_client, make_attachment, settings
):
    settings.ATTACHMENT_LINK_MINUTES = 15
    attachment, _ = make_attachment()
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        [item] = listed(api_client, attachment.opportunity_id)
        match = LINK.fullmatch(item["downloadUrl"])
        assert match
        first = match.group(1)
        expected = timezone.localtime(start.replace(microsecond=0) + datetime.timedelta(minutes=15))
        assert item["downloadUrlExpiresAt"] == expected.strftime("%Y-%m-%d %H:%M:%S")
    with time_machine.travel(start + datetime.timedelta(minutes=14, seconds=59), tick=False):
        assert anon_client.get(first).status_code == 200
    with time_machine.travel(start + datetime.timedelta(minutes=10), tick=False):
        fresh = link_path(api_client, attachment)
    assert fresh != first
    with time_machine.travel(start + datetime.timedelta(minutes=15, seconds=2), tick=False):
        assert_refused(anon_client.get(first), 403, "expiró")
        assert anon_client.get(fresh).status_code == 200
    with time_machine.travel(start + datetime.timedelta(minutes=25, seconds=2), tick=False):
        assert_refused(anon_client.get(fresh), 403, "expiró")


def test_a_tampered_link_or_one_of_another_attachment_is_refused(
    api_client, anon_client, make_attachment, make_opportunity
):
    attachment, _ = make_attachment()
    other, _ = make_attachment(opportunity=attachment.opportunity, number="F001-124")
    elsewhere, _ = make_attachment(number="F001-125")
    path = link_path(api_client, attachment)
    prefix, token = path.rsplit("/", 1)
    user_id, stamp, signature = token.split(":")
    flipped = signature[:-1] + ("A" if signature[-1] != "A" else "B")

    for tampered in (
        f"{prefix}/{user_id}:{stamp}:{flipped}",  # another signature
        f"{prefix}/{int(user_id) + 1}:{stamp}:{signature}",  # another user
        f"{prefix}/{user_id}:{stamp[:-1]}0:{signature}",  # another time
        f"/opportunity/{attachment.opportunity_id}/attachments/{other.pk}/open/{token}",  # another attachment
        f"/opportunity/{elsewhere.opportunity_id}/attachments/{attachment.pk}/open/{token}",  # another sale
    ):
        assert_refused(anon_client.get(tampered), 403, "no es válido")
    # Not even the shape of a token: no route.
    assert_refused(anon_client.get(f"{prefix}/not-a-token"), 404, "Ruta no encontrada")
    assert anon_client.get(path).status_code == 200


def test_a_link_stops_opening_when_its_user_is_deactivated(api_client, anon_client, make_attachment, user):
    attachment, _ = make_attachment()
    path = link_path(api_client, attachment)
    user.is_active = False
    user.save(update_fields=["is_active"])
    assert_refused(anon_client.get(path), 403, "usuario no está activo")


def test_a_link_to_a_missing_file_is_a_json_404(api_client, anon_client, make_attachment):
    attachment, _ = make_attachment()
    path = link_path(api_client, attachment)
    default_storage.delete(attachment.file.name)
    assert_refused(anon_client.get(path), 404, "no está disponible")


def test_the_token_route_stays_and_still_needs_the_token(api_client, anon_client, make_attachment):
    attachment, pdf = make_attachment()
    path = f"/opportunity/{attachment.opportunity_id}/attachments/{attachment.pk}/download"
    assert anon_client.get(path).status_code == 401
    response = api_client.get(path)
    assert response.status_code == 200 and b"".join(response.streaming_content) == pdf
    assert response["Content-Disposition"] == 'attachment; filename="F001-123.pdf"'


def test_opening_a_link_is_logged_with_the_request_id_the_attachment_and_the_issuing_user(
    api_client, anon_client, make_attachment, user, caplog
):
    attachment, _ = make_attachment()
    path = link_path(api_client, attachment)
    with caplog.at_level(logging.INFO, logger="sales.attachment_links"):
        response = anon_client.get(path, HTTP_X_REQUEST_ID="front-open-1")
    assert response.status_code == 200 and response["X-Request-ID"] == "front-open-1"
    [record] = [r for r in caplog.records if r.name == "sales.attachment_links"]
    assert getattr(record, "request_id", None) == "front-open-1"
    message = record.getMessage()
    assert f"attachment {attachment.pk}" in message and f"opportunity {attachment.opportunity_id}" in message
    assert f"user {user.pk} (ventas)" in message
    assert (record.opportunity_id, record.attachment_id, record.link_user_id) == (
        attachment.opportunity_id,
        attachment.pk,
        user.pk,
    )


def test_a_refused_link_reads_nothing_from_the_database(anon_client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = anon_client.get("/opportunity/0123456789abcdef0/attachments/1/open/1:1abcde:" + "x" * 43)
    assert response.status_code == 403


def test_each_404_names_what_is_missing(api_client, make_attachment):
    """The Spanish message of the selector or service that found nothing reaches the client."""
    attachment, _ = make_attachment()
    download = f"/opportunity/{attachment.opportunity_id}/attachments/{{}}/download"
    assert_refused(api_client.get(download.format(attachment.pk + 1)), 404, "Comprobante no encontrado")
    assert_refused(api_client.get("/opportunity/00000000000000000/attachments"), 404, "Oportunidad no encontrada")
    update = api_client.put("/opportunity/update-opportunity-procces/00000000000000000", {}, format="json")
    assert_refused(update, 404, "Oportunidad no encontrada")
    default_storage.delete(attachment.file.name)
    missing = "El archivo del comprobante no está disponible"
    assert_refused(api_client.get(download.format(attachment.pk)), 404, missing)
