"""The API docs and the admin work without the internet: every page and every stylesheet or
script it loads comes from the server itself (README "Quick start": docs at /api/docs/, /api/redoc/)."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import pytest

from devtools.testing import each_once

PAGES = ["/api/docs/", "/api/redoc/", "/admin/login/"]
#: Hosts of font and script CDNs; none may appear in a page or in what it loads.
CDN_HOSTS = ("fonts.googleapis.com", "fonts.gstatic.com", "cdn.jsdelivr.net", "unpkg.com", "cdnjs.cloudflare.com")
# url(...) and @import "..." in CSS (also CSS kept inside JavaScript strings).
CSS_URL_RE = re.compile(r"""url\(\s*(['"]?)([^'")\s]+)\1\s*\)|@import\s+(['"])([^'"]+)\3""", re.I)
SKIPPED_SCHEMES = ("data:", "javascript:", "mailto:", "about:", "blob:", "#")


class _References(HTMLParser):
    """Collects src/href attributes, inline CSS and inline scripts of an HTML page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[tuple[str, str, str]] = []  # (tag, attribute, value)
        self.inline: list[str] = []
        self._in_inline = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for name in ("src", "href"):
            if values.get(name):
                self.links.append((tag, name, values[name] or ""))
        if values.get("style"):
            self.inline.append(values["style"] or "")
        self._in_inline = tag in ("style", "script") and not values.get("src")

    def handle_endtag(self, tag: str) -> None:
        self._in_inline = False

    def handle_data(self, data: str) -> None:
        if self._in_inline:
            self.inline.append(data)


def css_urls(text: str) -> list[str]:
    return [m.group(2) or m.group(4) for m in CSS_URL_RE.finditer(text)]


@pytest.mark.parametrize("page", PAGES)
def test_the_page_and_what_it_loads_reference_no_other_host(anonymous, stack, page):
    """Regression: ReDoc's page loads Google Fonts (fonts.googleapis.com,
    fonts.gstatic.com), so the docs need the internet and tell Google who reads them."""
    server = urlsplit(stack.base_url).netloc
    page_url = stack.base_url + page
    response = anonymous.get(page_url)
    assert response.status_code == 200, response.text[:300]
    assert response.headers["Content-Type"].startswith("text/html")

    found: list[str] = []
    parser = _References()
    parser.feed(response.text)
    assets: list[str] = []
    references = [(f"<{tag} {attr}>", value) for tag, attr, value in parser.links]
    references += [("inline CSS", value) for text in parser.inline for value in css_urls(text)]
    for where, value in references:
        if value.strip().lower().startswith(SKIPPED_SCHEMES):
            continue
        absolute = urljoin(page_url, value.strip())
        parts = urlsplit(absolute)
        if parts.scheme in ("http", "https") and parts.netloc != server:
            found.append(f"{page} {where}: {value}")
        elif where in ("<script src>", "<link href>") or parts.path.endswith((".css", ".js")):
            assets.append(absolute)
    texts = {page: response.text}

    # The stylesheets and scripts it loads from the server, and the stylesheets they import.
    loaded: list[str] = []
    for url in each_once(assets):
        loaded.append(url)
        asset = anonymous.get(url)
        if asset.status_code != 200:
            found.append(f"{url}: answered {asset.status_code}")
            continue
        if not urlsplit(url).path.endswith((".css", ".js")):
            continue  # an icon or an image
        texts[url] = asset.text
        for value in css_urls(asset.text):
            if value.lower().startswith(SKIPPED_SCHEMES):
                continue
            absolute = urljoin(url, value)
            parts = urlsplit(absolute)
            if parts.scheme in ("http", "https") and parts.netloc != server:
                found.append(f"{url} url()/@import: {value}")
            elif parts.path.endswith(".css"):
                assets.append(absolute)
    for where, text in texts.items():
        for host in CDN_HOSTS:
            if host in text:
                found.append(f"{where} names {host}")

    assert not found, f"{page} needs other hosts:\n" + "\n".join(sorted(set(found)))
    assert loaded, f"{page} loads nothing from the server: is it the page it should be?"
