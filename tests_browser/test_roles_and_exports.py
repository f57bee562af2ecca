"""Staff roles, exports and the admin's own pages in a real browser at 1366 px (docs/admin.md
"Roles", "Exports", "Error pages", "Admin-login lockouts"): each role logs in and its start page
lists exactly its pages; a page it may not see is the admin's 403 page; the waiting list's export
keeps the filter and its XLSX file holds the filtered rows; an unknown admin address is the
admin's 404 page; the lockout page says how long and leads back to the login.
"""

from __future__ import annotations

import io
import re
import urllib.parse
import urllib.request
from typing import Any

import openpyxl
import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from devtools.admin_testing import staff_roles_restore
from devtools.workspace_data import Workspace, seed_workspace
from sales.roles import BILLING, SALES, SUPERVISION
from tests_browser.test_staff_workspace import StaffBrowser, assert_fits, visible_text, wait

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("plain_http_cookies")]

PASSWORD = "Clave-Rol-2026"
# The lists each role's start page offers (app list links), as admin URL names.
ROLE_PAGES = {
    SALES: {"opportunities_opportunity", "opportunities_actionhistory", "opportunities_attachment"},
    BILLING: {
        "opportunities_opportunity",
        "opportunities_actionhistory",
        "opportunities_attachment",
        "opportunities_svdelivery",
        "billing_opportunityserviceorder",
        "billing_saleawaitinginvoice",
        "jobs_event",
        "jobs_webhookdelivery",
    },
    SUPERVISION: {
        "opportunities_opportunity",
        "opportunities_actionhistory",
        "opportunities_attachment",
        "opportunities_svdelivery",
        "billing_opportunityserviceorder",
        "billing_saleawaitinginvoice",
        "jobs_commandrun",
        "jobs_event",
        "jobs_webhookdelivery",
        "jobs_webhookendpoint",
        "axes_accessattempt",
        "axes_accessfailurelog",
        "axes_accesslog",
    },
}
FORBIDDEN = {SALES: "billing_saleawaitinginvoice", BILLING: "jobs_commandrun", SUPERVISION: "auth_user"}
SLUG = {SALES: "ventas", BILLING: "facturacion", SUPERVISION: "supervision"}


@pytest.fixture
def role_users(django_user_model: Any) -> Workspace:
    staff_roles_restore()
    for role, username in SLUG.items():
        user = django_user_model.objects.create_user(username=username, password=PASSWORD, is_staff=True)
        user.groups.add(Group.objects.get(name=role))
    return seed_workspace()


def log_in_as(
    browser: Any, live_server: Any, username: str, password: str = PASSWORD, ready: str = "user-tools"
) -> StaffBrowser:
    """Log in at 1366 px and wait for the element with id `ready` (the user menu, once in)."""
    staff = StaffBrowser(browser, live_server)
    staff.sign_in(username=username, password=password, ready=ready)
    return staff


def start_page_lists(browser: Any) -> set[str]:
    from selenium.webdriver.common.by import By

    names = set()
    for link in browser.find_elements(By.CSS_SELECTOR, "#content-main .app-list a, #content-main table a"):
        match = re.fullmatch(r".*/admin/(\w+)/(\w+)/", link.get_attribute("href") or "")
        if match:
            names.add(f"{match[1]}_{match[2]}")
    return names


