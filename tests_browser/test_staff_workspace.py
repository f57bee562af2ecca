"""The staff workspace in a real browser, as a staff member uses it (docs/admin.md): the start
page, the sales waiting for an invoice and why one is stuck, an opportunity's history in Spanish,
a search typed without accents; at 1366 px (and the start page and lists at 1920 px) nothing
scrolls sideways. Each test saves what the person saw in tests_browser/screenshots/.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from devtools.workspace_data import Workspace, seed_workspace
from tests_browser.conftest import set_viewport

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("plain_http_cookies")]

WAIT_SECONDS = 20
USERNAME, PASSWORD = "recepcion", "Clave-Recepcion-2026"
STAFF_PERMISSIONS = (
    ("opportunities", "view_opportunity"),
    ("opportunities", "change_opportunity"),
    ("opportunities", "view_attachment"),
    ("opportunities", "view_meeting"),
    ("opportunities", "view_actionhistory"),
    ("opportunities", "view_svdelivery"),
    ("billing", "view_opportunityserviceorder"),
    ("billing", "change_opportunityserviceorder"),
    ("jobs", "view_commandrun"),
    ("jobs", "view_webhookdelivery"),
)
# A list fits when neither the page nor the list's own box scrolls sideways.
OVERFLOW = """
    const results = document.querySelector('#changelist .results');
    return {
        page: document.documentElement.scrollWidth - window.innerWidth,
        list: results ? results.scrollWidth - results.clientWidth : 0,
    };
