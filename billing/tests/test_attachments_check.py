"""`manage.py attachments_check`: rows whose file is missing or wrong are repaired from their source
URL, or marked for staff when they cannot be (docs/operations.md "What survives what")."""

from __future__ import annotations

import os
import time

import pytest

from billing.tests.commands import run_command
from devtools.testing import make_pdf
from jobs.models import CommandRun
from opportunities.models import Attachment

pytestmark = pytest.mark.django_db

PDF = make_pdf("F001-777")


def run(*args):
    return run_command("attachments_check", *args)


def counts(line):
    return dict(part.split("=") for part in line.split()[1:] if "=" in part and part.split("=")[0] != "seconds")


@pytest.fixture
def closed(make_opportunity, put_process, http_server, settings, media_root):
    """A sale closed by direct invoice through the API; returns (opportunity, its attachment)."""
    settings.INVOICE_DOWNLOAD_ALLOWED_HOSTS = [http_server.host_port]
    http_server.route("/F001-777.pdf", body=PDF)
    opportunity = make_opportunity(c_clinic_history="HC-7")
    response = put_process(opportunity.pk, {"cFacturas": {"comprobante_soles": http_server.url("/F001-777.pdf")}})
    assert response.status_code == 200, response.content
    return opportunity, Attachment.objects.get()


def test_all_files_in_place_is_a_quiet_ok(closed):
    code, out, err = run()
    assert code == 0 and err == ""
    assert counts(out) == {
        "checked": "1",
        "ok": "1",
        "repaired": "0",
        "unrepaired": "0",
        "orphans": "0",
        "downloads": "0",
    }
    assert Attachment.objects.get().file_checked_at is not None
    assert CommandRun.objects.get(command="attachments_check").outcome == "ok"


def test_a_missing_file_is_downloaded_again_from_its_source(closed, media_root, api_client):
    opportunity, attachment = closed
    (media_root / attachment.file.name).unlink()
    assert api_client.get(f"/opportunity/{opportunity.pk}/attachments/{attachment.pk}/download").status_code == 404
    code, out, _ = run()
    assert code == 0 and counts(out)["repaired"] == "1"
    response = api_client.get(f"/opportunity/{opportunity.pk}/attachments/{attachment.pk}/download")
    assert response.status_code == 200 and b"".join(response.streaming_content) == PDF


def test_a_cut_file_is_repaired_too(closed, media_root):
    _, attachment = closed
    (media_root / attachment.file.name).write_bytes(PDF[:100])
    code, out, _ = run()
    assert code == 0 and counts(out)["repaired"] == "1"
    assert (media_root / Attachment.objects.get().file.name).read_bytes() == PDF


def test_what_cannot_be_repaired_is_marked_reported_and_counted_on_the_start_page(
    closed, media_root, http_server, staff_client
):
    _, attachment = closed
    (media_root / attachment.file.name).unlink()
    http_server.route("/F001-777.pdf", body=make_pdf("otro comprobante"))
    code, out, err = run()
    assert code == 1
    assert counts(out)["unrepaired"] == "1"
    assert "falta el archivo; su dirección de origen ya entrega otro archivo" in err
    assert "1 comprobante con el archivo ausente o dañado no se pudo reparar; el personal lo ve" in err
    marked = Attachment.objects.get()
    assert marked.file_problem.startswith("falta el archivo")
    assert CommandRun.objects.get(command="attachments_check").outcome == "partial"
    page = staff_client.get("/admin/")
    assert 'id="crm-missing-files"' in page.content.decode()
    listed = staff_client.get("/admin/opportunities/attachment/?archivo=con_problema")
    assert listed.context["cl"].result_count == 1
    # Once the source serves the right PDF again, the next run repairs it and clears the mark.
    http_server.route("/F001-777.pdf", body=PDF)
    assert run()[0] == 0
    assert Attachment.objects.get().file_problem == ""
    assert 'id="crm-missing-files"' not in staff_client.get("/admin/").content.decode()


def test_a_dry_run_reports_and_changes_nothing(closed, media_root):
    _, attachment = closed
    (media_root / attachment.file.name).unlink()
    code, out, err = run("--dry-run")
    assert code == 1 and counts(out)["unrepaired"] == "1" and "falta el archivo" in err
    assert not (media_root / attachment.file.name).exists()
    assert Attachment.objects.get().file_problem == ""
    assert not CommandRun.objects.filter(command="attachments_check").exists()


