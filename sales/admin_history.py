"""The history section of the staff's opportunity page (sales/admin.py): the newest records as
sentences, at most `HISTORY_ON_PAGE` of them, and a link to the opportunity's whole history in
the history list (filtered to it, paginated), so the page costs the same however long the
history grows (docs/admin.md "The opportunity page").
"""

from __future__ import annotations

from typing import Any, cast
from urllib.parse import urlencode

from django.contrib import admin
from django.db.models import QuerySet
from django.forms.models import BaseInlineFormSet
from django.urls import reverse

from crm.admin_ui.display import clinic_datetime
from crm.admin_ui.readonly import ReadOnlyAdminMixin
from opportunities.admin import history_html
from opportunities.history_text import history_user
from opportunities.models import ActionHistory, Opportunity

# How many history records the opportunity page shows (the newest).
HISTORY_ON_PAGE = 50


def opportunity_history_url(opportunity: Opportunity) -> str:
    """The history list filtered to `opportunity`: every record, newest first, paginated."""
    url = reverse("admin:opportunities_actionhistory_changelist")
    return f"{url}?{urlencode({'opportunity__id__exact': opportunity.pk})}"


class LatestHistoryFormSet(BaseInlineFormSet):
    """The opportunity's newest `HISTORY_ON_PAGE` records (the inline's order: newest first);
    `total` and `all_url` tell the template how many there are and where to see them all.

    The queryset is set in `__init__`, as Django's documentation shows for changing a model
    formset's queryset ("Changing the queryset"); the rows are read-only, so a POST of the page
    binds the same slice."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        records = cast(QuerySet[ActionHistory], self.queryset)  # the inline formset filtered it to the instance
        self.total = records.count() if self.instance.pk else 0
        self.all_url = opportunity_history_url(self.instance) if self.instance.pk else ""
        self.queryset = records[:HISTORY_ON_PAGE]

    @property
    def shown(self) -> int:
        return min(self.total, HISTORY_ON_PAGE)


class ActionHistoryInline(ReadOnlyAdminMixin, admin.TabularInline):
    """The history as sentences, newest first, with the stored data one click away; the newest
    `HISTORY_ON_PAGE` only, with a link to the whole history."""

    model = ActionHistory
    formset = LatestHistoryFormSet
    template = "sales/admin/history_inline.html"
    extra = 0
    max_num = 0
    can_delete = False
    fields = ("when", "who", "what")
    readonly_fields = fields
    ordering = ("-created_at", "-id")
    classes = ("collapse",)

    @admin.display(description="fecha (hora de Lima)")
    def when(self, obj: ActionHistory) -> str:
        return clinic_datetime(obj.created_at)

    @admin.display(description="usuario")
    def who(self, obj: ActionHistory) -> str:
        return history_user(obj)

    @admin.display(description="qué pasó")
    def what(self, obj: ActionHistory) -> str:
        return history_html(obj)
