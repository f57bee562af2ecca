"""Comprobantes in an S3-compatible bucket: the same code path as local
disk, faked with moto (no network)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from devtools.harness import settings_run
from devtools.testing import make_pdf
from opportunities.models import Attachment

pytestmark = pytest.mark.django_db

BUCKET = "crm-comprobantes-test"


@pytest.fixture
def s3_media(settings, monkeypatch):
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        settings.STORAGES = {
            **settings.STORAGES,
            "default": {
                "BACKEND": "storages.backends.s3.S3Storage",
                "OPTIONS": {
                    "bucket_name": BUCKET,
                    "region_name": "us-east-1",
                    "location": "media",
                    "default_acl": "private",
                    "file_overwrite": True,
                },
            },
        }
        yield client


def test_direct_invoice_is_stored_in_the_bucket_and_downloaded_through_the_api(
    s3_media, make_opportunity, put_process, http_server, settings, api_client, media_root
):
    settings.INVOICE_DOWNLOAD_ALLOWED_HOSTS = [http_server.host_port]
    pdf = make_pdf("S3")
    http_server.route("/F001.pdf", body=pdf)
    opportunity = make_opportunity(c_clinic_history="HC-1")
    response = put_process(opportunity.pk, {"cFacturas": {"comprobante_soles": http_server.url("/F001.pdf")}})
    assert response.status_code == 200, response.content
    attachment = Attachment.objects.get()
    keys = [item["Key"] for item in s3_media.list_objects_v2(Bucket=BUCKET)["Contents"]]
    assert keys == [f"media/{attachment.file.name}"]
    stored = s3_media.get_object(Bucket=BUCKET, Key=keys[0])["Body"].read()
    assert hashlib.sha256(stored).hexdigest() == attachment.sha256
    assert [p for p in Path(media_root).rglob("*") if p.is_file()] == []
    download = api_client.get(f"/opportunity/{opportunity.pk}/attachments/{attachment.pk}/download")
    assert download.status_code == 200
    assert b"".join(download.streaming_content) == pdf


def test_media_storage_s3_is_configured_from_the_environment():
    env = {
        "MEDIA_STORAGE": "s3",
        "AWS_STORAGE_BUCKET_NAME": "crm-prod",
        "AWS_S3_ENDPOINT_URL": "https://minio.example:9000",
    }
    code = (
        "from django.conf import settings; import django; django.setup(); "
        "from django.core.files.storage import default_storage as s; "
        "s._setup(); print(type(s._wrapped).__name__, s.bucket_name, s.endpoint_url, s.default_acl, s.file_overwrite)"
    )
    done = settings_run(code, env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["S3Storage", "crm-prod", "https://minio.example:9000", "private", "True"]


def test_unknown_media_storage_is_refused():
    result = settings_run("import django; django.setup()", {"MEDIA_STORAGE": "ftp"})
    assert result.returncode != 0 and "MEDIA_STORAGE" in result.stderr


def test_the_object_is_in_the_bucket_before_its_row_is_written(
    s3_media, make_opportunity, put_process, http_server, settings
):
    """The same order as on disk: a row never points to an object that is not there."""
    from django.db.models.signals import pre_save

    settings.INVOICE_DOWNLOAD_ALLOWED_HOSTS = [http_server.host_port]
    http_server.route("/F002.pdf", body=make_pdf("S3 orden"))
    seen: list[bool] = []

    def object_exists(sender, instance, **kwargs):
        listed = s3_media.list_objects_v2(Bucket=BUCKET, Prefix=f"media/{instance.file.name}")
        seen.append(listed.get("KeyCount", 0) == 1)

    pre_save.connect(object_exists, sender=Attachment)
    try:
        opportunity = make_opportunity(c_clinic_history="HC-2")
        response = put_process(opportunity.pk, {"cFacturas": {"comprobante_soles": http_server.url("/F002.pdf")}})
    finally:
        pre_save.disconnect(object_exists, sender=Attachment)
    assert response.status_code == 200
    assert seen == [True]


def test_orphan_objects_are_swept_from_the_bucket(s3_media, make_opportunity, put_process, http_server, settings):
    import datetime as dt

    from opportunities.attachment_files import attachment_files_sweep

    settings.INVOICE_DOWNLOAD_ALLOWED_HOSTS = [http_server.host_port]
    http_server.route("/F003.pdf", body=make_pdf("S3 fila"))
    opportunity = make_opportunity(c_clinic_history="HC-3")
    put_process(opportunity.pk, {"cFacturas": {"comprobante_soles": http_server.url("/F003.pdf")}})
    s3_media.put_object(Bucket=BUCKET, Key="media/invoices/ab/huerfano.pdf", Body=b"%PDF-")
    # A grace period in the future makes every object "old enough".
    assert attachment_files_sweep(grace=dt.timedelta(minutes=-5)) == 1
    keys = [item["Key"] for item in s3_media.list_objects_v2(Bucket=BUCKET)["Contents"]]
    assert keys == [f"media/{Attachment.objects.get().file.name}"]
