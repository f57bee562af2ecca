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
from e2e import bodies
from opportunities.models import Opportunity
from tests_browser.test_staff_workspace import (
    PASSWORD,
    STAFF_PERMISSIONS,
    USERNAME,
    StaffBrowser,
    visible_text,
    wait,
)

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("plain_http_cookies")]

SCREEN = (1366, 768)
OS_ID = 5501
# A typical sale as the front-end closes it: customer, patient, appointment, one O.S.
SALE = {
    **bodies.MAIN,
    **bodies.appointment(9876),
    **bodies.service_orders("HC-000123", [OS_ID]),
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


def test_pages_of_a_closed_sale_fit_two_screens(
    browser: Any, live_server: Any, standin: MifactStandin, api: APIClient, screenshot: Any
) -> None:
    """A typical closed sale at 1366x768: its O.S and comprobante on the first screen, the whole
    page within two; the long sections fold. Also the O.S list and page, the waiting list and the
    start page, measured."""
    from selenium.webdriver.common.by import By

    opportunity = closed_sale(api, standin)
    row = OpportunityServiceOrder.objects.get()
    staff = StaffBrowser(browser, live_server)
    staff.sign_in(*SCREEN)
    staff.open(reverse("admin:opportunities_opportunity_change", args=[opportunity.pk]))
    height = snap(browser, screenshot, "opportunity_closed_1366")
    assert height <= 2 * SCREEN[1], height
    for group in ("service_orders-group", "attachments-group"):
        top = browser.execute_script(f"return document.getElementById('{group}').getBoundingClientRect().top")
        assert top < SCREEN[1], (group, top)  # billing on the first screen
    folded = browser.find_elements(By.CSS_SELECTOR, "#content-main details:not([open]) > summary")
    names = {summary.text.strip() for summary in folded}
    assert {"Cliente", "Paciente", "Cita"} <= names, names
    folded[0].click()  # one click unfolds a section
    assert browser.find_elements(By.CSS_SELECTOR, "#content-main details[open]")
    staff.open(reverse("admin:billing_opportunityserviceorder_changelist"))
    snap(browser, screenshot, "service_order_list_1366")
    staff.open(reverse("admin:billing_opportunityserviceorder_change", args=[row.pk]))
    snap(browser, screenshot, "service_order_page_1366")
    staff.open(reverse("admin:billing_saleawaitinginvoice_changelist"))
    snap(browser, screenshot, "waiting_list_1366")
    staff.open("/admin/")
    snap(browser, screenshot, "start_page_1366")


def test_void_check_now_and_reissue(
    browser: Any, live_server: Any, standin: MifactStandin, api: APIClient, screenshot: Any
) -> None:
    """The clerk is told of a void: one click shows it everywhere; the reissue, one more click."""
    opportunity = closed_sale(api, standin)
    opportunity_url = reverse("admin:opportunities_opportunity_change", args=[opportunity.pk])
    os_list = reverse("admin:billing_opportunityserviceorder_changelist")
    staff = StaffBrowser(browser, live_server)
    staff.sign_in(*SCREEN)

    # Voided at invoice-mifact minutes after the invoice: the follow-up interval (60 min) does not
    # apply to a check the clerk asks for.
    standin.void(OS_ID)
    staff.open(os_list, "#result_list")
    run_check_action(browser)
    messages = visible_text(browser, "ul.messagelist")
    assert "Ya facturadas: comprobante vigente 0; anulado (espera reemisión) 1; reemitido 0." in messages
    assert "Comprobante anulado, esperando reemisión" in visible_text(browser, "#result_list")
    snap(browser, screenshot, "void_service_order_list_1366")
    # The API no longer presents the voided comprobante as current.
    (listed,) = api.get(f"/opportunity/{opportunity.pk}/service-orders").json()
    assert (listed["facturado"], listed["invoiceResultHeadId"], listed["urlSoles"], listed["urlDolares"]) == (
        False,
        None,
        None,
        None,
    )
    row = OpportunityServiceOrder.objects.get()
    staff.open(reverse("admin:billing_opportunityserviceorder_change", args=[row.pk]))
    page = visible_text(browser)
    assert "Comprobante anulado, esperando reemisión" in page
    assert "Facturada:" in page and "Comprobante anulado:" in page
    snap(browser, screenshot, "void_service_order_page_1366")
    staff.open(reverse("admin:billing_saleawaitinginvoice_changelist"), "#result_list")
    assert "comprobante anulado: espera reemisión" in visible_text(browser, "#result_list")
    staff.open(opportunity_url)
    past = visible_text(browser, "#attachments-2-group")
    assert "Anulado (cabecera 1000)" in past and past.count("Anulado (cabecera 1000)") == 2
    assert "os-5501-soles.pdf" not in visible_text(browser, "#attachments-group")  # none valid now
    snap(browser, screenshot, "void_opportunity_1366")

    # Reissued: the check from the opportunity list completes it again.
    standin.invoice(OS_ID, soles=True, head_id=1001)
    staff.open(f"{reverse('admin:opportunities_opportunity_changelist')}?q={opportunity.pk}")
    run_check_action(browser)
    assert "facturadas: 1" in visible_text(browser, "ul.messagelist")
    staff.open(opportunity_url)
    valid = visible_text(browser, "#attachments-group")
    assert "os-5501-soles.pdf" in valid and "1001" in valid
    past = visible_text(browser, "#attachments-2-group")
    assert past.count("Anulado (cabecera 1000)") == 2
    # Valid ones first, the voided set apart below them.
    order = browser.execute_script(
        "return ['service_orders-group', 'attachments-group', 'attachments-2-group']"
        ".map(id => document.getElementById(id).getBoundingClientRect().top)"
    )
    assert order == sorted(order), order

    # Reissued again while invoiced: the earlier valid PDF is replaced, labelled with its head.
    standin.invoice(OS_ID, soles=True, head_id=1002)
    staff.open(os_list, "#result_list")
    run_check_action(browser)
    assert "reemitido 1." in visible_text(browser, "ul.messagelist")
    staff.open(opportunity_url)
    assert "1002" in visible_text(browser, "#attachments-group")
    assert "Reemplazado (cabecera 1001)" in visible_text(browser, "#attachments-2-group")
    # The history tells it in Spanish, with no raw key outside the technical details.
    from selenium.webdriver.common.by import By

    browser.find_element(By.CSS_SELECTOR, "#history-group fieldset > details > summary").click()
    history = visible_text(browser, "#history-group")
    assert "Se anuló el comprobante de la O.S 5501" in history
    assert "Se reemitió el comprobante de la O.S 5501" in history
    for key in ("serviceOrderId", "oldInvoiceResultHeadId", "attachmentIds", "invoiceResultHeadId"):
        assert key not in history, key
    snap(browser, screenshot, "reissue_opportunity_1366")


def test_an_outage_and_an_os_on_two_sales_are_said_where_staff_look(
    browser: Any, live_server: Any, clerk: Any, screenshot: Any
) -> None:
    """The clinic day of devtools/workspace_data.py (its last poll run could not use
    invoice-mifact: not configured) with O.S 456 registered on a second sale by mistake."""
    from devtools.workspace_data import seed_workspace

    space = seed_workspace()
    OpportunityServiceOrder.objects.create(opportunity=space.jose, service_order_id=456)
    staff = StaffBrowser(browser, live_server)
    staff.sign_in(*SCREEN)
    for name, shot in (
        ("admin:billing_saleawaitinginvoice_changelist", "outage_waiting_list_1366"),
        ("admin:billing_opportunityserviceorder_changelist", "outage_service_order_list_1366"),
    ):
        staff.open(reverse(name), "#crm-mifact-outage")
        notice = visible_text(browser, "#crm-mifact-outage")
        assert "no tiene configurada la conexión con el sistema de facturación" in notice
        assert "Desde el" in notice and "Debe actuar: TI de la clínica." in notice
        snap(browser, screenshot, shot)
    assert visible_text(browser, "#result_list").count("También en otra venta (1)") == 2
    for sale in (space.lucia, space.jose):
        staff.open(reverse("admin:opportunities_opportunity_change", args=[sale.pk]))
        assert "Esta O.S también está registrada en otra venta" in visible_text(browser, "#service_orders-group")
    snap(browser, screenshot, "shared_os_opportunity_1366")
    staff.open("/admin/", "#crm-shared")
    assert "O.S registradas en más de una venta: 1" in visible_text(browser, "#crm-shared")
    snap(browser, screenshot, "shared_os_start_page_1366")
