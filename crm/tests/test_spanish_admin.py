"""Everything the admin says to people is Spanish, third-party apps included: django-axes'
models and fields through locale/es (LOCALE_PATHS), its lists through crm/admin.py, every app's
name in the index."""

from __future__ import annotations

import gettext
import re
from pathlib import Path

import pytest
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.conf import settings
from django.test import Client
from django.urls import reverse
from django.utils import translation

pytestmark = pytest.mark.django_db

LOCALE = Path(settings.BASE_DIR) / "locale" / "es" / "LC_MESSAGES"


def po_entries(path: Path) -> dict[str, str]:
    """msgid -> msgstr of a .po file with one-line entries (this project's)."""
    entries = {}
    msgid = None
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("msgid "):
            msgid = line[len("msgid ") :].strip().strip('"')
        elif line.startswith("msgstr ") and msgid:
            entries[msgid] = line[len("msgstr ") :].strip().strip('"')
            msgid = None
    return entries


def test_the_compiled_catalogue_says_what_the_po_file_says() -> None:
    entries = po_entries(LOCALE / "django.po")
    assert len(entries) > 20
    with (LOCALE / "django.mo").open("rb") as handle:
        compiled = gettext.GNUTranslations(handle)
    assert {msgid: compiled.gettext(msgid) for msgid in entries} == entries, "run msgfmt -o django.mo django.po"


def test_axes_models_and_fields_speak_spanish() -> None:
    with translation.override(settings.LANGUAGE_CODE):
        names = {str(model._meta.verbose_name_plural) for model in (AccessAttempt, AccessFailureLog, AccessLog)}
        assert names == {"intentos de acceso", "fallos de acceso", "registros de acceso"}
        for model in (AccessAttempt, AccessFailureLog, AccessLog):
            for field in model._meta.get_fields():
                label = str(getattr(field, "verbose_name", ""))
                assert not re.search(r"\b(Time|Address|Data|Logins|Agent|Path|Username)\b", label), label


def test_the_index_names_every_app_and_model_in_spanish(admin_client: Client) -> None:
    response = admin_client.get("/admin/")
    app_list = response.context["app_list"]
    apps = {app["name"] for app in app_list}
    assert apps == {
        "Autenticación y autorización",
        "Accesos al panel (django-axes)",
        "Facturación",
        "Oportunidades",
        "Procesos automáticos",
    }
    models = {str(model["name"]) for app in app_list for model in app["models"]}
    assert {"Intentos de acceso", "Fallos de acceso", "Registros de acceso", "Ventas esperando factura"} <= models
    page = response.content.decode()
    for english in ("Access attempts", "Access failures", "Access logs", ">Axes<", ">Crm<"):
        assert english not in page


@pytest.mark.parametrize("model", ["accessattempt", "accessfailurelog", "accesslog"])
def test_the_lockout_lists_speak_spanish(admin_client: Client, model: str) -> None:
    common = {
        "username": "recepcion",
        "ip_address": "203.0.113.9",
        "user_agent": "Mozilla/5.0",
        "http_accept": "*/*",
        "path_info": "/admin/login/",
    }
    AccessAttempt.objects.create(**common, failures_since_start=3, get_data="", post_data="")
    AccessFailureLog.objects.create(**common, locked_out=False)
    AccessLog.objects.create(**common)
    page = admin_client.get(reverse(f"admin:axes_{model}_changelist")).content.decode()
    headers = re.findall(r'<th scope="col"[^>]*>.*?<(?:a|span)[^>]*>([^<]+)<', page, re.S)
    assert headers, page[:500]
    for header in headers:
        assert not re.search(r"\b(Attempt|Time|Address|Status|Username|User|Agent|Logout|Locked)\b", header), header
    if model == "accessattempt":
        assert "intentos restantes" in page or "Bloqueado" in page


def test_run_records_read_in_spanish(admin_client: Client) -> None:
    from jobs.models import CommandRun

    CommandRun.objects.create(
        command="poll_invoices", host="app-1", outcome="partial", counts={"pending": 4, "checked": 3, "left": 1}
    )
    page = admin_client.get(reverse("admin:jobs_commandrun_changelist")).content.decode()
    assert "pendientes 4, consultadas 3, sin consultar 1" in page and "parcial" in page
