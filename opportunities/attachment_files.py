"""The files of attachments in storage, content-addressed (docs/operations.md "What survives what").

A comprobante is written to its final place, `invoices/<sha256[:2]>/<sha256>.pdf`, durably
(written, fsynced, renamed, its folder fsynced; an S3 object appears whole or not at all) before
the attachment row that points to it commits. A crash before that commit leaves a file without a
row, which is harmless: `attachment_files_sweep` deletes such files once they are older than a
grace period. Every put rewrites the file, so a file about to be referenced is always young and
never swept.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import pathlib
import tempfile
from collections.abc import Iterator

from django.conf import settings
from django.core.files import File
from django.core.files.storage import FileSystemStorage, default_storage
from django.utils import timezone

from .models import Attachment

logger = logging.getLogger(__name__)

ATTACHMENT_FOLDER = "invoices"
_PARTIAL_PREFIX = ".partial-"
_CHUNK = 1024 * 1024


def attachment_file_name(*, sha256: str) -> str:
    """The storage name of the file with this SHA-256."""
    return f"{ATTACHMENT_FOLDER}/{sha256[:2]}/{sha256}.pdf"


def _fsync_folder(folder: pathlib.Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _local_put(storage: FileSystemStorage, name: str, source: pathlib.Path) -> None:
    final = pathlib.Path(storage.path(name))
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, partial = tempfile.mkstemp(prefix=_PARTIAL_PREFIX, dir=final.parent)
    try:
        with os.fdopen(fd, "wb") as out, source.open("rb") as src:
            while chunk := src.read(_CHUNK):
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(partial, settings.FILE_UPLOAD_PERMISSIONS or 0o644)
        os.replace(partial, final)
    except BaseException:
        pathlib.Path(partial).unlink(missing_ok=True)
        raise
    _fsync_folder(final.parent)
    _fsync_folder(final.parent.parent)


def attachment_file_put(*, source: pathlib.Path, sha256: str) -> str:
    """Store the file at `source` (whose SHA-256 is `sha256`) at its content-addressed name,
    durably, and return that name. Always rewrites: the file is then young, so no sweep running
    meanwhile can take it for an orphan. Raises `OSError` (or the storage's error) on failure."""
    name = attachment_file_name(sha256=sha256)
    storage = default_storage
    if isinstance(storage, FileSystemStorage):
        _local_put(storage, name, source)
        return name
    # Remote storages (S3) make an object visible only once it is whole; with content-addressed
    # names, overwriting is safe (the same name always holds the same bytes).
    with source.open("rb") as handle:
        return storage.save(name, File(handle, name=pathlib.Path(name).name))


def attachment_file_open(attachment: Attachment) -> File:
    """`attachment`'s stored file, open for reading. Raises `FileNotFoundError` when it is missing,
    marked by `attachments_check`, or not the size its row says: a cut or foreign file is never
    served as the comprobante."""
    if attachment.file_problem:
        raise FileNotFoundError(attachment.file_problem)
    handle = attachment.file.open("rb")
    if handle.size != attachment.size:
        handle.close()
        raise FileNotFoundError(f"el archivo tiene {handle.size} bytes y debería tener {attachment.size}")
    return handle


def attachment_file_problem(*, name: str, size: int, sha256: str) -> str:
    """ "" when the stored file `name` has `size` bytes and this SHA-256; otherwise what is wrong,
    in Spanish (shown to staff)."""
    storage = default_storage
    digest = hashlib.sha256()
    seen = 0
    try:
        if not name or not storage.exists(name):
            return "falta el archivo"
        with storage.open(name, "rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
                seen += len(chunk)
    except OSError:
        return "no se pudo leer el archivo"
    if seen != size:
        return f"el archivo tiene {seen} bytes y debería tener {size}"
    if digest.hexdigest() != sha256:
        return "el contenido del archivo no coincide con su SHA-256"
    return ""


def _stored_files(folder: str) -> Iterator[str]:
    storage = default_storage
    try:
        folders, files = storage.listdir(folder)
    except (FileNotFoundError, NotADirectoryError):
        return
    for file_name in files:
        yield f"{folder}/{file_name}"
    for sub in folders:
        yield from _stored_files(f"{folder}/{sub}")


def attachment_files_sweep(*, grace: dt.timedelta, delete: bool = True) -> int:
    """Delete the files under `invoices/` that no attachment row points to and that are older
    than `grace` (left by a crash before their row committed, or by a deleted row); return how
    many were deleted (with `delete` False, only count them). The rows are read before the files
    are listed, so a file written after the read is young and kept."""
    storage = default_storage
    referenced = set(Attachment.objects.values_list("file", flat=True))
    older_than = timezone.now() - grace
    removed = 0
    for name in _stored_files(ATTACHMENT_FOLDER):
        if name in referenced:
            continue
        try:
            if storage.get_modified_time(name) >= older_than:
                continue
            if delete:
                storage.delete(name)
        except FileNotFoundError:
            continue
        removed += 1
    if removed and delete:
        logger.debug("Removed %d attachment file(s) that no attachment points to", removed)
    return removed