@pytest.mark.parametrize("role", [SALES, BILLING, SUPERVISION])
def test_each_role_sees_exactly_its_pages_and_the_admins_403_for_another(
    browser: Any, live_server: Any, role_users: Workspace, screenshot: Any, role: str
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec

    staff = log_in_as(browser, live_server, SLUG[role])
    assert "No cuenta con permiso" not in visible_text(browser)
    assert start_page_lists(browser) == ROLE_PAGES[role]
    assert_fits(browser, f"start page of {role}")
    screenshot(f"role_{SLUG[role]}_start_1366")
    for name in sorted(ROLE_PAGES[role]):
        staff.open(reverse(f"admin:{name}_changelist"), "#changelist")
        assert_fits(browser, f"{name} for {role}")

    browser.get(f"{live_server.url}{reverse(f'admin:{FORBIDDEN[role]}_changelist')}")
    wait(browser).until(ec.presence_of_element_located((By.ID, "crm-error-page")))
    assert browser.title.startswith("No tiene permiso para ver esta página")
    assert "CRM Clínica · Administración" in visible_text(browser, "#header")
    assert "pida a un administrador del CRM que lo agregue al grupo de su rol" in visible_text(browser)
    screenshot(f"role_{SLUG[role]}_403_1366")
    browser.find_element(By.LINK_TEXT, "Volver al inicio").click()
    wait(browser).until(ec.presence_of_element_located((By.CSS_SELECTOR, ".crm-start")))


def test_the_waiting_list_export_keeps_the_filter_and_the_xlsx_holds_those_rows(
    browser: Any, live_server: Any, role_users: Workspace, screenshot: Any
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import Select

    staff = log_in_as(browser, live_server, "facturacion")
    staff.open(reverse("admin:billing_saleawaitinginvoice_changelist"), "#changelist")
    browser.find_element(By.LINK_TEXT, "Debe actuar: Facturación").click()
    wait(browser).until(ec.url_contains("problema=facturacion"))
    assert len(browser.find_elements(By.CSS_SELECTOR, "#result_list tbody tr")) == 1
    screenshot("export_waiting_list_filtered_1366")
    browser.find_element(By.CSS_SELECTOR, "a.export_link").click()
    wait(browser).until(ec.url_contains("/export/?problema=facturacion"))
    columns = "Venta, Paciente, Historia clínica, O.S pendientes, Esperando desde, Última consulta, Último error"
    assert columns in visible_text(browser)
    assert "El archivo tendrá las columnas de la lista" in visible_text(browser)
    Select(browser.find_element(By.ID, "id_format")).select_by_visible_text("xlsx")
    screenshot("export_page_1366")

    # The browser's own download is not readable here: send its form with its session instead.
    form = browser.find_element(By.CSS_SELECTOR, "#content form")
    fields = {
        element.get_attribute("name"): element.get_attribute("value")
        for element in form.find_elements(By.CSS_SELECTOR, "input[name], select[name]")
    }
    cookies = "; ".join(f"{c['name']}={c['value']}" for c in browser.get_cookies())
    request = urllib.request.Request(
        browser.current_url,
        data=urllib.parse.urlencode(fields).encode(),
        headers={"Cookie": cookies, "Referer": browser.current_url},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.headers["Content-Disposition"].endswith('.xlsx"')
        sheet = openpyxl.load_workbook(io.BytesIO(response.read())).active
    rows = [list(row) for row in sheet.iter_rows(values_only=True)]
    assert rows[0] == columns.split(", ")
    assert [row[0] for row in rows[1:]] == ["Procedimiento láser - José Peña"]


def test_an_unknown_admin_address_is_the_admins_404_page(
    browser: Any, live_server: Any, role_users: Workspace, screenshot: Any
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec

    log_in_as(browser, live_server, "supervision")
    browser.get(f"{live_server.url}/admin/no-existe/")
    wait(browser).until(ec.presence_of_element_located((By.ID, "crm-error-page")))
    assert "Página no encontrada" in visible_text(browser) and "{" not in visible_text(browser)
    screenshot("admin_404_1366")


def test_the_lockout_page_says_how_long_and_leads_back_to_the_login(
    browser: Any, live_server: Any, role_users: Workspace, screenshot: Any, settings: Any
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec

    settings.AXES_FAILURE_LIMIT = 2
    log_in_as(browser, live_server, "ventas", "clave-equivocada", ready="id_username")
    log_in_as(browser, live_server, "ventas", "clave-equivocada", ready="crm-lockout")
    text = visible_text(browser)
    assert "Acceso bloqueado temporalmente" in text and "El bloqueo dura 15 minutos" in text
    assert "CRM Clínica · Administración" in visible_text(browser, "#header")
    screenshot("lockout_1366")
    browser.find_element(By.LINK_TEXT, "Volver al inicio de sesión").click()
    wait(browser).until(ec.presence_of_element_located((By.ID, "id_username")))


def test_the_opportunity_page_has_one_date_format_and_no_repeated_row_captions(
    browser: Any, live_server: Any, role_users: Workspace, screenshot: Any
) -> None:
    from selenium.webdriver.common.by import By

    staff = log_in_as(browser, live_server, "supervision")
    url = reverse("admin:opportunities_opportunity_change", args=[role_users.lucia.pk])
    staff.open(url, "#history-group")
    text = visible_text(browser)
    assert re.search(r"Creada: \d{2}/\d{2}/\d{4} \d{2}:\d{2}", text), text[:300]
    assert not re.search(r"\d{1,2} de [a-z]+ de \d{4}", text)  # Django's long dates are gone
    # Django writes a caption above each inline row; the CSS hides it. The history section
    # (sales/admin_history.py, not an inline) writes none.
    captions = browser.find_elements(By.CSS_SELECTOR, "#sv_deliveries-group td.original p")
    assert captions and not any(caption.is_displayed() for caption in captions)
    assert browser.find_elements(By.CSS_SELECTOR, "#history-group tr.form-row")
    assert not browser.find_elements(By.CSS_SELECTOR, "#history-group td.original p")
    # An O.S row keeps its caption: it carries the link to the O.S page.
    assert browser.find_elements(By.CSS_SELECTOR, "#service_orders-group td.original p a")[0].is_displayed()
    assert_fits(browser, "opportunity page at 1366px")
    screenshot("opportunity_page_dates_captions_1366")