"""


def wait(browser: Any) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, WAIT_SECONDS)


@pytest.fixture
def workspace(django_user_model: Any) -> Workspace:
    user = django_user_model.objects.create_user(username=USERNAME, password=PASSWORD, is_staff=True)
    for app_label, codename in STAFF_PERMISSIONS:
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    return seed_workspace()


class StaffBrowser:
    """The browser of the staff member of `workspace` on the live server."""

    def __init__(self, browser: Any, live_server: Any) -> None:
        self.browser = browser
        self.live_server = live_server

    def sign_in(
        self,
        width: int = 1366,
        height: int = 900,
        *,
        username: str = USERNAME,
        password: str = PASSWORD,
        ready: str = "user-tools",
    ) -> None:
        """At a `width` x `height` viewport, through the login form, until the element with id
        `ready` is on the page (the user menu, once in)."""
        from selenium.webdriver.common.by import By
        from selenium.webdriver.common.keys import Keys
        from selenium.webdriver.support import expected_conditions as ec

        set_viewport(self.browser, width, height)
        self.browser.delete_all_cookies()
        self.browser.get(f"{self.live_server.url}/admin/login/?next=/admin/")
        self.browser.find_element(By.ID, "id_username").send_keys(username)
        self.browser.find_element(By.ID, "id_password").send_keys(password + Keys.ENTER)
        wait(self.browser).until(ec.presence_of_element_located((By.ID, ready)))

    def open(self, path: str, ready: str = "#content") -> None:
        """`path`, once the element `ready` is on the page."""
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions as ec

        self.browser.get(f"{self.live_server.url}{path}")
        wait(self.browser).until(ec.presence_of_element_located((By.CSS_SELECTOR, ready)))


@pytest.fixture
def staff(browser: Any, live_server: Any, workspace: Workspace) -> StaffBrowser:
    return StaffBrowser(browser, live_server)


def visible_text(browser: Any, selector: str = "#content") -> str:
    from selenium.webdriver.common.by import By

    return re.sub(r"\s+", " ", browser.find_element(By.CSS_SELECTOR, selector).text)


def assert_fits(browser: Any, where: str) -> None:
    overflow = browser.execute_script(OVERFLOW)
    assert overflow == {"page": 0, "list": 0} or (overflow["page"] <= 0 and overflow["list"] <= 0), (where, overflow)


@pytest.mark.parametrize("width", [1366, 1920])
def test_the_start_page_answers_what_waits_and_why(
    browser: Any, staff: StaffBrowser, screenshot: Any, record_title: Any, width: int
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec

    staff.sign_in(width)
    assert record_title() == "Inicio | CRM Clínica"
    waiting = visible_text(browser, "#crm-waiting")
    assert waiting.startswith("Ventas esperando factura 3 La que más espera: Procedimiento láser - José Peña")
    assert "desde hace 10 días" in waiting
    errors = visible_text(browser, "#crm-errors")
    assert "O.S con error 2 de 4 O.S pendientes." in errors
    assert "Debe actuar TI de la clínica: 1" in errors and "Debe actuar Facturación: 1" in errors
    assert "Pendientes: 2 Fallidos: 1" in visible_text(browser, "#crm-sv")
    poll = visible_text(browser, "#crm-run-poll_invoices")
    assert "parcial" in poll and "Debe actuar: TI de la clínica." in poll
    assert "correcta" in visible_text(browser, "#crm-run-sync_sv")
    assert "correcta" in visible_text(browser, "#crm-run-send_events")
    # Two charts drawn on the server: 4 age ranges, 12 weeks of closings.
    assert len(browser.find_elements(By.CSS_SELECTOR, "#crm-chart-ages svg rect")) == 4
    assert "30/11" in visible_text(browser, "#crm-chart-closings") or browser.find_elements(
        By.CSS_SELECTOR, "#crm-chart-closings svg a"
    )
    assert_fits(browser, f"start page at {width}px")
    screenshot(f"start_page_{width}")

    # One click: the number opens the list, the sale that waited longest first.
    browser.find_element(By.CSS_SELECTOR, "#crm-waiting .crm-number a").click()
    wait(browser).until(ec.presence_of_element_located((By.ID, "result_list")))
    first_row = browser.find_element(By.CSS_SELECTOR, "#result_list tbody tr").text
    assert "José Peña" in first_row and "OS-789" in first_row


def test_the_waiting_list_says_why_an_os_is_stuck_and_who_must_act(
    browser: Any, staff: StaffBrowser, screenshot: Any, record_title: Any
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec

    staff.sign_in()
    staff.open(reverse("admin:billing_saleawaitinginvoice_changelist"), "#result_list")
    assert "Ventas esperando factura" in record_title()
    rows = [row.text for row in browser.find_elements(By.CSS_SELECTOR, "#result_list tbody tr")]
    assert [("José" in r, "Lucía" in r, "Ramón" in r) for r in rows] == [
        (True, False, False),
        (False, True, False),
        (False, False, True),
    ]
    assert "El sistema de facturación no conoce esta O.S" in rows[0] and "Debe actuar: Facturación." in rows[0]
    assert "El CRM no tiene configurada la conexión" in rows[1] and "Debe actuar: TI de la clínica." in rows[1]
    assert "Consultar estado de facturación ahora" in visible_text(browser, "#changelist-form")
    assert_fits(browser, "waiting list at 1366px")
    screenshot("waiting_list_1366")

    # The O.S is a link: its page explains the problem, what to do, and keeps the technical text.
    browser.find_element(By.LINK_TEXT, "OS-789").click()
    wait(browser).until(ec.presence_of_element_located((By.CSS_SELECTOR, ".crm-problem")))
    problem = visible_text(browser, ".crm-problem")
    assert "Debe actuar: Facturación." in problem
    assert "Verificar en invoice-mifact el número de la O.S registrada en la venta." in problem
    assert "Detalle técnico: invoice-mifact: invoice-mifact respondió 404 para la O.S 789" in problem
    assert "Registrada" in visible_text(browser) and "OS-789" in visible_text(browser)
    assert_fits(browser, "service order page at 1366px")
    screenshot("service_order_1366")


def test_an_opportunity_tells_what_changed_and_who_changed_it(
    browser: Any, staff: StaffBrowser, workspace: Workspace, screenshot: Any
) -> None:
    from selenium.webdriver.common.by import By

    staff.sign_in()
    staff.open(
        reverse("admin:opportunities_opportunity_change", args=[workspace.lucia.pk]),
        "#history-group",
    )
    # A closed sale's history is folded below its billing: one click opens it.
    browser.find_element(By.CSS_SELECTOR, "#history-group fieldset > details > summary").click()
    history = visible_text(browser, "#history-group")
    assert "Actualizó los datos del paciente y la cita desde el sistema de ventas" in history
    assert "Historia clínica: (vacío) → HC-000123" in history
    assert "Doctor: Dra. Paredes → Dr. Rojas" in history
    assert "Cerrada como Cierre ganado con O.S 456, 457" in history
    assert "Corrigió datos en la administración" in history and "recepcion" in history
    assert "cClinicHistory" not in history  # the stored data stays folded away...
    details = browser.find_elements(By.CSS_SELECTOR, "#history-group details.crm-raw")
    assert details and not details[0].get_attribute("open")
    details[0].find_element(By.TAG_NAME, "summary").click()
    assert details[0].get_attribute("open")  # ...one click away
    assert "Pendiente de cierre" in visible_text(browser, "fieldset")
    assert_fits(browser, "opportunity page at 1366px")
    screenshot("opportunity_history_1366")


def test_a_search_typed_without_accents_finds_the_patient(browser: Any, staff: StaffBrowser, screenshot: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as ec

    staff.sign_in()
    staff.open(reverse("admin:opportunities_opportunity_changelist"), "#searchbar")
    assert_fits(browser, "opportunity list at 1366px")
    browser.find_element(By.ID, "searchbar").send_keys("lucia QUISPE" + Keys.ENTER)
    wait(browser).until(ec.url_contains("q=lucia"))
    rows = browser.find_elements(By.CSS_SELECTOR, "#result_list tbody tr")
    assert len(rows) == 1 and "Lucía" in rows[0].text and "Pendiente de cierre" in rows[0].text
    assert_fits(browser, "opportunity search at 1366px")
    screenshot("search_without_accents_1366")

    staff.open(reverse("admin:billing_opportunityserviceorder_changelist"), "#searchbar")
    browser.find_element(By.ID, "searchbar").send_keys("os-456" + Keys.ENTER)
    wait(browser).until(ec.url_contains("q=os-456"))
    rows = browser.find_elements(By.CSS_SELECTOR, "#result_list tbody tr")
    assert len(rows) == 1 and "OS-456" in rows[0].text and "Consulta dermatología" in rows[0].text


@pytest.mark.parametrize("width", [1366, 1920])
def test_every_list_fits_the_screen(browser: Any, staff: StaffBrowser, width: int) -> None:
    staff.sign_in(width)
    for name in (
        "opportunities_opportunity",
        "billing_saleawaitinginvoice",
        "billing_opportunityserviceorder",
        "opportunities_svdelivery",
        "opportunities_actionhistory",
        "opportunities_attachment",
        "jobs_commandrun",
        "jobs_webhookdelivery",
    ):
        staff.open(reverse(f"admin:{name}_changelist"), "#changelist")
        assert_fits(browser, f"{name} at {width}px")
