"""The history section of the staff's opportunity page (sales/admin.py): the newest records as
sentences, at most `HISTORY_ON_PAGE` of them, and a link to the opportunity's whole history in
the history list (filtered to it, paginated), so the page costs the same however long the
history grows (docs/admin.md "The opportunity page").

A read-only section rendered from the selector (template `sales/admin/history_section.html`,
with the markup and classes of the admin's tabular inlines), not an inline: the rows are never
edited, and an inline formset would render two hidden inputs per record for nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from django.http import HttpRequest
from django.urls import reverse

from crm.admin_ui.display import clinic_datetime
from opportunities.admin import history_html
from opportunities.history_text import history_user
from opportunities.models import Opportunity
from opportunities.selectors import action_history_list

# How many history records the opportunity page shows (the newest).
HISTORY_ON_PAGE = 50
VIEW_PERMISSION = "opportunities.view_actionhistory"


def opportunity_history_url(opportunity: Opportunity) -> str:
    """The history list filtered to `opportunity`: every record, newest first, paginated."""
    url = reverse("admin:opportunities_actionhistory_changelist")
    return f"{url}?{urlencode({'opportunity__id__exact': opportunity.pk})}"


@dataclass(frozen=True)
class HistoryRow:
    when: str
    who: str
    what: str  # safe HTML (opportunities.admin.history_html)


@dataclass(frozen=True)
class HistorySection:
    """The newest records of an opportunity, how many it has, and where to read them all."""

    rows: list[HistoryRow]
    total: int
    all_url: str

    @property
    def more(self) -> bool:
        return self.total > len(self.rows)


def opportunity_history_section(*, request: HttpRequest, opportunity: Opportunity) -> HistorySection | None:
    """The page's history section (two queries whatever the history's length), or None when the
    user may not view the history."""
    if not request.user.has_perm(VIEW_PERMISSION):
        return None
    records = action_history_list(opportunity=opportunity)
    rows = [
        HistoryRow(when=clinic_datetime(record.created_at), who=history_user(record), what=history_html(record))
        for record in records[:HISTORY_ON_PAGE]
    ]
    return HistorySection(rows=rows, total=records.count(), all_url=opportunity_history_url(opportunity))
