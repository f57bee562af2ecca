"""A Django admin mixin for rows nobody edits by hand (history, comprobantes, service orders,
SV deliveries): they come only from the services, so the admin shows them and nothing else."""
from __future__ import annotations

from typing import Any

from django.http import HttpRequest


class ReadOnlyAdminMixin:
    """No add, change or delete permission, for anyone (superusers included); viewing still
    follows the model's view permission. Works for `ModelAdmin` and inlines alike."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
