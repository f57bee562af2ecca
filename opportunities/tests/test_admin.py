"""The Django admin for clinic staff: lists, search, read-only inlines and history, the
"check invoice status now" action, the staff-only PDF download and the changelist query count."""
from __future__ import annotations

import hashlib
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from billing.models import OpportunityServiceOrder
from devtools.testing import make_pdf
from opportunities.models import ActionHistory, Attachment, Meeting, Opportunity

pytestmark = pytest.mark.django_db

STAFF_PERMISSIONS = (
    "opportunities.view_opportunity",
    "opportunities.change_opportunity",
    "opportunities.view_attachment",
    "opportunities.view_meeting",
    "opportunities.view_actionhistory",
    "billing.view_opportunityserviceorder",
    "billing.change_opportunityserviceorder",
)


def grant(user: Any, *perms: str) -> Any:
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    return user


@pytest.fixture
def staff_client(django_user_model: Any) -> Client:
    """A logged-in staff user (not a superuser) with the clinic staff's permissions."""
    staff = django_user_model.objects.create_user(username="recepcion", password="x", is_staff=True)
    grant(staff, *STAFF_PERMISSIONS)
    client = Client()
    client.force_login(staff)
    return client


def attach_pdf(opportunity: Opportunity, *, tag: str = "F001-1", service_order_id: int | None = None) -> Attachment:
    body = make_pdf(tag)
    name = default_storage.save(f"invoices/{opportunity.pk}/{tag}.pdf", ContentFile(body))
    return Attachment.objects.create(
        opportunity=opportunity,
        kind=Attachment.Kind.COMPROBANTE_SOLES,
        file=name,
        file_name=f"{tag}.pdf",
        size=len(body),
        sha256=hashlib.sha256(body).hexdigest(),
        source_url=f"http://mifact.test/api/files/{tag}.pdf",
        service_order_id=service_order_id,
    )


@pytest.fixture
def closed(make_opportunity: Any) -> Opportunity:
    """A *Cierre ganado* opportunity with one pending and one invoiced O.S, a comprobante, a
    meeting and history."""
    opportunity = make_opportunity(
        name="Venta dermatología",
        stage="Cierre ganado",
        c_facturacion_sub_estado="orden_servicio_pendiente_factura",
        c_clinic_history="HC-778899",
        c_patientsname="Rosa",
        reservation_id=31,
    )
    OpportunityServiceOrder.objects.create(opportunity=opportunity, service_order_id=456)
    OpportunityServiceOrder.objects.create(
        opportunity=opportunity, service_order_id=455, facturado=True, invoice_result_head_id=70
    )
    attach_pdf(opportunity, tag="F001-455", service_order_id=455)
    Meeting.objects.create(opportunity=opportunity, name="Cita: Rosa (Dermatología)", reservation_id=31)
    ActionHistory.objects.create(
        opportunity=opportunity, action="service_orders_registered", data={"serviceOrderIds": [456]}
    )
    return opportunity


def message_texts(response: Any) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


# --- lists and search ---------------------------------------------------------------------------


def test_opportunity_changelist_searches_by_clinic_history(admin_client: Client, closed: Opportunity,
                                                            make_opportunity: Any) -> None:
    other = make_opportunity(name="Venta cardiología", c_clinic_history="HC-000111")
    url = reverse("admin:opportunities_opportunity_changelist")

    response = admin_client.get(url)
    assert response.status_code == 200
    assert closed.pk in response.text and other.pk in response.text

    response = admin_client.get(url, {"q": "HC-778899"})
    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == [closed]
    assert "Venta dermatología" in response.text


def test_opportunity_changelist_filters_by_stage_and_sub_state(admin_client: Client, closed: Opportunity,
                                                               make_opportunity: Any) -> None:
    make_opportunity(name="Prospecto")
    url = reverse("admin:opportunities_opportunity_changelist")
    response = admin_client.get(url, {"stage": "Cierre ganado",
                                      "c_facturacion_sub_estado": "orden_servicio_pendiente_factura",
                                      "is_presaved__exact": "1"})
    assert list(response.context["cl"].result_list) == [closed]


