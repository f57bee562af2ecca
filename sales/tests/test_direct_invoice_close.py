"""Closing as *Cierre ganado* with direct invoice URLs (docs/api.md "Closing as Cierre ganado",
"Downloading comprobantes")."""

from __future__ import annotations

import datetime as dt
import hashlib
import socket

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from devtools.testing import make_pdf
from opportunities.attachment_files import attachment_files_sweep
from opportunities.models import ActionHistory, Attachment, Meeting, Opportunity

pytestmark = pytest.mark.django_db


@pytest.fixture
def pdf_host(http_server, settings):
    settings.INVOICE_DOWNLOAD_ALLOWED_HOSTS = [http_server.host_port]
    return http_server


def files_in(root):
    return sorted(p for p in root.rglob("*") if p.is_file())


def close_body(**facturas):
    return {
        "cClinicHistory": "HC-000123",
        "cPatientsname": "Lucía",
        "cFacturas": {"comprobante_soles": None, "comprobante_dolares": None, **facturas},
    }


def test_close_with_one_invoice_url_attaches_it_and_closes_won(
    make_opportunity, put_process, pdf_host, media_root, api_client
):
    pdf = make_pdf("F001-123")
    pdf_host.route("/comprobantes/F001-123.pdf", body=pdf, headers={"Content-Type": "application/pdf"})
    opportunity = make_opportunity()
    response = put_process(opportunity.pk, close_body(comprobante_soles=pdf_host.url("/comprobantes/F001-123.pdf")))
    assert response.status_code == 200, response.content
    body = response.json()["opportunity"]
    assert body["stage"] == "Cierre ganado"
    assert body["cFacturacionSubEstado"] == "factura_directa"
    assert body["isPresaved"] is False

    attachment = Attachment.objects.get()
    assert attachment.kind == "comprobante_soles"
    assert attachment.sha256 == hashlib.sha256(pdf).hexdigest()
    assert attachment.size == len(pdf)
    assert attachment.service_order_id is None
    assert [p.read_bytes() for p in files_in(media_root)] == [pdf]

    closed = ActionHistory.objects.get(action="closed_won")
    assert closed.data["subState"] == "factura_directa"
    assert closed.data["attachmentIds"] == [attachment.pk]

    listed = api_client.get(f"/opportunity/{opportunity.pk}/attachments").json()
    assert listed[0]["kind"] == "comprobante_soles"
    assert listed[0]["fileName"] == "F001-123.pdf"
    assert listed[0]["sourceUrl"] == pdf_host.url("/comprobantes/F001-123.pdf")
    download = api_client.get(listed[0]["downloadUrl"].replace("http://testserver", ""))
    assert download.status_code == 200
    assert download["Content-Type"] == "application/pdf"
    assert b"".join(download.streaming_content) == pdf


def test_close_with_both_urls_attaches_two_comprobantes(make_opportunity, put_process, pdf_host, media_root):
    pdf_host.route("/s.pdf", body=make_pdf("soles"))
    pdf_host.route("/d.pdf", body=make_pdf("dolares"))
    opportunity = make_opportunity()
    response = put_process(
        opportunity.pk, close_body(comprobante_soles=pdf_host.url("/s.pdf"), comprobante_dolares=pdf_host.url("/d.pdf"))
    )
    assert response.status_code == 200
    assert sorted(Attachment.objects.values_list("kind", flat=True)) == ["comprobante_dolares", "comprobante_soles"]
    assert len(files_in(media_root)) == 2


def test_the_same_pdf_twice_is_stored_once(make_opportunity, put_process, pdf_host, media_root):
    pdf_host.route("/a.pdf", body=make_pdf("same"))
    pdf_host.route("/b.pdf", body=make_pdf("same"))
    opportunity = make_opportunity()
    put_process(
        opportunity.pk, close_body(comprobante_soles=pdf_host.url("/a.pdf"), comprobante_dolares=pdf_host.url("/b.pdf"))
    )
    put_process(opportunity.pk, close_body(comprobante_soles=pdf_host.url("/a.pdf")))
    assert Attachment.objects.count() == 1
    assert len(files_in(media_root)) == 1
    assert ActionHistory.objects.filter(action="closed_won").count() == 1


def test_clinic_history_already_stored_is_enough_to_close(make_opportunity, put_process, pdf_host):
    pdf_host.route("/a.pdf", body=make_pdf("a"))
    opportunity = make_opportunity(c_clinic_history="HC-9")
    response = put_process(opportunity.pk, {"cFacturas": {"comprobante_dolares": pdf_host.url("/a.pdf")}})
    assert response.status_code == 200
    assert response.json()["opportunity"]["stage"] == "Cierre ganado"


