"""The docs and the admin load everything from this server (docs/decisions.md, offline pages).

Each HTML page is fetched, then every script, stylesheet and image it references (and the
stylesheets those import), all from the server itself; none may name another host where a
browser would load from it: `src`/`href`/`srcset` attributes, `@import` and `url()` in CSS, and
`src`/`href` properties in scripts. The browser test (tests_browser/) watches Chromium's own
requests on the same pages.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import pytest
from django.test import Client

from devtools.testing import each_once
from devtools.workspace_data import seed_workspace

pytestmark = pytest.mark.django_db

HOST = "testserver"
ORIGIN = f"http://{HOST}"

# What the vendored ReDoc bundle (drf-spectacular-sidecar) names on another host. Neither is
# loaded: the link is a link (nothing is fetched until someone follows it), and the image is
# refused by the pages' Content-Security-Policy (img-src 'self' data:), checked below. Any other
# URL found in a script fails the test.
KNOWN_IN_VENDORED_SCRIPTS = {
    "https://redocly.com/redoc/": "the 'API docs by Redocly' link in ReDoc's menu",
    "https://cdn.redoc.ly/redoc/logo-mini.svg": "ReDoc's menu logo, blocked by img-src",
}

# The pages' Content-Security-Policy (crm/settings.py CONTENT_SECURITY_POLICY, sent by django-csp):
# loads from this origin only; inline scripts and styles, data: images and fonts, blob: workers.
SAME_ORIGIN_POLICY = {
    "default-src": "'self'",
    "script-src": "'self' 'unsafe-inline'",
    "style-src": "'self' 'unsafe-inline'",
    "img-src": "'self' data:",
    "font-src": "'self' data:",
    "worker-src": "'self' blob:",
    "connect-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'self'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}


def policy_of(response) -> dict[str, str]:
    """The response's Content-Security-Policy as {directive: sources} (the order of directives
    in the header is not part of the policy)."""
    parts = (part.strip().split(None, 1) for part in response["Content-Security-Policy"].split(";"))
    return {part[0]: part[1] if len(part) > 1 else "" for part in parts if part}


ABSOLUTE = r"""(?:https?:)?//[^\s"'`<>()\\]+"""
CSS_LOADS = re.compile(rf"""@import\s+(?:url\(\s*)?["']?({ABSOLUTE})|url\(\s*["']?({ABSOLUTE})""", re.I)
SCRIPT_LOADS = re.compile(
    rf"""\b(?:src|href|srcset)\s*[:=]\s*\\?["'`]({ABSOLUTE})|@import\s+(?:url\(\s*)?["']?({ABSOLUTE})"""
    rf"""|url\(\s*["']?({ABSOLUTE})""",
    re.I,
)


