"""The admin of the action history, comprobantes (staff-only PDF download) and SV deliveries."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from django.contrib.messages import get_messages
from django.core.files.storage import default_storage
from django.test import Client
from django.urls import reverse

from devtools.admin_testing import grant, message_texts, sv_delivery
from opportunities.models import ActionHistory, Attachment, Opportunity

pytestmark = pytest.mark.django_db


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
    response = admin_client.post(
        reverse("admin:opportunities_actionhistory_changelist"),
        {"action": "delete_selected", "_selected_action": [record.pk], "post": "yes"},
    )
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


def test_staff_download_returns_the_pdf(staff_client: Client, closed: Opportunity) -> None:
    attachment = Attachment.objects.get()
    response = staff_client.get(reverse("admin:opportunities_attachment_download", args=[attachment.pk]))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert "no-store" in response["Cache-Control"]
    body = b"".join(response)
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
    default_storage.delete(str(attachment.file.name))
    response = admin_client.get(reverse("admin:opportunities_attachment_download", args=[attachment.pk]))
    assert response.status_code == 302
    assert "no está disponible" in message_texts(response)[0]


@pytest.fixture
def sv_staff_client(staff_client: Client) -> Client:
    from django.contrib.auth import get_user_model

    grant(get_user_model().objects.get(username="recepcion"), "opportunities.change_svdelivery")
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
    change = sv_staff_client.post(
        reverse("admin:opportunities_svdelivery_change", args=[failed.pk]), {"status": "delivered"}
    )
    failed.refresh_from_db()
    assert failed.status == "failed"
    assert change.status_code in (200, 403)


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