def test_close_without_clinic_history_is_400_and_downloads_nothing(make_opportunity, put_process, pdf_host):
    pdf_host.route("/a.pdf", body=make_pdf("a"))
    opportunity = make_opportunity()
    response = put_process(
        opportunity.pk, {"cPatientsname": "Ana", "cFacturas": {"comprobante_soles": pdf_host.url("/a.pdf")}}
    )
    assert response.status_code == 400
    assert "cClinicHistory" in response.json()["errors"]
    assert pdf_host.requests == []
    assert Opportunity.objects.get(pk=opportunity.pk).c_patientsname == ""


def test_failed_download_keeps_nothing(make_opportunity, put_process, pdf_host, media_root):
    """Rollback: after a failed download no field, meeting, history record or row is kept; the PDF
    stored before the failure has no row and is swept."""
    pdf_host.route("/ok.pdf", body=make_pdf("ok"))
    pdf_host.route("/error.html", body=b"<html>Error</html>", headers={"Content-Type": "application/pdf"})
    opportunity = make_opportunity()
    before = Opportunity.objects.values().get(pk=opportunity.pk)
    body = {
        **close_body(comprobante_soles=pdf_host.url("/ok.pdf"), comprobante_dolares=pdf_host.url("/error.html")),
        "cDoctor": "Dra. Paredes",
        "cDateReservation": "2026-03-02",
        "reservationId": 77,
    }
    response = put_process(opportunity.pk, body)
    assert response.status_code == 400
    payload = response.json()
    assert pdf_host.url("/error.html") in payload["message"]
    assert "cFacturas.comprobante_dolares" in payload["errors"]
    assert Opportunity.objects.values().get(pk=opportunity.pk) == before
    assert Meeting.objects.count() == 0
    assert ActionHistory.objects.count() == 0
    assert Attachment.objects.count() == 0
    attachment_files_sweep(grace=dt.timedelta(0))
    assert files_in(media_root) == []


def test_an_error_inside_the_transaction_leaves_no_row(
    make_opportunity, put_process, pdf_host, media_root, monkeypatch
):
    from sales import process_update as services

    pdf_host.route("/ok.pdf", body=make_pdf("ok"))
    opportunity = make_opportunity()

    def fail(**kwargs):
        raise services.InvalidRequest("forced")

    monkeypatch.setattr(services, "opportunity_close_won", fail)
    response = put_process(opportunity.pk, close_body(comprobante_soles=pdf_host.url("/ok.pdf")))
    assert response.status_code == 400
    assert Attachment.objects.count() == 0
    attachment_files_sweep(grace=dt.timedelta(0))
    assert files_in(media_root) == []


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:{port}/ok.pdf",  # loopback, not allow-listed
        "http://10.0.0.8/ok.pdf",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]:{port}/ok.pdf",
    ],
)
def test_private_addresses_are_refused_with_a_400_naming_the_url(make_opportunity, put_process, http_server, url):
    http_server.route("/ok.pdf", body=make_pdf("ok"))
    url = url.format(port=http_server.host_port.rsplit(":", 1)[1])
    opportunity = make_opportunity()
    response = put_process(opportunity.pk, close_body(comprobante_soles=url))
    assert response.status_code == 400
    assert url in response.json()["message"]
    assert http_server.requests == []
    assert Opportunity.objects.get(pk=opportunity.pk).stage == "Prospección"


def test_a_host_resolving_to_a_private_address_is_refused(make_opportunity, put_process, monkeypatch):
    real = socket.getaddrinfo

    def fake(host, *args, **kwargs):
        if host == "facturas.clinica.example":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("192.168.1.20", 80))]
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    opportunity = make_opportunity()
    response = put_process(opportunity.pk, close_body(comprobante_soles="http://facturas.clinica.example/f.pdf"))
    assert response.status_code == 400
    assert "facturas.clinica.example" in response.json()["message"]


def test_redirect_to_a_private_address_is_refused(make_opportunity, put_process, pdf_host):
    pdf_host.redirect("/go.pdf", "http://10.20.30.40/secret.pdf")
    opportunity = make_opportunity()
    response = put_process(opportunity.pk, close_body(comprobante_soles=pdf_host.url("/go.pdf")))
    assert response.status_code == 400
    assert Attachment.objects.count() == 0


def test_query_count_of_one_put_is_bounded(make_opportunity, put_process, pdf_host):
    pdf_host.route("/s.pdf", body=make_pdf("s"))
    pdf_host.route("/d.pdf", body=make_pdf("d"))
    opportunity = make_opportunity()
    body = {
        **close_body(comprobante_soles=pdf_host.url("/s.pdf"), comprobante_dolares=pdf_host.url("/d.pdf")),
        "cDoctor": "Dra. Paredes",
        "cAppointment": "15:30 - 16:00",
        "cDateReservation": "2026-03-02",
        "reservationId": 9,
    }
    with CaptureQueriesContext(connection) as queries:
        response = put_process(opportunity.pk, body)
    assert response.status_code == 200
    # auth user, 404 check, read + lock, history x3, meeting read + insert, attachments read +
    # 2 inserts, update, savepoints; it must not grow with the data.
    assert len(queries) <= 20, [q["sql"] for q in queries]
