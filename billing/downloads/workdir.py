"""The folder where comprobantes are downloaded before they are stored (docs/operations.md
"What survives what").

Downloads never go to the system's temporary folder: they go to `INVOICE_DOWNLOAD_DIR`, a folder
this project owns (mode 0700). Each file is created and locked (`flock`) by the process that
downloads it, and stays locked until it is stored or discarded. A process that dies (SIGKILL, the
OOM killer) releases its locks, so `download_dir_sweep` can tell a file whose owner is gone from
one being written, and deletes the former at once: no patient PDF stays behind.
"""

from __future__ import annotations

import fcntl
import logging
import os
import pathlib
import tempfile
import time

from django.conf import settings

logger = logging.getLogger(__name__)

#: Prefix of the files created in the download folder.
TEMP_FILE_PREFIX = "crm-invoice-"
#: A file younger than this may have just been created by a process that has not locked it yet.
_NEWBORN_SECONDS = 2.0


def download_dir() -> pathlib.Path:
    """The download folder (created, private to the service's user, when missing)."""
    folder = pathlib.Path(settings.INVOICE_DOWNLOAD_DIR)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    return folder


def download_file_create() -> tuple[pathlib.Path, int]:
    """Create an empty file in the download folder, locked by this process; return its path and
    the open descriptor that holds the lock (closing it releases the lock)."""
    fd, name = tempfile.mkstemp(prefix=TEMP_FILE_PREFIX, suffix=".pdf", dir=download_dir())
    fcntl.flock(fd, fcntl.LOCK_EX)
    return pathlib.Path(name), fd


def download_dir_sweep(*, delete: bool = True) -> int:
    """Delete the downloads whose process is gone (their lock is free); return how many (with
    `delete` False, only count them)."""
    folder = pathlib.Path(settings.INVOICE_DOWNLOAD_DIR)
    if not folder.is_dir():
        return 0
    removed = 0
    newborn = time.time() - _NEWBORN_SECONDS
    for path in folder.glob(f"{TEMP_FILE_PREFIX}*"):
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue  # a live download
        try:
            if os.fstat(fd).st_mtime < newborn:
                if delete:
                    path.unlink(missing_ok=True)
                removed += 1
        finally:
            os.close(fd)
    if removed and delete:
        logger.debug("Removed %d comprobante download(s) left by a process that died", removed)
    return removed
