"""Pages load nothing from other hosts (docs/decisions.md, offline pages).

The clinic's intranet has no way out, and pages about patients must not tell third parties who
reads them. The templates reference only this server; `Content-Security-Policy` makes browsers
enforce it for what the vendored scripts would fetch on their own (ReDoc's bundle puts the
Redocly logo from cdn.redoc.ly in its menu, and no ReDoc option removes it).

The policy only confines loads to this origin: inline scripts and styles (drf-spectacular's
pages start Swagger UI and ReDoc inline, ReDoc styles itself inline) and `blob:` workers (ReDoc's
search) stay allowed.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

SAME_ORIGIN_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self' 'unsafe-inline'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "worker-src 'self' blob:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


class SameOriginPagesMiddleware:
    """Adds `SAME_ORIGIN_POLICY` to every HTML response that has no policy of its own."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.get("Content-Type", "").startswith("text/html"):
            response.headers.setdefault("Content-Security-Policy", SAME_ORIGIN_POLICY)
        return response
