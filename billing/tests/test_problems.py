"""Why an O.S is stuck and who must act: the kind recorded by each failed check, and its plain
Spanish explanation (billing/problems.py)."""

from __future__ import annotations

from typing import Any

import pytest
import responses

from billing.mifact import MifactClient
from billing.models import OpportunityServiceOrder
from billing.problems import PROBLEMS, Responsible, error_kind_from_text, service_order_problem
from billing.services.checks import CheckResult, service_order_check
from billing.tests.fakes import BASE

pytestmark = pytest.mark.django_db


@pytest.fixture
def row(make_opportunity: Any) -> OpportunityServiceOrder:
    opportunity = make_opportunity(
        stage="Cierre ganado", c_facturacion_sub_estado="orden_servicio_pendiente_factura", c_clinic_history="HC-1"
    )
    return OpportunityServiceOrder.objects.create(opportunity=opportunity, service_order_id=456)


def client() -> MifactClient:
    return MifactClient(base_url=BASE, username="admin", password="secreto", retries=0)


def checked(row: OpportunityServiceOrder, mifact_client: MifactClient | None) -> OpportunityServiceOrder:
    outcome = service_order_check(service_order=row, client=mifact_client)
    row.refresh_from_db()
    assert outcome.error_kind == row.last_error_kind
    return row


def who(row: OpportunityServiceOrder) -> str | None:
    problem = service_order_problem(last_error=row.last_error, kind=row.last_error_kind)
    return problem.who if problem else None


def test_not_configured_is_for_it(row: OpportunityServiceOrder) -> None:
    row = checked(row, None)
    assert row.last_error == "invoice-mifact: URL_INVOICE_MIFACT_V3 no está configurada"
    assert row.last_error_kind == "configuration"
    assert who(row) == "TI de la clínica"


def test_unreachable_service_is_for_it(row: OpportunityServiceOrder, mifact: Any) -> None:
    mifact.down = True
    assert checked(row, client()).last_error_kind == "unavailable"
    assert who(row) == "TI de la clínica"


def test_refused_credentials_are_for_it(row: OpportunityServiceOrder, http_mock: Any) -> None:
    http_mock.add(responses.POST, f"{BASE}/auth/signin", status=401, json={"message": "no"})
    assert checked(row, client()).last_error_kind == "credentials"
    assert who(row) == "TI de la clínica"


def test_an_os_the_service_does_not_know_is_for_billing_staff(row: OpportunityServiceOrder, mifact: Any) -> None:
    mifact.unknown.add(456)
    row = checked(row, client())
    assert row.last_error == "invoice-mifact: invoice-mifact respondió 404 para la O.S 456"
    assert row.last_error_kind == "unknown_order"
    assert who(row) == "Facturación"


def test_invoiced_without_comprobante_is_for_billing_staff(row: OpportunityServiceOrder, mifact: Any) -> None:
    mifact.invoice(456, soles=False)
    assert checked(row, client()).last_error_kind == "no_comprobante"
    assert who(row) == "Facturación"


def test_a_failed_download_is_for_it(row: OpportunityServiceOrder, mifact: Any) -> None:
    mifact.invoice(456, broken=True)  # not a PDF
    assert checked(row, client()).last_error_kind == "download"
    assert who(row) == "TI de la clínica"


def test_a_later_good_check_clears_the_kind(row: OpportunityServiceOrder, mifact: Any) -> None:
    mifact.down = True
    checked(row, client())
    mifact.down = False
    outcome = service_order_check(service_order=row, client=client())
    assert outcome.result is CheckResult.PENDING
    row.refresh_from_db()
    assert (row.last_error, row.last_error_kind) == ("", "")
    assert service_order_problem(last_error=row.last_error, kind=row.last_error_kind) is None


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("invoice-mifact: URL_INVOICE_MIFACT_V3 no está configurada", "configuration"),
        ("invoice-mifact: faltan las credenciales de invoice-mifact: configure ...", "configuration"),
        ("invoice-mifact: invoice-mifact rechazó las credenciales (401)", "credentials"),
        ("invoice-mifact: no se pudo conectar con invoice-mifact (ConnectionError)", "unavailable"),
        ("invoice-mifact: invoice-mifact no respondió a tiempo (ReadTimeout)", "unavailable"),
        ("invoice-mifact: invoice-mifact respondió 503", "unavailable"),
        ("invoice-mifact: invoice-mifact respondió 404 para la O.S 456", "unknown_order"),
        ("invoice-mifact: respuesta sin campo booleano 'facturado'", "bad_response"),
        ("facturado sin URLs de comprobante; se reintentará", "no_comprobante"),
        ("descarga fallida: el archivo no es un PDF (http://x/a.pdf)", "download"),
        ("error inesperado: KeyError", "internal"),
        ("no se pudo guardar el comprobante: OSError; se reintentará", "internal"),
        ("", ""),
    ],
)
def test_errors_recorded_before_the_kind_existed_are_classified_from_their_text(text: str, kind: str) -> None:
    assert error_kind_from_text(text) == kind


def test_every_problem_names_who_must_act_in_spanish() -> None:
    for problem in PROBLEMS.values():
        assert problem.text.startswith(problem.summary)
        assert f"Debe actuar: {problem.who}." in problem.text
    assert {problem.responsible for problem in PROBLEMS.values()} == {Responsible.IT, Responsible.BILLING}
    # An unknown kind (a newer release wrote it, say) still reads as something to look at.
    unknown = service_order_problem(last_error="x", kind="nuevo")
    assert unknown is not None and unknown.responsible is Responsible.IT