def test_service_order_changelist_searches_by_os_id_and_opportunity(admin_client: Client, closed: Opportunity) -> None:
    url = reverse("admin:billing_opportunityserviceorder_changelist")
    response = admin_client.get(url, {"q": "456"})
    assert [row.service_order_id for row in response.context["cl"].result_list] == [456]
    response = admin_client.get(url, {"q": closed.pk})
    assert sorted(row.service_order_id for row in response.context["cl"].result_list) == [455, 456]
    response = admin_client.get(url, {"q": "no-es-un-número"})
    assert response.status_code == 200 and list(response.context["cl"].result_list) == []
    response = admin_client.get(url, {"facturado__exact": "0"})
    assert [row.service_order_id for row in response.context["cl"].result_list] == [456]


# --- change page, inlines -------------------------------------------------------------------


def test_change_page_shows_read_only_inlines(staff_client: Client, closed: Opportunity) -> None:
    attachment = Attachment.objects.get()
    response = staff_client.get(reverse("admin:opportunities_opportunity_change", args=[closed.pk]))
    assert response.status_code == 200
    text = response.text
    assert "456" in text and "455" in text  # service orders
    assert "F001-455.pdf" in text  # attachment
    assert reverse("admin:opportunities_attachment_download", args=[attachment.pk]) in text
    assert "Cita: Rosa (Dermatología)" in text  # meeting
    assert "O.S registradas" in text  # history, with its Spanish label
    # Nothing in the inlines can be added, edited or deleted.
    for prefix in ("service_orders", "attachments", "meetings", "history"):
        assert f'name="{prefix}-0-DELETE"' not in text
        assert f'name="{prefix}-__prefix__-id"' not in text  # no "add another" template
    assert 'name="service_orders-0-facturado"' not in text
    assert 'name="history-0-data"' not in text
    assert 'name="file"' not in text


def test_admin_edit_saves_only_changed_fields_and_records_history(staff_client: Client, closed: Opportunity) -> None:
    url = reverse("admin:opportunities_opportunity_change", args=[closed.pk])
    page = staff_client.get(url).context
    form = page["adminform"].form
    data = {name: ("" if value is None else value) for name, value in form.initial.items() if name in form.fields}
    # What the browser posts for the read-only inlines: management forms and hidden ids.
    for inline in page["inline_admin_formsets"]:
        formset = inline.formset
        data.update({f"{formset.prefix}-{k}": v for k, v in formset.management_form.initial.items()})
        for index, inline_form in enumerate(formset.initial_forms):
            data[f"{formset.prefix}-{index}-id"] = inline_form.instance.pk
            data[f"{formset.prefix}-{index}-opportunity"] = closed.pk
    data.update({"name": "Venta dermatología (corregida)", "stage": "Prospección"})  # stage is read-only
    # A concurrent writer (the poller) changes the sub-state while the page is open.
    Opportunity.objects.filter(pk=closed.pk).update(c_facturacion_sub_estado="factura_directa")

    response = staff_client.post(url, data)

    assert response.status_code == 302, getattr(response, "context", None) and response.context["adminform"].form.errors
    closed.refresh_from_db()
    assert closed.name == "Venta dermatología (corregida)"
    assert closed.stage == "Cierre ganado"
    assert closed.c_facturacion_sub_estado == "factura_directa"  # not overwritten by the stale form
    record = ActionHistory.objects.get(action="opportunity_updated")
    assert record.user_name == "recepcion"
    assert record.data == {"via": "admin", "changes": {
        "name": {"old": "Venta dermatología", "new": "Venta dermatología (corregida)"}}}


def test_opportunities_cannot_be_added_or_deleted_in_admin(admin_client: Client, closed: Opportunity) -> None:
    assert admin_client.get(reverse("admin:opportunities_opportunity_add")).status_code == 403
    assert admin_client.get(reverse("admin:opportunities_opportunity_delete", args=[closed.pk])).status_code == 403
    assert Opportunity.objects.filter(pk=closed.pk).exists()


