"""The admin's wording (issue 19, docs/admin.md): the waiting list's title names its order only
while it is the default one, saving an opportunity is not told with a masculine article, one
date format per page, the logout page speaks to clinic staff."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from devtools.workspace_data import Workspace

pytestmark = pytest.mark.django_db
WAITING = reverse("admin:billing_saleawaitinginvoice_changelist")


def test_the_waiting_list_title_names_the_order_only_when_it_is_the_default(
    staff_client: Client, workspace: Workspace
) -> None:
    assert "Ventas esperando factura (la que más espera primero)" in staff_client.get(WAITING).content.decode()
    for order in ("-5", "2", "5"):
        page = staff_client.get(WAITING, {"o": order}).content.decode()
        assert "la que más espera primero" not in page and "<h1>Ventas esperando factura</h1>" in page


def test_saving_an_opportunity_says_so_without_a_masculine_article(staff_client: Client, workspace: Workspace) -> None:
    url = reverse("admin:opportunities_opportunity_change", args=[workspace.prospect.pk])
    form = staff_client.get(url).context["adminform"].form
    data = {name: value for name, value in form.initial.items() if value is not None}
    for prefix in ("service_orders", "attachments", "meetings", "sv_deliveries", "history"):
        data |= {f"{prefix}-TOTAL_FORMS": "0", f"{prefix}-INITIAL_FORMS": "0"}
    response = staff_client.post(url, {**data, "_continue": "1"}, follow=True)
    texts = [str(message) for message in response.context["messages"]]
    assert len(texts) == 1 and texts[0].startswith("Cambios guardados en oportunidad “<a href=")
    assert "Prospecto - Ana Torres" in texts[0] and texts[0].endswith("Puede seguir editando a continuación.")
    assert not any("El oportunidad" in text for text in texts)


def test_an_opportunity_page_shows_one_date_format(staff_client: Client, workspace: Workspace) -> None:
    page = staff_client.get(reverse("admin:opportunities_opportunity_change", args=[workspace.lucia.pk]))
    text = re.sub(r"<[^>]+>", " ", page.content.decode())
    assert re.search(r"\d{2}/\d{2}/\d{4} \d{2}:\d{2}", text)
    assert not re.search(r"\d{1,2} de [a-z]+ de \d{4}", text)  # Django's long Spanish dates


def test_the_logout_page_tells_staff_what_happened(staff_client: Client) -> None:
    page = staff_client.post(reverse("admin:logout")).content.decode()
    assert "Cerró su sesión en el CRM de la clínica" in page and "buen rato" not in page
    assert "Iniciar sesión de nuevo" in page
