"""The front-end in a browser, from its own origin (docs/api.md "Calling from a browser").

Headless Chromium loads a static page (`e2e/front_end/index.html`) served from another origin
than the API (another port on 127.0.0.1, the one in CORS_ALLOWED_ORIGINS) and, as the CRM's
single-page app does, signs in, creates an opportunity, sends the four cases of the process
update, closes with a direct invoice, reads `X-Request-ID` (and `ETag`, when an answer has one)
and opens the comprobante's signed link: by fetch() without the token, as a link in a new tab and
in a preview frame. The same page served from a foreign origin gets nothing: the browser
refuses the answers.

Skipped without Chromium, unless REQUIRE_BROWSER=1 (as .ci/run sets it), which makes it fail.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devtools.browser import chromium_for_tests
from devtools.testing import LocalHTTPServer, make_pdf
from e2e import bodies
from e2e.harness import API_PASSWORD, API_USER, Stack

PAGE = Path(__file__).resolve().parent / "front_end" / "index.html"
WAIT_SECONDS = 30.0


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium_for_tests() as driver:
        driver.set_script_timeout(WAIT_SECONDS * 2)
        yield driver


def serve_page(server: LocalHTTPServer) -> None:
    server.route("/index.html", body=PAGE.read_bytes(), headers={"Content-Type": "text/html; charset=utf-8"})


def open_page(browser: Any, server: LocalHTTPServer, stack: Stack) -> None:
    serve_page(server)
    browser.get(server.url(f"/index.html?api={stack.base_url}"))
    browser.get_log("performance")  # start the logs read by the checks from this page on
    browser.get_log("browser")


def page_call(browser: Any, function: str, *args: Any) -> Any:
    """`await window[function](...args)` in the page; a rejected promise fails the test."""
    result = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        f"{function}(...Array.from(arguments).slice(0, -1))"
        ".then((value) => done({value}), (error) => done({error: `${error.name}: ${error.message}`}));",
        *args,
    )
    assert "error" not in result, f"{function} failed in the page: {result['error']}"
    return result["value"]


def received_headers(browser: Any) -> dict[str, dict[str, str]]:
    """The headers of every response Chromium received since the last read (its performance
    log), by the X-Request-ID they carry; names in lowercase."""
    received = {}
    for entry in browser.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.responseReceived":
            headers = {name.lower(): value for name, value in message["params"]["response"]["headers"].items()}
            if "x-request-id" in headers:
                received[headers["x-request-id"]] = headers
    return received


def wait_for(condition: Any, what: str) -> Any:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def server_log_since(stack: Stack, offset: int) -> str:
    with stack.log_path("gunicorn").open("rb") as log:
        log.seek(offset)
        return log.read().decode("utf-8", "replace")


def console(browser: Any) -> list[str]:
    """The page's console messages since the last call (the browser's own refusals among them)."""
    return [entry["message"] for entry in browser.get_log("browser")]


def refused_frames(messages: list[str]) -> list[str]:
    return [m for m in messages if "frame-ancestors" in m or "X-Frame-Options" in m]


def test_the_front_end_on_its_own_origin_closes_a_sale_and_opens_the_comprobante(
    browser, stack, api, pdf_server, new_id
):
    reservation_id = new_id()
    clinic_history = f"HC-{reservation_id}"
    pdf = make_pdf(f"Factura directa desde el navegador F001-{reservation_id}")
    pdf_server.route(f"/facturas/F001-{reservation_id}.pdf", body=pdf)
    log_offset = stack.log_offset("gunicorn")
    open_page(browser, stack.front_server, stack)

    result = page_call(
        browser,
        "runScenario",
        {
            "username": API_USER,
            "password": API_PASSWORD,
            "name": f"E2E navegador - Consulta - {reservation_id}",
            "updates": [
                bodies.appointment(reservation_id),  # solo_cita
                bodies.MAIN,  # solo_datos_principales
                {**bodies.MAIN, **bodies.appointment(reservation_id, doctor="Dr. Luis Paredes")},
                {"cLastNameMother": "Mamani"},  # otro
            ],
            "close": bodies.direct_invoice(clinic_history, pdf_server.url(f"/facturas/F001-{reservation_id}.pdf")),
        },
    )
    steps = result["steps"]
    assert [(s["method"], s["status"]) for s in steps] == [
        ("POST", 200),
        ("POST", 201),
        *[("PUT", 200)] * 5,
        ("GET", 200),
        ("GET", 200),
    ], [(s["method"], s["path"], s["status"], s["body"]) for s in steps]
    closed = steps[6]["body"]["opportunity"]
    assert (closed["stage"], closed["cFacturacionSubEstado"], closed["isPresaved"]) == (
        "Cierre ganado",
        "factura_directa",
        False,
    )

    # The page reads the headers the API exposes: its own X-Request-ID comes back on every answer,
    # and an ETag as the browser received it (none until the opportunity carries one).
    network = received_headers(browser)
    for step in steps:
        assert step["requestId"] == step["sentRequestId"], step
        received = network[step["sentRequestId"]]
        assert received["access-control-allow-origin"] == f"http://{stack.front_server.host_port}"
        assert step["etag"] == received.get("etag"), step

    # The four cases reached the history.
    history = api.listing(result["opportunityId"], "action-history")
    cases = {r["data"]["case"] for r in history if r["action"] == "opportunity_updated"}
    assert {"solo_cita", "solo_datos_principales", "datos_principales_y_cita", "otro"} <= cases, cases

    # The signed link opened by fetch() without the token: the comprobante's bytes.
    opened = result["opened"]
    assert (opened["status"], opened["contentType"], opened["head"]) == (200, "application/pdf", "%PDF-")
    assert opened["sha256"] == hashlib.sha256(pdf).hexdigest()
    print(f"signed link opened by fetch() in the browser in {opened['milliseconds']:.1f} ms")
    # ... and logged with the request id, the attachment and the user it was issued to.
    wait_for(lambda: opened["requestId"] in server_log_since(stack, log_offset), "the opening's log line")
    opening_lines = [
        json.loads(line)
        for line in server_log_since(stack, log_offset).splitlines()
        if line.startswith("{") and "opened by signed link" in line
    ]
    [first_opening] = [line for line in opening_lines if line.get("request_id") == opened["requestId"]]
    assert first_opening["opportunity_id"] == result["opportunityId"]
    assert f"({API_USER})" in first_opening["message"]

    # The link as a link: a new tab shows the PDF; and as a preview frame in the page. Each
    # opening reaches the server (one more log line) and the browser shows a PDF document.
    from selenium.webdriver.common.by import By

    def openings() -> int:
        return server_log_since(stack, log_offset).count("opened by signed link")

    page_window = browser.current_window_handle
    browser.find_element(By.ID, "comprobante").click()
    wait_for(lambda: len(browser.window_handles) == 2, "the new tab")
    browser.switch_to.window(next(handle for handle in browser.window_handles if handle != page_window))
    wait_for(lambda: browser.execute_script("return document.contentType") == "application/pdf", "the PDF tab")
    wait_for(lambda: openings() == 2, "the tab's opening in the server log")
    browser.close()
    browser.switch_to.window(page_window)

    browser.execute_script("showInFrame(arguments[0])", result["link"])
    wait_for(lambda: openings() == 3, "the preview frame's opening in the server log")
    browser.switch_to.frame("preview")
    wait_for(lambda: browser.execute_script("return document.contentType") == "application/pdf", "the PDF frame")
    browser.switch_to.default_content()
    assert refused_frames(console(browser)) == []


def test_a_page_from_a_foreign_origin_is_refused_by_the_browser(browser, stack, api, pdf_server):
    with LocalHTTPServer() as foreign:
        offset = stack.log_offset("gunicorn")
        open_page(browser, foreign, stack)
        outcomes = page_call(browser, "tryFromHere", API_USER, API_PASSWORD)
        assert outcomes == {"signin": "TypeError: Failed to fetch", "health": "TypeError: Failed to fetch"}
        blocked = [m for m in console(browser) if "blocked by CORS policy" in m]
        assert any("/auth/signin" in m and "preflight" in m for m in blocked), blocked
        assert any("/health" in m for m in blocked), blocked
        # The preflight reached the API and got no Access-Control-* header, so the browser never
        # sent the sign-in itself; the plain GET was answered, but the page may not read it. The
        # worker writes its access-log line after answering: wait for it rather than race it.
        wait_for(lambda: re.search(r'"GET /health HTTP/1\.1"', server_log_since(stack, offset)), "the /health log line")
        served = server_log_since(stack, offset)
        assert re.search(r'"OPTIONS /auth/signin HTTP/1\.1" 200', served), served
        assert not re.search(r'"POST /auth/signin HTTP', served), served
        assert re.search(r'"GET /health HTTP/1\.1" 200', served), served

        # A comprobante's link may not be framed by a foreign page either.
        opportunity = api.create_opportunity("E2E navegador - origen ajeno")
        pdf_server.route("/facturas/ajeno.pdf", body=make_pdf("ajeno"))
        api.put_process(opportunity["id"], bodies.direct_invoice("HC-AJENO", pdf_server.url("/facturas/ajeno.pdf")))
        link = api.listing(opportunity["id"], "attachments")[0]["downloadUrl"]
        browser.execute_script("showInFrame(arguments[0])", link)
        refused = wait_for(lambda: refused_frames(console(browser)), "the browser to refuse the frame")
        assert "violates the following Content Security Policy directive" in refused[0], refused
