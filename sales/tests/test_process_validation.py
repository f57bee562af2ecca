"""The validation matrix of the process update (docs/api.md "Process update"): 400, nothing kept."""

from __future__ import annotations

import pytest

from opportunities.models import ActionHistory, Meeting, Opportunity

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "body,field",
    [
        ({"cDateReservation": "2026-02-30", "reservationId": 1}, "cDateReservation"),
        ({"cDateReservation": "02/03/2026", "reservationId": 1}, "cDateReservation"),
        ({"cDateReservation": "2026-3-2", "reservationId": 1}, "cDateReservation"),
        ({"cDateReservation": "2026-03-02T10:00:00", "reservationId": 1}, "cDateReservation"),
        ({"cDateReservation": 20260302, "reservationId": 1}, "cDateReservation"),
        # schemathesis found year 871 stored and returned as "871-11-19" (not a yyyy-MM-dd date)
        ({"cDateReservation": "0871-11-19", "reservationId": 1}, "cDateReservation"),
        ({"cDateReservation": "2101-01-01", "reservationId": 1}, "cDateReservation"),
        ({"cAppointment": "16:00 - 15:30", "reservationId": 1}, "cAppointment"),
        ({"cAppointment": "15:30 - 15:30", "reservationId": 1}, "cAppointment"),
        ({"cAppointment": "25:00 - 26:00", "reservationId": 1}, "cAppointment"),
        ({"cAppointment": "15:30", "reservationId": 1}, "cAppointment"),
        ({"cAppointment": "mañana", "reservationId": 1}, "cAppointment"),
        ({"cDoctor": "Dr. X", "reservationId": 0}, "reservationId"),
        ({"cDoctor": "Dr. X", "reservationId": -4}, "reservationId"),
        ({"cDoctor": "Dr. X", "reservationId": 2**31}, "reservationId"),
        ({"cDoctor": "Dr. X", "reservationId": "123"}, "reservationId"),
        ({"cDoctor": "Dr. X", "reservationId": 12.5}, "reservationId"),
        ({"cDoctor": "Dr. X", "reservationId": True}, "reservationId"),
        ({"cPatientsname": 123}, "cPatientsname"),
        ({"cPatientsname": ["Ana"]}, "cPatientsname"),
        ({"cClinicHistory": {"code": "HC"}}, "cClinicHistory"),
        ({"cCustomerDocument": True}, "cCustomerDocument"),
        ({"cCustomerDocument": "1" * 21}, "cCustomerDocument"),
        ({"cClinicHistory": "H" * 51}, "cClinicHistory"),
        ({"cDoctor": "D" * 151, "reservationId": 1}, "cDoctor"),
        ({"cFacturas": "https://example.com/a.pdf"}, "cFacturas"),
        ({"cFacturas": {"comprobante_soles": "ftp://example.com/a.pdf"}}, "cFacturas"),
        ({"cFacturas": {"comprobante_soles": "file:///etc/passwd"}}, "cFacturas"),
        ({"cFacturas": {"comprobante_dolares": "not a url"}}, "cFacturas"),
        ({"cFacturas": {"comprobante_dolares": 42}}, "cFacturas"),
        ({"cFacturas": {"comprobante_soles": "https://example.com/" + "a" * 2100}}, "cFacturas"),
        ({"cOrdenesServicio": [0]}, "cOrdenesServicio"),
        ({"cOrdenesServicio": ["456"]}, "cOrdenesServicio"),
        ({"cOrdenesServicio": 456}, "cOrdenesServicio"),
        ({"cOrdenesServicio": [2**31]}, "cOrdenesServicio"),
        ({"cOrdenesServicioMetadata": {"abc": {}}}, "cOrdenesServicioMetadata"),
        ({"cOrdenesServicioMetadata": {"456": "texto"}}, "cOrdenesServicioMetadata"),
    ],
)
def test_invalid_field_is_400_with_errors_for_that_field_and_changes_nothing(
    make_opportunity, put_process, body, field
):
    opportunity = make_opportunity(c_patientsname="Original")
    before = Opportunity.objects.values().get(pk=opportunity.pk)
    response = put_process(opportunity.pk, {**body, "cLastNameFather": "Nuevo"})
    assert response.status_code == 400, response.content
    payload = response.json()
    assert payload["statusCode"] == 400
    assert payload["message"] == "La solicitud contiene datos inválidos"
    # Flat `{field: [messages]}`; nested fields get dotted keys (cFacturas.comprobante_soles).
    assert any(key == field or key.startswith(field + ".") for key in payload["errors"]), payload["errors"]
    assert all(
        isinstance(messages, list) and all(isinstance(m, str) for m in messages)
        for messages in payload["errors"].values()
    )
    assert Opportunity.objects.values().get(pk=opportunity.pk) == before
    assert Meeting.objects.count() == 0
    assert ActionHistory.objects.count() == 0


