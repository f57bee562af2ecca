"""Who is asking: the client address used by every password-guessing limit."""

from __future__ import annotations

from typing import Any

from axes.handlers.database import AxesDatabaseHandler
from django.http import HttpRequest
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle


def client_ip(request: HttpRequest | Request) -> str:
    """The client's address as the sign-in throttle sees it: `REMOTE_ADDR`, or the address the
    trusted proxies (`REST_FRAMEWORK["NUM_PROXIES"]`) put in `X-Forwarded-For`. Used by
    django-axes for the admin login, so both limits agree on who the client is."""
    # Called by axes with a Django request (admin login) or the API's DRF request (sign-in).
    return BaseThrottle().get_ident(request if isinstance(request, Request) else Request(request))


class AdminOnlyAxesHandler(AxesDatabaseHandler):
    """django-axes' database handler, counting only admin-site logins.

    `AXES_ONLY_ADMIN_SITE` stops axes from *refusing* API requests, but its stock handler would
    still *count* failed `/auth/signin` attempts and answer the limit-reaching one with an HTML
    429. The API keeps its own JSON throttle instead, so its attempts are not recorded here.
    """

    def user_login_failed(
        self, sender: Any, credentials: dict, request: HttpRequest | None = None, **kwargs: Any
    ) -> None:
        if request is None or not self.is_admin_request(request):
            return
        super().user_login_failed(sender, credentials, request, **kwargs)

    def user_logged_in(self, sender: Any, request: HttpRequest, user: Any, **kwargs: Any) -> None:
        if request is None or not self.is_admin_request(request):
            return
        super().user_logged_in(sender, request, user, **kwargs)
