"""Search that ignores case and accents: `fold()` in Python and the `search_text` columns the
database computes give the same text, on SQLite and on PostgreSQL (CI runs the suite on both)."""

from __future__ import annotations

import pytest

from billing.models import OpportunityServiceOrder
from crm.search import FOLD_MAP, fold
from opportunities.models import Opportunity

pytestmark = pytest.mark.django_db

TRICKY = "ÁÉÍÓÚ Ñandú Ü Çedric Æsir Œuvre Straße Ø ÿ Ÿ — 漢字 ¿Qué? ñ Lucía QUISPE-Mamani"


def test_fold_maps_letters_to_plain_lowercase_ascii() -> None:
    assert fold("Lucía QUISPE Mamaní") == "lucia quispe mamani"
    assert fold("Ñuñoa Peña MÜLLER") == "nunoa pena muller"
    assert fold("Æsir Œuvre Straße") == "aesir oeuvre strasse"
    assert fold("OS-456 hc-000123 71234567") == "os-456 hc-000123 71234567"
    assert fold("漢字 ¿?") == "漢字 ¿?"  # other scripts and punctuation as they are
    assert all(value == value.lower() and value.isascii() for value in FOLD_MAP.values())


def test_the_database_folds_an_opportunity_like_python(make_opportunity) -> None:
    opportunity = make_opportunity(
        name=TRICKY,
        c_patientsname="Lucía",
        c_patients_paternal_last_name="QUISPE",
        c_patients_maternal_last_name="Mamaní",
        c_clinic_history="HC-000123",
        c_patient_document="71234567",
    )
    stored = Opportunity.objects.values_list("search_text", flat=True).get(pk=opportunity.pk)
    assert stored == fold(
        " ".join([opportunity.pk, TRICKY, "HC-000123", "", "", "", "71234567", "Lucía", "QUISPE", "Mamaní"])
    )


def test_the_database_refolds_on_update_and_bulk_writes(make_opportunity) -> None:
    opportunity = make_opportunity(name="Venta")
    Opportunity.objects.filter(pk=opportunity.pk).update(c_patientsname="JOSÉ")
    assert "jose" in Opportunity.objects.values_list("search_text", flat=True).get(pk=opportunity.pk)
    opportunity.c_patientsname = "Ramón"
    opportunity.save(update_fields=["c_patientsname"])
    assert "ramon" in Opportunity.objects.values_list("search_text", flat=True).get(pk=opportunity.pk)


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        ({"numero_os": "OS-456", "descripcion": "Consulta Dermatología"}, "456 os-456 consulta dermatologia"),
        ({"numero_os": 456}, "456 456 "),
        ({"otro": "x"}, "456  "),
        (None, "456  "),
        (["OS-1"], "456  "),
        ("OS-1", "456  "),
    ],
)
def test_the_database_folds_a_service_order_id_and_its_metadata(make_opportunity, metadata, expected) -> None:
    row = OpportunityServiceOrder.objects.bulk_create(
        [OpportunityServiceOrder(opportunity=make_opportunity(), service_order_id=456, metadata=metadata)]
    )[0]
    assert OpportunityServiceOrder.objects.values_list("search_text", flat=True).get(pk=row.pk) == expected


def test_a_folded_search_finds_the_same_rows_whatever_the_accents(make_opportunity) -> None:
    lucia = make_opportunity(c_patientsname="Lucía", c_patients_paternal_last_name="Quispe")
    make_opportunity(c_patientsname="Lucas")
    for typed in ("Lucia", "lucía", "LUCIA", "LUCÍA quispe"):
        words = fold(typed).split()
        found = Opportunity.objects.all()
        for word in words:
            found = found.filter(search_text__contains=word)
        assert list(found) == [lucia], typed