def test_orphans_and_leftover_downloads_are_swept(closed, media_root, download_temp_dir, settings):
    orphan = media_root / "invoices" / "ff" / "orphan.pdf"
    orphan.parent.mkdir(parents=True)
    orphan.write_bytes(b"%PDF-huerfano")
    download_temp_dir.mkdir(exist_ok=True)
    leftover = download_temp_dir / "crm-invoice-left.pdf"
    leftover.write_bytes(b"%PDF-datos")
    two_days_ago = time.time() - 2 * 86400
    for path in (orphan, leftover):
        os.utime(path, (two_days_ago, two_days_ago))
    settings.ATTACHMENT_ORPHAN_GRACE_HOURS = 24
    code, out, _ = run("--dry-run")  # counts what it would delete, deletes nothing
    assert code == 0 and counts(out)["orphans"] == "1" and counts(out)["downloads"] == "1"
    assert orphan.exists() and leftover.exists()
    code, out, _ = run()
    assert code == 0 and counts(out)["orphans"] == "1" and counts(out)["downloads"] == "1"
    assert not orphan.exists() and not leftover.exists()
    assert (media_root / Attachment.objects.get().file.name).exists()


def test_one_opportunity_and_an_unknown_one(closed):
    opportunity, _ = closed
    assert run("--opportunity", opportunity.pk)[0] == 0
    code, _, err = run("--opportunity", "0" * 17)
    assert code == 2 and "no existe la oportunidad" in err


def test_the_same_pdf_sent_again_repairs_a_row_whose_file_is_gone(closed, media_root, put_process, http_server):
    """A retried PUT finds the same SHA-256: it stores the file again instead of trusting the row."""
    opportunity, attachment = closed
    (media_root / attachment.file.name).unlink()
    response = put_process(opportunity.pk, {"cFacturas": {"comprobante_soles": http_server.url("/F001-777.pdf")}})
    assert response.status_code == 200
    assert Attachment.objects.count() == 1
    again = Attachment.objects.get()
    assert (media_root / again.file.name).read_bytes() == PDF


def test_a_row_with_a_legacy_name_is_pointed_at_the_stored_file(closed, media_root, put_process, http_server):
    opportunity, attachment = closed
    legacy = f"invoices/{opportunity.pk}/0123456789abcdef-F001-777.pdf"
    Attachment.objects.filter(pk=attachment.pk).update(file=legacy)
    put_process(opportunity.pk, {"cFacturas": {"comprobante_soles": http_server.url("/F001-777.pdf")}})
    assert Attachment.objects.get().file.name == attachment.file.name


def test_a_comprobante_of_an_invoiced_service_order_is_downloaded_again_from_invoice_mifact(
    make_opportunity, mifact, media_root, django_capture_on_commit_callbacks
):
    """The O.S is facturado, so no poll looks at it again: the check repairs its file."""
    from billing.mifact import shared_mifact_client
    from billing.models import OpportunityServiceOrder
    from billing.services.checks import service_order_check

    opportunity = make_opportunity(
        stage="Cierre ganado", c_facturacion_sub_estado="orden_servicio_pendiente_factura", c_clinic_history="HC-1"
    )
    row = OpportunityServiceOrder.objects.create(opportunity=opportunity, service_order_id=456)
    mifact.invoice(456, soles=True, dolares=True)
    with django_capture_on_commit_callbacks(execute=True):
        service_order_check(service_order=row, client=shared_mifact_client())
    attachments = list(Attachment.objects.order_by("id"))
    assert len(attachments) == 2
    bodies = {a.pk: (media_root / a.file.name).read_bytes() for a in attachments}
    for attachment in attachments:
        (media_root / attachment.file.name).unlink()
    code, out, _ = run()
    assert code == 0 and counts(out)["repaired"] == "2"
    assert {a.pk: (media_root / a.file.name).read_bytes() for a in Attachment.objects.all()} == bodies


def test_a_marked_or_cut_file_is_never_served_and_the_api_says_why(closed, media_root, http_server, api_client):
    opportunity, attachment = closed
    download = f"/opportunity/{opportunity.pk}/attachments/{attachment.pk}/download"
    (media_root / attachment.file.name).write_bytes(b"%PDF-cut")  # not the size the row says
    assert api_client.get(download).status_code == 404
    http_server.route("/F001-777.pdf", body=make_pdf("otro comprobante"))
    assert run()[0] == 1
    listed = api_client.get(f"/opportunity/{opportunity.pk}/attachments").json()
    assert listed[0]["fileProblem"].startswith("el archivo tiene 8 bytes")
    signed = api_client.get(listed[0]["downloadUrl"])
    assert signed.status_code == 404 and signed.json()["statusCode"] == 404
    assert api_client.get(download).status_code == 404


def test_a_lost_database_connection_ends_the_run_with_one_spanish_line(closed, monkeypatch):
    """The same ending as poll_invoices and sync_sv: the summary line, one line on stderr, exit 1,
    the run recorded as failed."""
    import sqlite3

    from django.db import OperationalError

    from billing.services import attachment_check

    def lost(*args, **kwargs):
        raise OperationalError("lost") from sqlite3.OperationalError("unable to open database file")

    monkeypatch.setattr(attachment_check, "attachment_file_problem", lost)
    code, out, err = run()
    assert code == 1
    assert out.startswith("attachments_check: checked=0")
    assert err.strip().splitlines() == [
        "attachments_check: se perdió la conexión con la base de datos; la verificación queda para la próxima ejecución"
    ]
    assert CommandRun.objects.get(command="attachments_check").outcome == "failed"