# --- action history and attachments are read-only ----------------------------------------


def test_action_history_is_read_only_even_for_superusers(admin_client: Client, closed: Opportunity) -> None:
    record = ActionHistory.objects.get()
    change_url = reverse("admin:opportunities_actionhistory_change", args=[record.pk])

    assert admin_client.get(reverse("admin:opportunities_actionhistory_changelist")).status_code == 200
    assert admin_client.get(change_url).status_code == 200  # view only
    assert admin_client.get(reverse("admin:opportunities_actionhistory_add")).status_code == 403
    add_url = reverse("admin:opportunities_actionhistory_add")
    assert admin_client.post(add_url, {"action": "closed_won"}).status_code == 403
    assert admin_client.post(change_url, {"action": "closed_won", "user_name": "x"}).status_code == 403
    delete_url = reverse("admin:opportunities_actionhistory_delete", args=[record.pk])
    assert admin_client.get(delete_url).status_code == 403
    assert admin_client.post(delete_url, {"post": "yes"}).status_code == 403
    # The bulk delete action is not offered either.
    response = admin_client.post(reverse("admin:opportunities_actionhistory_changelist"),
                                 {"action": "delete_selected", "_selected_action": [record.pk], "post": "yes"})
    assert response.status_code in (200, 302)
    record.refresh_from_db()
    assert record.action == "service_orders_registered"
    assert ActionHistory.objects.count() == 1


def test_attachments_cannot_be_added_or_changed_in_admin(admin_client: Client, closed: Opportunity) -> None:
    attachment = Attachment.objects.get()
    change_url = reverse("admin:opportunities_attachment_change", args=[attachment.pk])
    assert admin_client.get(reverse("admin:opportunities_attachment_add")).status_code == 403
    response = admin_client.get(change_url)
    assert response.status_code == 200
    assert 'name="file"' not in response.text
    assert admin_client.post(change_url, {"file_name": "otro.pdf"}).status_code == 403
    attachment.refresh_from_db()
    assert attachment.file_name == "F001-455.pdf"


def test_service_orders_are_read_only_in_admin(admin_client: Client, closed: Opportunity) -> None:
    row = OpportunityServiceOrder.objects.get(service_order_id=456)
    assert admin_client.get(reverse("admin:billing_opportunityserviceorder_add")).status_code == 403
    change_url = reverse("admin:billing_opportunityserviceorder_change", args=[row.pk])
    assert admin_client.post(change_url, {"facturado": "on"}).status_code == 403
    row.refresh_from_db()
    assert row.facturado is False


# --- the "check now" action -------------------------------------------------------------------


def test_check_action_completes_an_invoiced_service_order(
    staff_client: Client, closed: Opportunity, mifact: Any, django_capture_on_commit_callbacks: Any
) -> None:
    mifact.invoice(456, soles=True, head_id=901)
    row = OpportunityServiceOrder.objects.get(service_order_id=456)
    invoiced = OpportunityServiceOrder.objects.get(service_order_id=455)

    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(
            reverse("admin:billing_opportunityserviceorder_changelist"),
            {"action": "check_invoice_status_now", "_selected_action": [row.pk, invoiced.pk]},
        )

    assert response.status_code == 302
    assert message_texts(response) == ["Órdenes de servicio consultadas: 1; facturadas: 1; con error: 0."]
    assert mifact.status_calls == [456]  # the invoiced row is not asked again
    row.refresh_from_db()
    assert row.facturado and row.invoice_result_head_id == 901 and row.last_checked_at is not None
    closed.refresh_from_db()
    assert (closed.c_facturacion_sub_estado, closed.is_presaved) == ("factura_directa", False)
    new_attachment = Attachment.objects.get(service_order_id=456)
    assert new_attachment.file.read().startswith(b"%PDF-")
    assert ActionHistory.objects.filter(action="service_order_invoiced").count() == 1