class PageParser(HTMLParser):
    """Collects URL attributes, and the text of inline scripts and styles."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.urls: list[tuple[str, str, str]] = []  # (tag, attribute, value)
        self.inline: list[tuple[str, str]] = []  # ("script" | "style", text)
        self._inline_tag: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value is None:
                continue
            if name in ("src", "href", "action", "poster", "data"):
                self.urls.append((tag, name, value))
            elif name == "srcset":
                self.urls.extend((tag, name, part.split()[0]) for part in value.split(",") if part.strip())
            elif name == "style":
                self.inline.append(("style", value))
        self._inline_tag = tag if tag in ("script", "style") else None

    def handle_endtag(self, tag: str) -> None:
        self._inline_tag = None

    def handle_data(self, data: str) -> None:
        if self._inline_tag:
            self.inline.append((self._inline_tag, data))


def other_host(url: str) -> bool:
    parts = urlsplit(urljoin(ORIGIN + "/", url))
    return parts.scheme in ("http", "https", "") and bool(parts.netloc) and parts.hostname != HOST


def scan(text: str, pattern: re.Pattern) -> set[str]:
    return {url for match in pattern.finditer(text) for url in match.groups() if url and other_host(url)}


def fetch(client: Client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    content = b"".join(response) if response.streaming else response.content
    return content.decode("utf-8", errors="replace")


def outside_urls_of_page(client: Client, path: str) -> tuple[set[str], set[str]]:
    """(URLs on other hosts in the page and its stylesheets, same in its scripts)."""
    page = PageParser()
    page.feed(fetch(client, path))
    in_page: set[str] = {value for _, _, value in page.urls if other_host(value)}
    in_scripts: set[str] = set()
    for kind, text in page.inline:
        (in_page if kind == "style" else in_scripts).update(scan(text, CSS_LOADS if kind == "style" else SCRIPT_LOADS))
    stylesheets = [
        urljoin(path, v)
        for tag, attr, v in page.urls
        if tag == "link" and not other_host(v) and v.split("?")[0].endswith(".css")
    ]
    scripts = [
        urljoin(path, v) for tag, attr, v in page.urls if tag == "script" and attr == "src" and not other_host(v)
    ]
    images = [
        urljoin(path, v)
        for tag, attr, v in page.urls
        if tag in ("img", "link")
        and not other_host(v)
        and not v.split("?")[0].endswith(".css")
        and (tag == "img" or v.split("?")[0].rsplit(".", 1)[-1] in ("png", "ico", "svg"))
    ]
    for url in each_once(stylesheets):
        css = fetch(client, url)
        in_page |= scan(css, CSS_LOADS)
        stylesheets += [
            urljoin(url, m.group(1))
            for m in re.finditer(r"""@import\s+(?:url\()?\s*["']?([^"')\s;]+)""", css)
            if not other_host(m.group(1))
        ]
    for url in scripts:
        in_scripts |= scan(fetch(client, url), SCRIPT_LOADS)
    for url in images:
        assert client.get(url).status_code == 200, url
    assert scripts or path == "/" or path.startswith("/admin/"), f"no script found on {path}"
    return in_page, in_scripts


@pytest.fixture
def staff_client(django_user_model, make_opportunity) -> tuple[Client, str]:
    admin = django_user_model.objects.create_superuser(username="jefa", password="Clave-Jefa-2026", email="j@e.pe")
    client = Client()
    client.force_login(admin)
    return client, make_opportunity(c_clinic_history="HC-1").pk


def test_the_docs_load_nothing_from_other_hosts():
    client = Client()
    for path in ("/api/docs/", "/api/redoc/"):
        in_page, in_scripts = outside_urls_of_page(client, path)
        assert in_page == set(), (path, in_page)
        assert in_scripts <= set(KNOWN_IN_VENDORED_SCRIPTS), (path, in_scripts - set(KNOWN_IN_VENDORED_SCRIPTS))


def test_the_admin_loads_nothing_from_other_hosts(staff_client):
    """The product's page, the admin's start page (its charts are inline SVG) and lists."""
    client, opportunity_id = staff_client
    seed_workspace()
    pages = [(Client(), "/"), (Client(), "/admin/login/")] + [
        (client, path)
        for path in (
            "/admin/",
            "/admin/opportunities/opportunity/",
            f"/admin/opportunities/opportunity/{opportunity_id}/change/",
            "/admin/billing/saleawaitinginvoice/",
            "/admin/billing/opportunityserviceorder/",
            "/admin/opportunities/actionhistory/",
        )
    ]
    for page_client, path in pages:
        in_page, in_scripts = outside_urls_of_page(page_client, path)
        assert in_page == set() and in_scripts == set(), (path, in_page, in_scripts)


def test_pages_forbid_browsers_to_load_from_other_hosts(staff_client):
    client, _ = staff_client
    for name, sources in SAME_ORIGIN_POLICY.items():
        assert all(source.startswith("'") or source in ("data:", "blob:") for source in sources.split()), name
    assert SAME_ORIGIN_POLICY["img-src"] == "'self' data:"  # the ReDoc logo above
    for page_client, path in (
        (Client(), "/api/docs/"),
        (Client(), "/api/redoc/"),
        (Client(), "/admin/login/"),
        (client, "/admin/"),
        (Client(), "/health"),  # the API's JSON answers carry the same policy
    ):
        response = page_client.get(path)
        assert response.status_code == 200, path
        assert policy_of(response) == SAME_ORIGIN_POLICY, path
