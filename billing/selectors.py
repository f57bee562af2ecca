"""Reads on service orders."""

from __future__ import annotations

from django.db.models import QuerySet

from opportunities.models import Opportunity

from .models import OpportunityServiceOrder


def service_order_list(*, opportunity: Opportunity) -> QuerySet[OpportunityServiceOrder]:
    """The opportunity's service orders, in the order they were registered."""
    return OpportunityServiceOrder.objects.filter(opportunity=opportunity).order_by("created_at", "id")
