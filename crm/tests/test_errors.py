"""Errors in one place: what services raise becomes the API's JSON error shape."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def test_application_errors_map_to_their_status_in_one_place(api_client, make_opportunity, monkeypatch):
    """Services raise `InvalidRequest` / `NotFound`, never HTTP errors; the handler maps them."""
    from crm.errors import NotFound
    from sales import process_update

    def missing(**kwargs):
        raise NotFound("No existe", errors={"x": ["no existe"]})

    monkeypatch.setattr(process_update, "opportunity_process_update", missing)
    opportunity = make_opportunity()
    response = api_client.put(
        f"/opportunity/update-opportunity-procces/{opportunity.pk}", {"cDoctor": "X"}, format="json"
    )
    assert response.status_code == 404
    assert response.json() == {
        "statusCode": 404,
        "message": "No existe",
        "error": "Not Found",
        "errors": {"x": ["no existe"]},
    }
