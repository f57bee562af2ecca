"""Django admin helpers: a mixin for rows nobody edits by hand (history, comprobantes, service
orders, SV deliveries: they come only from the services, so the admin shows them and nothing
else), and a readable rendering of JSON values."""

from __future__ import annotations

import json
from typing import Any

from django.http import HttpRequest
from django.utils.html import format_html


class ReadOnlyAdminMixin:
    """No add, change or delete permission, for anyone (superusers included); viewing still
    follows the model's view permission. Works for `ModelAdmin` and inlines alike."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def pretty_json(value: Any) -> str:
    """Render a JSON value as indented, escaped HTML (`<pre>`), or "-" when empty."""
    if value in (None, {}, []):
        return "-"
    return format_html(
        '<pre style="white-space: pre-wrap; margin: 0">{}</pre>',
        json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True),
    )


def short_text(text: str | None, limit: int) -> str:
    """`text` cut to `limit` characters (with "…"), or "-" when empty."""
    text = text or ""
    if not text:
        return "-"
    return text if len(text) <= limit else text[: limit - 1] + "…"
