"""Attachment files: stored durably under their SHA-256, orphans swept after a grace period
(docs/operations.md "What survives what")."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import time

import pytest

from devtools.testing import make_pdf
from opportunities.attachment_files import (
    attachment_file_name,
    attachment_file_problem,
    attachment_file_put,
    attachment_files_sweep,
)
from opportunities.models import Attachment

pytestmark = pytest.mark.django_db


@pytest.fixture
def source(tmp_path):
    body = make_pdf("F001-9")
    path = tmp_path / "downloaded.pdf"
    path.write_bytes(body)
    return path, body, hashlib.sha256(body).hexdigest()


def test_a_put_writes_the_whole_file_at_its_content_addressed_name(source, media_root):
    path, body, sha = source
    name = attachment_file_put(source=path, sha256=sha)
    assert name == attachment_file_name(sha256=sha) == f"invoices/{sha[:2]}/{sha}.pdf"
    stored = media_root / name
    assert stored.read_bytes() == body
    assert oct(stored.stat().st_mode & 0o777) == "0o644"
    # No partial file is left beside it, and the source (the download) is untouched.
    assert sorted(p.name for p in stored.parent.iterdir()) == [f"{sha}.pdf"]
    assert path.read_bytes() == body


def test_a_put_of_the_same_bytes_again_rewrites_the_file(source, media_root):
    path, body, sha = source
    name = attachment_file_put(source=path, sha256=sha)
    (media_root / name).write_bytes(b"%PDF-cut")
    assert attachment_file_put(source=path, sha256=sha) == name
    assert (media_root / name).read_bytes() == body


def test_the_problem_of_a_file_names_what_is_wrong(source, media_root):
    path, body, sha = source
    name = attachment_file_put(source=path, sha256=sha)
    assert attachment_file_problem(name=name, size=len(body), sha256=sha) == ""
    (media_root / name).write_bytes(body[:-1] + b"X")
    assert attachment_file_problem(name=name, size=len(body), sha256=sha) == (
        "el contenido del archivo no coincide con su SHA-256"
    )
    (media_root / name).write_bytes(body[:10])
    assert "10 bytes" in attachment_file_problem(name=name, size=len(body), sha256=sha)
    (media_root / name).unlink()
    assert attachment_file_problem(name=name, size=len(body), sha256=sha) == "falta el archivo"


def test_the_sweep_deletes_old_files_without_a_row_and_keeps_the_rest(source, media_root, make_opportunity):
    path, body, sha = source
    referenced = attachment_file_put(source=path, sha256=sha)
    Attachment.objects.create(
        opportunity=make_opportunity(),
        kind="comprobante_soles",
        file=referenced,
        file_name="F001-9.pdf",
        size=len(body),
        sha256=sha,
        source_url="https://mifact.example/F001-9.pdf",
    )
    other = make_pdf("huérfano")
    orphan_source = path.with_name("orphan.pdf")
    orphan_source.write_bytes(other)
    orphan = attachment_file_put(source=orphan_source, sha256=hashlib.sha256(other).hexdigest())
    partial = media_root / "invoices" / "ab" / ".partial-x1y2"
    partial.parent.mkdir(parents=True, exist_ok=True)
    partial.write_bytes(b"%PDF-half")
    an_hour_ago = time.time() - 3600
    for old in (media_root / referenced, media_root / orphan, partial):
        os.utime(old, (an_hour_ago, an_hour_ago))
    young = media_root / "invoices" / "cd" / "young.pdf"
    young.parent.mkdir(parents=True)
    young.write_bytes(b"%PDF-young")

    assert attachment_files_sweep(grace=dt.timedelta(minutes=30)) == 2
    assert (media_root / referenced).exists() and young.exists()
    assert not (media_root / orphan).exists() and not partial.exists()


def test_the_sweep_with_no_invoices_folder_does_nothing(media_root):
    assert attachment_files_sweep(grace=dt.timedelta(0)) == 0
