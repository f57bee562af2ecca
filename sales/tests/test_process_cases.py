"""Case detection (docs/api.md "The four cases") and the sent / not-sent rule (docs/api.md "Process update")."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from opportunities.models import ActionHistory, Meeting, Opportunity
from opportunities.process_case import APPOINTMENT_FIELDS, MAIN_FIELDS, ProcessCase, process_case_detect
from sales.example_bodies import APPOINTMENT_DATA, MAIN_DATA

pytestmark = pytest.mark.django_db

RESERVATION_MESSAGE = "El campo reservationId no puede estar vacío"

# The README example's customer and patient data, with cLastNameMother (in neither list) and the clinic history.
MAIN_BODY = {**MAIN_DATA, "cLastNameMother": "Mamani", "cClinicHistory": "HC-000123"}
APPOINTMENT_BODY = APPOINTMENT_DATA


@pytest.mark.parametrize(
    "fields,expected",
    [
        ({"cDoctor"}, ProcessCase.APPOINTMENT_ONLY),
        ({"cDateReservation", "reservationId"}, ProcessCase.APPOINTMENT_ONLY),
        ({"cClinicHistory"}, ProcessCase.MAIN_ONLY),
        ({"cPatientsname", "cFacturas"}, ProcessCase.MAIN_ONLY),
        ({"cCustomerDocument", "cTariff"}, ProcessCase.MAIN_AND_APPOINTMENT),
        (set(), ProcessCase.OTHER),
        ({"reservationId"}, ProcessCase.OTHER),
        # cLastNameMother is in neither list of the docs/api.md "The four cases".
        ({"cLastNameMother"}, ProcessCase.OTHER),
        ({"cFacturas", "cOrdenesServicio"}, ProcessCase.OTHER),
    ],
)
def test_case_is_detected_from_the_source_document_field_lists(fields, expected):
    assert process_case_detect(fields) is expected


def test_the_case_lists_are_exactly_those_of_the_docs():
    """The lists derived from the field declarations are the requirements' lists, as docs/api.md
    "The four cases" writes them."""
    docs = (Path(__file__).resolve().parents[2] / "docs" / "api.md").read_text()
    section = docs.split("## The four cases", 1)[1].split("\n## ", 1)[0]
    lists = re.search(r"- \*main\* fields: (.*?);\n- \*appointment\* fields: (.*?)\.\n", section, re.DOTALL)
    assert lists is not None
    main, appointment = (re.findall(r"`(\w+)`", text) for text in lists.groups())
    assert len(main) == 9 and len(appointment) == 6
    assert (set(MAIN_FIELDS), set(APPOINTMENT_FIELDS)) == (set(main), set(appointment))
    assert len(MAIN_FIELDS) == len(main) and len(APPOINTMENT_FIELDS) == len(appointment)


def test_main_only_updates_main_fields_and_makes_no_meeting(make_opportunity, put_process):
    opportunity = make_opportunity()
    response = put_process(opportunity.pk, MAIN_BODY)
    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True
    assert body["message"] == "Opportunity updated successfully"
    for key, value in MAIN_BODY.items():
        assert body["opportunity"][key] == value
    assert Meeting.objects.count() == 0
    record = ActionHistory.objects.get(action="opportunity_updated")
    assert record.data["case"] == "solo_datos_principales"


def test_appointment_only_with_reservation_creates_a_meeting(make_opportunity, put_process):
    opportunity = make_opportunity()
    response = put_process(opportunity.pk, {**APPOINTMENT_BODY, "reservationId": 9876})
    assert response.status_code == 200
    stored = Opportunity.objects.get(pk=opportunity.pk)
    assert stored.c_doctor == "Dra. Paredes"
    assert stored.reservation_id == 9876
    assert stored.c_clinic_history == ""
    meeting = Meeting.objects.get()
    assert meeting.reservation_id == 9876
    assert ActionHistory.objects.filter(action="meeting_created").count() == 1
    assert ActionHistory.objects.get(action="opportunity_updated").data["case"] == "solo_cita"


def test_main_and_appointment_updates_both_and_creates_a_meeting(make_opportunity, put_process):
    opportunity = make_opportunity()
    response = put_process(opportunity.pk, {**MAIN_BODY, **APPOINTMENT_BODY, "reservationId": 55})
    assert response.status_code == 200
    stored = Opportunity.objects.get(pk=opportunity.pk)
    assert stored.c_clinic_history == "HC-000123"
    assert stored.c_specialty == "Dermatología"
    assert Meeting.objects.filter(opportunity=opportunity, reservation_id=55).count() == 1
    assert ActionHistory.objects.get(action="opportunity_updated").data["case"] == "datos_principales_y_cita"


@pytest.mark.parametrize(
    "body",
    [
        {"cDoctor": "Dr. Ruiz"},
        {**MAIN_BODY, "cAppointment": "09:00 - 09:30"},
        {"cDateReservation": "2026-03-02", "reservationId": None},
        {"cTariff": "Seguro", "reservationId": ""},
    ],
)
def test_appointment_fields_without_reservation_id_are_refused_with_the_exact_message(
    make_opportunity, put_process, body
):
    opportunity = make_opportunity()
    response = put_process(opportunity.pk, body)
    assert response.status_code == 400
    assert response.json()["statusCode"] == 400
    assert response.json()["message"] == RESERVATION_MESSAGE
    stored = Opportunity.objects.get(pk=opportunity.pk)
    assert stored.c_doctor == "" and stored.c_last_name_father == ""
    assert Meeting.objects.count() == 0
    assert ActionHistory.objects.count() == 0


def test_other_case_stores_the_body_as_is_without_meeting(make_opportunity, put_process):
    opportunity = make_opportunity()
    response = put_process(opportunity.pk, {"cLastNameMother": "Huamán", "reservationId": 12})
    assert response.status_code == 200
    stored = Opportunity.objects.get(pk=opportunity.pk)
    assert stored.c_last_name_mother == "Huamán"
    assert stored.reservation_id == 12
    assert Meeting.objects.count() == 0
    assert ActionHistory.objects.get(action="opportunity_updated").data["case"] == "otro"


def test_null_and_blank_values_count_as_not_sent_and_keep_stored_values(make_opportunity, put_process):
    opportunity = make_opportunity(c_doctor="Dra. Paredes", c_clinic_history="HC-1", c_patientsname="Ana")
    response = put_process(
        opportunity.pk,
        {
            "cDoctor": None,
            "cClinicHistory": "   ",
            "cPatientsname": "",
            "cFacturas": {"comprobante_soles": None, "comprobante_dolares": None},
        },
    )
    assert response.status_code == 200
    stored = Opportunity.objects.get(pk=opportunity.pk)
    assert (stored.c_doctor, stored.c_clinic_history, stored.c_patientsname) == ("Dra. Paredes", "HC-1", "Ana")
    assert stored.stage == "Prospección"
    assert ActionHistory.objects.count() == 0


def test_unknown_and_protected_keys_are_ignored(make_opportunity, put_process):
    opportunity = make_opportunity()
    response = put_process(
        opportunity.pk,
        {
            "id": "fffffffffffffffff",
            "stage": "Cierre ganado",
            "cFacturacionSubEstado": "factura_directa",
            "isPresaved": False,
            "createdAt": "2020-01-01 00:00:00",
            "somethingElse": {"x": 1},
            "cPatientsname": "Rosa",
        },
    )
    assert response.status_code == 200
    assert response.json()["ignoredFields"] == [
        "cFacturacionSubEstado",
        "createdAt",
        "id",
        "isPresaved",
        "somethingElse",
        "stage",
    ]
    stored = Opportunity.objects.get(pk=opportunity.pk)
    assert stored.stage == "Prospección"
    assert stored.c_facturacion_sub_estado is None
    assert stored.is_presaved is True
    assert stored.c_patientsname == "Rosa"
    assert Opportunity.objects.count() == 1


def test_a_typo_in_a_key_is_ignored_and_listed_in_ignored_fields(make_opportunity, put_process):
    opportunity = make_opportunity(c_doctor="Dra. Paredes")
    response = put_process(opportunity.pk, {"doctor": "Dr. Rojas", "reservationID": 5, "cPatientsname": "Rosa"})
    assert response.status_code == 200
    body = response.json()
    assert body["ignoredFields"] == ["doctor", "reservationID"]
    assert body["opportunity"]["cDoctor"] == "Dra. Paredes"
    assert body["opportunity"]["cPatientsname"] == "Rosa"


def test_ignored_fields_is_an_empty_list_when_every_key_is_known(make_opportunity, put_process):
    opportunity = make_opportunity()
    body = put_process(opportunity.pk, {"cPatientsname": "Rosa", "cDoctor": None, "cFacturas": None}).json()
    assert body["ignoredFields"] == []


def test_create_lists_the_keys_it_ignored_too(api_client):
    response = api_client.post(
        "/opportunity",
        {"name": "Venta", "nmae": "x", "stage": "Cierre ganado", "cDoctor": "Dra. Paredes"},
        format="json",
    )
    assert response.status_code == 201
    body = response.json()
    assert body["ignoredFields"] == ["nmae", "stage"]
    assert (body["name"], body["stage"], body["cDoctor"]) == ("Venta", "Prospección", "Dra. Paredes")
    assert api_client.post("/opportunity", {"name": "Otra"}, format="json").json()["ignoredFields"] == []


def test_unknown_opportunity_is_404_for_the_process_update(put_process, db):
    response = put_process("0123456789abcdef0", {"cPatientsname": "Rosa"})
    assert response.status_code == 404
    assert response.json()["statusCode"] == 404


def test_response_dates_use_the_contract_format(make_opportunity, put_process):
    opportunity = make_opportunity()
    body = put_process(opportunity.pk, {**APPOINTMENT_BODY, "reservationId": 1}).json()["opportunity"]
    assert body["cDateReservation"] == "2026-03-02"
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", body["modifiedAt"])
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", body["createdAt"])
