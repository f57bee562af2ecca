"""`manage.py load_sample_day`: a clinic day in the development database with the users to look
at it, replaced (not doubled) when run again, refused without DEBUG."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from billing.models import OpportunityServiceOrder
from devtools.workspace_data import SAMPLE_OPPORTUNITY_IDS
from opportunities.models import Opportunity

pytestmark = pytest.mark.django_db


def test_it_loads_a_clinic_day_and_the_users_and_replaces_it_when_run_again(
    settings: Any, django_user_model: Any
) -> None:
    settings.DEBUG = True
    Opportunity.objects.create(id="mine", name="Una venta mía")
    out = io.StringIO()
    call_command("load_sample_day", stdout=out)
    call_command("load_sample_day", stdout=out)
    assert "Día de ejemplo cargado: 6 oportunidades, 5 O.S (reemplazó el anterior)" in out.getvalue()
    assert set(Opportunity.objects.values_list("id", flat=True)) == {*SAMPLE_OPPORTUNITY_IDS, "mine"}
    assert OpportunityServiceOrder.objects.count() == 5
    assert django_user_model.objects.get(username="demo").is_superuser
    assert set(django_user_model.objects.filter(is_staff=True).values_list("username", flat=True)) >= {
        "demo",
        "ventas",
        "facturacion",
        "supervision",
    }


def test_it_refuses_without_debug(settings: Any) -> None:
    settings.DEBUG = False
    with pytest.raises(CommandError, match="DEBUG"):
        call_command("load_sample_day")
    assert not Opportunity.objects.exists()
