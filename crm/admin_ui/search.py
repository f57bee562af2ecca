"""The admin's search box over folded columns (crm/search.py): what a person types is folded the
same way as the stored text."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from crm.search import fold


class FoldedSearchMixin:
    """For a `ModelAdmin` whose `search_fields` look into folded columns (`search_text__contains`,
    `opportunity__search_text__contains`): the typed words are folded first, so the search
    ignores case and accents. Exact lookups (`=id`) see the folded words too, which only suits
    values that are already lowercase ASCII (ids, numbers)."""

    def get_search_results(self, request: HttpRequest, queryset: Any, search_term: str) -> Any:
        return super().get_search_results(request, queryset, fold(search_term))  # type: ignore[misc]