@pytest.mark.parametrize("body", [[], [{"cDoctor": "x"}], "texto", 42, True])
def test_a_body_that_is_not_a_json_object_is_400(make_opportunity, put_process, body):
    opportunity = make_opportunity()
    response = put_process(opportunity.pk, body)
    assert response.status_code == 400
    assert response.json()["message"] == "El cuerpo de la solicitud debe ser un objeto JSON"


def test_json_null_body_is_400(make_opportunity, api_client):
    opportunity = make_opportunity()
    response = api_client.put(
        f"/opportunity/update-opportunity-procces/{opportunity.pk}", "null", content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["statusCode"] == 400


def test_text_is_trimmed_and_appointment_normalized(make_opportunity, put_process):
    opportunity = make_opportunity()
    response = put_process(opportunity.pk, {"cAppointment": " 9:00-9:30 ", "reservationId": 3})
    # Hours need two digits: "9:00" is not HH:MM.
    assert response.status_code == 400
    response = put_process(
        opportunity.pk, {"cAppointment": "09:00-09:30", "cDoctor": "  Dr. Ruiz ", "reservationId": 3}
    )
    assert response.status_code == 200
    assert response.json()["opportunity"]["cAppointment"] == "09:00 - 09:30"
    assert response.json()["opportunity"]["cDoctor"] == "Dr. Ruiz"


def test_a_leap_day_is_a_real_date(make_opportunity, put_process):
    opportunity = make_opportunity()
    response = put_process(opportunity.pk, {"cDateReservation": "2028-02-29", "reservationId": 3})
    assert response.status_code == 200
    assert response.json()["opportunity"]["cDateReservation"] == "2028-02-29"


def test_largest_reservation_id_is_accepted(make_opportunity, put_process):
    opportunity = make_opportunity()
    response = put_process(opportunity.pk, {"cDoctor": "Dr. X", "reservationId": 2**31 - 1})
    assert response.status_code == 200
    assert response.json()["opportunity"]["reservationId"] == 2**31 - 1


@pytest.mark.parametrize(
    "raw",
    [
        # found by an adversarial review: each was a 500
        '{"cClinicHistory": "HC1", "cOrdenesServicio": [5], "cOrdenesServicioMetadata": {"\\u00b2": {}}}',
        '{"cClinicHistory": "HC1", "cOrdenesServicio": [5], "cOrdenesServicioMetadata": {"\\u2460": {}}}',
        '{"cClinicHistory": "HC1", "cOrdenesServicio": [5], "cOrdenesServicioMetadata": {" 5": {}}}',
        '{"cClinicHistory": "HC1", "cOrdenesServicio": [5], "cOrdenesServicioMetadata": {"5": {"a": 1e999999}}}',
        '{"cClinicHistory": "HC1", "cOrdenesServicio": [5], "cOrdenesServicioMetadata": {"5": {"a": NaN}}}',
        '{"cClinicHistory": "HC1", "cOrdenesServicio": [5], "cOrdenesServicioMetadata": {"5": {"a": '
        + "[" * 400
        + "]" * 400
        + "}}}",
    ],
)
def test_hostile_metadata_is_a_400_and_stores_nothing(make_opportunity, api_client, raw):
    from billing.models import OpportunityServiceOrder

    opportunity = make_opportunity()
    response = api_client.put(
        f"/opportunity/update-opportunity-procces/{opportunity.pk}", raw, content_type="application/json"
    )
    assert response.status_code == 400, response.content
    assert OpportunityServiceOrder.objects.count() == 0
    assert Opportunity.objects.get(pk=opportunity.pk).c_clinic_history == ""


def test_nested_errors_use_dotted_keys(make_opportunity, put_process):
    opportunity = make_opportunity()
    response = put_process(
        opportunity.pk, {"cFacturas": {"comprobante_soles": "ftp://x/a.pdf"}, "cOrdenesServicio": [5, "6"]}
    )
    errors = response.json()["errors"]
    assert set(errors) == {"cFacturas.comprobante_soles", "cOrdenesServicio.1"}
