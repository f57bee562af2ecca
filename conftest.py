"""Shared pytest fixtures: a temporary MEDIA_ROOT, users, an authenticated API client, a local
file server on 127.0.0.1, and a helper that runs a request with its on-commit work executed."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from devtools.testing import LocalHTTPServer

pytest_plugins = ["devtools.admin_testing", "jobs.tests.webhook_receiver"]


@pytest.fixture(autouse=True)
def media_root(settings: Any, tmp_path: Path) -> Path:
    """Every test stores files in its own empty MEDIA_ROOT."""
    root = tmp_path / "media"
    root.mkdir()
    settings.MEDIA_ROOT = root
    settings.URL_INVOICE_MIFACT_V3 = ""
    settings.URL_SV = ""
    return root


@pytest.fixture(autouse=True)
def webhook_endpoints_fresh() -> Iterator[None]:
    """Each test reads the webhook endpoints it made (none survive its rollback)."""
    from jobs.webhooks import endpoints_cache_clear

    endpoints_cache_clear()
    yield
    endpoints_cache_clear()


@pytest.fixture(autouse=True)
def download_temp_dir(tmp_path: Path, settings: Any, monkeypatch: Any) -> Iterator[Path]:
    """Downloads go to this test's own INVOICE_DOWNLOAD_DIR, and nothing may go to the system's
    temporary folder; a test that leaves a download behind in either fails."""
    import tempfile

    folder = tmp_path / "downloads"
    settings.INVOICE_DOWNLOAD_DIR = folder
    system_tmp = tmp_path / "system-tmp"
    system_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(system_tmp))
    yield folder
    leftovers = sorted(p.name for p in [*folder.glob("*crm-invoice-*"), *system_tmp.glob("*crm-invoice-*")])
    assert not leftovers, f"downloaded invoice files left behind: {leftovers}"


@pytest.fixture
def user(django_user_model: Any) -> Any:
    return django_user_model.objects.create_user(username="ventas", password="clave-segura-123")


@pytest.fixture
def api_client(user: Any) -> APIClient:
    """An API client that sends a valid `Authorization: Bearer` header."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(user)}")
    return client


@pytest.fixture
def anon_client() -> APIClient:
    return APIClient()


@pytest.fixture
def make_opportunity(db: None) -> Callable[..., Any]:
    """Create an opportunity directly in the database (`name` defaults to a patient sale)."""
    from opportunities.models import Opportunity

    def make(**fields: Any) -> Opportunity:
        fields.setdefault("name", "Venta consulta dermatología")
        return Opportunity.objects.create(**fields)

    return make


@pytest.fixture
def http_server() -> Iterator[LocalHTTPServer]:
    """A real HTTP server on 127.0.0.1 (random port) with routes set by the test."""
    server = LocalHTTPServer()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def http_mock() -> Iterator[Any]:
    """One `responses` mock for the test: every outgoing `requests` call must match a route, and
    every route the test registers must be called (the simulated services drop their unused
    routes themselves)."""
    import responses

    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        yield rsps


@pytest.fixture
def mifact(settings: Any, http_mock: Any) -> Iterator[Any]:
    """invoice-mifact configured at a fake base URL and scripted through `responses`."""
    from billing import mifact as billing_services
    from billing.tests.fakes import BASE, FakeMifact

    settings.URL_INVOICE_MIFACT_V3 = BASE
    settings.INVOICE_MIFACT_USERNAME = "admin"
    settings.INVOICE_MIFACT_PASSWORD = "secreto"
    billing_services.reset_shared_mifact_client()
    fake = FakeMifact(http_mock)
    yield fake
    fake.forget_unused_routes()
    billing_services.reset_shared_mifact_client()


@pytest.fixture
def sv(settings: Any, http_mock: Any) -> Iterator[Any]:
    """SV configured at a fake base URL and scripted through `responses`."""
    from opportunities.tests.fakes import BASE, FakeSv

    settings.URL_SV = BASE
    settings.SV_USERNAME, settings.SV_PASSWORD = "admin", "clave"
    fake = FakeSv(http_mock)
    yield fake
    fake.forget_unused_routes()


@pytest.fixture
def put_process(api_client: APIClient, django_capture_on_commit_callbacks: Any) -> Callable[[str, Any], Any]:
    """PUT a process-update body and run the on-commit work (file moves) as a real commit would."""

    def put(opportunity_id: str, body: Any, **extra: Any) -> Any:
        with django_capture_on_commit_callbacks(execute=True):
            return api_client.put(
                f"/opportunity/update-opportunity-procces/{opportunity_id}", body, format="json", **extra
            )

    return put