def test_check_action_on_opportunities_checks_their_pending_service_orders(
    staff_client: Client, closed: Opportunity, make_opportunity: Any, mifact: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    other = make_opportunity(name="Otra", stage="Cierre ganado", c_clinic_history="HC-2",
                             c_facturacion_sub_estado="orden_servicio_pendiente_factura")
    OpportunityServiceOrder.objects.create(opportunity=other, service_order_id=789)
    untouched = make_opportunity(name="No seleccionada")
    OpportunityServiceOrder.objects.create(opportunity=untouched, service_order_id=999)
    mifact.invoice(789, soles=True)

    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(
            reverse("admin:opportunities_opportunity_changelist"),
            {"action": "check_invoice_status_now", "_selected_action": [closed.pk, other.pk]},
        )

    assert response.status_code == 302
    assert message_texts(response) == ["Órdenes de servicio consultadas: 2; facturadas: 1; con error: 0."]
    assert sorted(mifact.status_calls) == [456, 789]
    assert OpportunityServiceOrder.objects.get(service_order_id=789).facturado
    assert not OpportunityServiceOrder.objects.get(service_order_id=456).facturado


def test_check_action_reports_errors_when_invoice_mifact_is_down(admin_client: Client, closed: Opportunity,
                                                                 mifact: Any) -> None:
    mifact.down = True
    row = OpportunityServiceOrder.objects.get(service_order_id=456)
    response = admin_client.post(
        reverse("admin:billing_opportunityserviceorder_changelist"),
        {"action": "check_invoice_status_now", "_selected_action": [row.pk]},
    )
    texts = message_texts(response)
    assert texts[0] == "Órdenes de servicio consultadas: 0; facturadas: 0; con error: 1."
    assert texts[1].startswith("O.S 456: invoice-mifact:")
    row.refresh_from_db()
    assert not row.facturado and row.last_error and row.last_checked_at is not None


def test_check_action_stops_after_repeated_invoice_mifact_failures(admin_client: Client, closed: Opportunity,
                                                                    mifact: Any) -> None:
    mifact.down = True
    for service_order_id in (457, 458, 459):
        OpportunityServiceOrder.objects.create(opportunity=closed, service_order_id=service_order_id)
    pending = OpportunityServiceOrder.objects.filter(facturado=False).order_by("id")
    response = admin_client.post(
        reverse("admin:billing_opportunityserviceorder_changelist"),
        {"action": "check_invoice_status_now", "_selected_action": [row.pk for row in pending]},
    )
    texts = message_texts(response)
    assert texts[0] == "Órdenes de servicio consultadas: 0; facturadas: 0; con error: 3."
    assert any("se detuvo la consulta; 1 orden(es) quedaron sin consultar" in text for text in texts)
    assert list(pending.filter(last_checked_at__isnull=True).values_list("service_order_id", flat=True)) == [459]


def test_check_action_without_invoice_mifact_configured_checks_nothing(admin_client: Client,
                                                                        closed: Opportunity) -> None:
    row = OpportunityServiceOrder.objects.get(service_order_id=456)
    response = admin_client.post(
        reverse("admin:billing_opportunityserviceorder_changelist"),
        {"action": "check_invoice_status_now", "_selected_action": [row.pk]},
    )
    assert "no está configurado" in message_texts(response)[0]
    row.refresh_from_db()
    assert row.last_checked_at is None


def test_check_action_needs_the_service_order_change_permission(django_user_model: Any, closed: Opportunity,
                                                                mifact: Any) -> None:
    viewer = grant(django_user_model.objects.create_user(username="solo-ver", password="x", is_staff=True),
                   "billing.view_opportunityserviceorder", "opportunities.view_opportunity")
    client = Client()
    client.force_login(viewer)
    url = reverse("admin:billing_opportunityserviceorder_changelist")
    assert "check_invoice_status_now" not in client.get(url).text
    row = OpportunityServiceOrder.objects.get(service_order_id=456)
    client.post(url, {"action": "check_invoice_status_now", "_selected_action": [row.pk]})
    assert mifact.status_calls == []


# --- staff-only download ----------------------------------------------------------------------


def test_staff_download_returns_the_pdf(staff_client: Client, closed: Opportunity) -> None:
    attachment = Attachment.objects.get()
    response = staff_client.get(reverse("admin:opportunities_attachment_download", args=[attachment.pk]))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert "no-store" in response["Cache-Control"]
    body = b"".join(response.streaming_content)
    assert body.startswith(b"%PDF-") and hashlib.sha256(body).hexdigest() == attachment.sha256


def test_download_is_refused_to_anonymous_non_staff_and_unprivileged_users(
    client: Client, django_user_model: Any, closed: Opportunity
) -> None:
    url = reverse("admin:opportunities_attachment_download", args=[Attachment.objects.get().pk])
    login = reverse("admin:login")

    response = client.get(url)  # anonymous
    assert response.status_code == 302 and response["Location"].startswith(login)

    seller = django_user_model.objects.create_user(username="ventas2", password="x")  # not staff
    grant(seller, "opportunities.view_attachment")
    client.force_login(seller)
    response = client.get(url)
    assert response.status_code == 302 and response["Location"].startswith(login)

    staff_without_permission = django_user_model.objects.create_user(username="otro", password="x", is_staff=True)
    client.force_login(staff_without_permission)
    assert client.get(url).status_code == 403


def test_media_files_are_not_routed(admin_client: Client, closed: Opportunity) -> None:
    attachment = Attachment.objects.get()
    assert admin_client.get(f"/media/{attachment.file.name}").status_code == 404


def test_download_of_a_missing_file_redirects_with_a_message(admin_client: Client, closed: Opportunity) -> None:
    attachment = Attachment.objects.get()
    default_storage.delete(attachment.file.name)
    response = admin_client.get(reverse("admin:opportunities_attachment_download", args=[attachment.pk]))
    assert response.status_code == 302
    assert "no está disponible" in message_texts(response)[0]


# --- query counts -----------------------------------------------------------------------------


def _changelist_queries(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx.captured_queries)


@pytest.mark.parametrize(
    "url_name",
    [
        "admin:opportunities_opportunity_changelist",
        "admin:billing_opportunityserviceorder_changelist",
        "admin:opportunities_actionhistory_changelist",
        "admin:opportunities_attachment_changelist",
    ],
)
def test_changelist_query_count_does_not_grow_with_rows(staff_client: Client, make_opportunity: Any,
                                                        django_assert_max_num_queries: Any, url_name: str) -> None:
    def add_rows(count: int) -> None:
        for i in range(count):
            opportunity = make_opportunity(name=f"Venta {i}", c_clinic_history=f"HC-{i}")
            OpportunityServiceOrder.objects.create(opportunity=opportunity, service_order_id=1000 + i)
            ActionHistory.objects.create(opportunity=opportunity, action="opportunity_created")
            attach_pdf(opportunity, tag=f"F-{i}")

    url = reverse(url_name)
    add_rows(2)
    few = _changelist_queries(staff_client, url)
    add_rows(20)
    with django_assert_max_num_queries(few):
        staff_client.get(url)


# --- SV outbox (issue 6) ----------------------------------------------------------------------


def sv_delivery(opportunity: Opportunity, **fields: Any) -> Any:
    from opportunities.models import SvDelivery

    fields.setdefault("reservation_id", 98765)
    fields.setdefault("clinic_history", "HC-000123")
    return SvDelivery.objects.create(opportunity=opportunity, **fields)


@pytest.fixture
def sv_staff_client(staff_client: Client) -> Client:
    from django.contrib.auth import get_user_model

    grant(get_user_model().objects.get(username="recepcion"), "opportunities.view_svdelivery")
    return staff_client


def test_sv_deliveries_are_listed_filtered_and_read_only(sv_staff_client, make_opportunity):
    opportunity = make_opportunity()
    failed = sv_delivery(opportunity, status="failed", attempts=20, last_error="SV respondió 503")
    sv_delivery(make_opportunity(), status="delivered", clinic_history="HC-2")
    url = reverse("admin:opportunities_svdelivery_changelist")
    listing = sv_staff_client.get(url, {"status__exact": "failed"})
    assert listing.status_code == 200
    assert list(listing.context["cl"].result_list) == [failed]
    assert b"SV respondi" in listing.content
    assert sv_staff_client.get(reverse("admin:opportunities_svdelivery_add")).status_code == 403
    change = sv_staff_client.post(reverse("admin:opportunities_svdelivery_change", args=[failed.pk]),
                                  {"status": "delivered"})
    failed.refresh_from_db()
    assert failed.status == "failed"
    assert change.status_code in (200, 403)


def test_opportunity_page_shows_its_sv_deliveries(admin_client, make_opportunity):
    opportunity = make_opportunity()
    sv_delivery(opportunity, status="pending", attempts=2, last_error="SV no respondió a tiempo")
    page = admin_client.get(reverse("admin:opportunities_opportunity_change", args=[opportunity.pk]))
    assert page.status_code == 200
    assert "envíos de historia clínica a sv" in page.content.decode().lower()
    assert "SV no respondió a tiempo" in page.content.decode()


def test_retry_now_delivers_a_failed_row(sv_staff_client, make_opportunity, sv):
    delivery = sv_delivery(make_opportunity(), status="failed", attempts=20, last_error="SV respondió 503")
    response = sv_staff_client.post(
        reverse("admin:opportunities_svdelivery_changelist"),
        {"action": "retry_now", "_selected_action": [delivery.pk]},
        follow=True,
    )
    assert response.status_code == 200
    delivery.refresh_from_db()
    assert delivery.status == "delivered" and delivery.last_error == ""
    assert sv.patches == [(98765, "HC-000123")]
    text = " ".join(str(m) for m in get_messages(response.wsgi_request))
    assert "Entregados: 1" in text


def test_retry_now_with_sv_unconfigured_says_so(sv_staff_client, make_opportunity, settings):
    settings.URL_SV = ""
    delivery = sv_delivery(make_opportunity(), status="failed", attempts=20)
    response = sv_staff_client.post(
        reverse("admin:opportunities_svdelivery_changelist"),
        {"action": "retry_now", "_selected_action": [delivery.pk]},
        follow=True,
    )
    assert "URL_SV" in " ".join(str(m) for m in get_messages(response.wsgi_request))
    delivery.refresh_from_db()
    assert delivery.status == "failed"


# --- password guessing on the admin login (django-axes) ----------------------------------------


def test_admin_login_locks_out_after_repeated_failures(django_user_model, settings):
    settings.AXES_FAILURE_LIMIT = 3
    django_user_model.objects.create_user(username="recepcion", password="la-clave-buena-1", is_staff=True)
    client = Client()
    login = reverse("admin:login")
    codes = [client.post(login, {"username": "recepcion", "password": "mala"}).status_code for _ in range(3)]
    assert codes == [200, 200, 429]  # the form again twice, then locked out at the limit
    locked = client.post(login, {"username": "recepcion", "password": "la-clave-buena-1"})
    assert locked.status_code == 429  # even the right password, for this username and address
    # Another address is not locked out by this one.
    other = Client(REMOTE_ADDR="203.0.113.9")
    assert other.post(login, {"username": "recepcion", "password": "la-clave-buena-1"}).status_code == 302


def test_api_signin_is_not_counted_by_the_admin_lockout(anon_client, user, settings):
    settings.AXES_FAILURE_LIMIT = 2
    for _ in range(4):
        assert anon_client.post("/auth/signin", {"username": "ventas", "password": "x"}, format="json").status_code == 401
    response = anon_client.post("/auth/signin", {"username": "ventas", "password": "clave-segura-123"}, format="json")
    assert response.status_code == 200
