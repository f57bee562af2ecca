"""End-to-end checks in a real browser: clinic staff find an opportunity in the admin by its
clinic history and see its service orders and comprobantes; Swagger UI renders the API; the docs
and the admin load nothing from other hosts."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

import pytest
import requests
from django.contrib.auth.models import Permission
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from billing.models import OpportunityServiceOrder
from devtools.testing import make_pdf
from opportunities.models import Attachment, Opportunity

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("plain_http_cookies")]

WAIT_SECONDS = 20
STAFF_PERMISSIONS = (
    ("opportunities", "view_opportunity"),
    ("opportunities", "view_attachment"),
    ("opportunities", "view_meeting"),
    ("opportunities", "view_actionhistory"),
    ("billing", "view_opportunityserviceorder"),
)


def wait(browser: Any) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, WAIT_SECONDS)


@pytest.fixture
def staff(django_user_model: Any) -> tuple[str, str]:
    user = django_user_model.objects.create_user(username="recepcion", password="Clave-Recepcion-2026", is_staff=True)
    for app_label, codename in STAFF_PERMISSIONS:
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    return "recepcion", "Clave-Recepcion-2026"


@pytest.fixture
def invoiced_opportunity(make_opportunity: Any) -> Opportunity:
    opportunity = make_opportunity(
        name="Venta consulta dermatología",
        stage="Cierre ganado",
        c_facturacion_sub_estado="factura_directa",
        is_presaved=False,
        c_clinic_history="HC-445566",
        c_patientsname="Rosa",
    )
    make_opportunity(name="Otra venta", c_clinic_history="HC-999000")
    OpportunityServiceOrder.objects.create(
        opportunity=opportunity, service_order_id=4321, facturado=True, invoice_result_head_id=88
    )
    body = make_pdf("F001-4321")
    name = default_storage.save(f"invoices/{opportunity.pk}/F001-4321.pdf", ContentFile(body))
    Attachment.objects.create(
        opportunity=opportunity,
        kind="comprobante_soles",
        file=name,
        file_name="F001-4321.pdf",
        size=len(body),
        sha256=hashlib.sha256(body).hexdigest(),
        source_url="http://mifact.test/api/files/F001-4321.pdf",
        service_order_id=4321,
    )
    return opportunity


def test_staff_finds_an_opportunity_by_clinic_history_and_sees_its_invoicing(
    browser: Any, live_server: Any, staff: tuple[str, str], invoiced_opportunity: Opportunity, record_title: Any
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as ec

    browser.delete_all_cookies()
    browser.get(f"{live_server.url}/admin/login/?next=/admin/")
    assert "Iniciar sesión" in record_title()
    # The admin's stylesheet is served (static files work in the live server).
    assert browser.execute_script("return getComputedStyle(document.body).getPropertyValue('--primary').trim()"), (
        "admin CSS was not loaded"
    )

    username, password = staff
    browser.find_element(By.ID, "id_username").send_keys(username)
    browser.find_element(By.ID, "id_password").send_keys(password + Keys.ENTER)
    wait(browser).until(ec.presence_of_element_located((By.ID, "user-tools")))
    assert "Inicio | CRM Clínica" in record_title()

    browser.find_element(By.LINK_TEXT, "Oportunidades").click()
    search = wait(browser).until(ec.presence_of_element_located((By.ID, "searchbar")))
    record_title()
    search.send_keys("HC-445566" + Keys.ENTER)
    wait(browser).until(ec.url_contains("q=HC-445566"))
    record_title()
    rows = browser.find_elements(By.CSS_SELECTOR, "#result_list tbody tr")
    assert len(rows) == 1 and "HC-445566" in rows[0].text

    rows[0].find_element(By.LINK_TEXT, invoiced_opportunity.name).click()
    wait(browser).until(ec.presence_of_element_located((By.ID, "service_orders-group")))
    assert invoiced_opportunity.name in record_title()

    service_orders = browser.find_element(By.ID, "service_orders-group").text
    assert "4321" in service_orders and "88" in service_orders
    attachments = browser.find_element(By.ID, "attachments-group")
    assert "F001-4321.pdf" in attachments.text
    link = attachments.find_element(By.LINK_TEXT, "Ver PDF").get_attribute("href")

    # The link streams the PDF to this staff session, and to nobody without one.
    cookies = {c["name"]: c["value"] for c in browser.get_cookies()}
    response = requests.get(link, cookies=cookies, timeout=WAIT_SECONDS, allow_redirects=False)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF-")
    anonymous = requests.get(link, timeout=WAIT_SECONDS, allow_redirects=False)
    assert anonymous.status_code == 302 and "/admin/login/" in anonymous.headers["Location"]


def test_swagger_ui_lists_the_process_update_endpoint(browser: Any, live_server: Any, record_title: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec

    browser.get(f"{live_server.url}/api/docs/")
    # Swagger UI builds the page in JavaScript from /api/schema/: wait for the operations.
    wait(browser).until(ec.presence_of_element_located((By.CSS_SELECTOR, ".opblock-put .opblock-summary-path")))
    record_title()
    put_paths = [
        element.get_attribute("data-path")
        for element in browser.find_elements(By.CSS_SELECTOR, ".opblock-put .opblock-summary-path")
    ]
    assert any(
        re.fullmatch(r"/opportunity/update-opportunity-procces/\{\w*id\}/?", path or "") for path in put_paths
    ), put_paths
    info_title = browser.find_element(By.CSS_SELECTOR, ".info .title").text
    assert "CRM de la clínica" in info_title


def requests_sent(browser: Any) -> list[str]:
    """URLs the browser fetched since the last call (Chromium's performance log), without the
    ones it refused to fetch (e.g. by Content-Security-Policy)."""
    sent: dict[str, str] = {}
    blocked: set[str] = set()
    for entry in browser.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            sent[message["params"]["requestId"]] = message["params"]["request"]["url"]
        elif message["method"] == "Network.loadingFailed" and message["params"].get("blockedReason"):
            blocked.add(message["params"]["requestId"])
    return [url for request_id, url in sent.items() if request_id not in blocked]


def test_docs_and_admin_load_nothing_from_other_hosts(
    browser: Any, live_server: Any, staff: tuple[str, str], invoiced_opportunity: Opportunity, record_title: Any
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as ec

    browser.delete_all_cookies()
    requests_sent(browser)  # forget earlier tests' requests
    seen: list[str] = []
    pages = [
        ("/api/redoc/", "li[role=menuitem]"),  # ReDoc built its menu from the schema
        ("/api/docs/", ".opblock-put"),
        ("/admin/login/?next=/admin/", "#id_username"),
    ]
    for path, ready in pages:
        browser.get(f"{live_server.url}{path}")
        wait(browser).until(ec.presence_of_element_located((By.CSS_SELECTOR, ready)))
        record_title()
        seen += requests_sent(browser)
    username, password = staff
    browser.find_element(By.ID, "id_username").send_keys(username)
    browser.find_element(By.ID, "id_password").send_keys(password + Keys.ENTER)
    wait(browser).until(ec.presence_of_element_located((By.ID, "user-tools")))
    for path in (
        "/admin/opportunities/opportunity/",
        f"/admin/opportunities/opportunity/{invoiced_opportunity.pk}/change/",
    ):
        browser.get(f"{live_server.url}{path}")
        wait(browser).until(ec.presence_of_element_located((By.ID, "content")))
        seen += requests_sent(browser)

    assert any(url.endswith("redoc.standalone.js") for url in seen), seen
    outside = [url for url in seen if not url.startswith((f"{live_server.url}/", "data:", "blob:"))]
    assert outside == [], outside
