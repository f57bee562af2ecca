"""The folder where comprobantes are downloaded before they are stored (docs/operations.md
"What survives what").

Downloads never go to the system's temporary folder: they go to `INVOICE_DOWNLOAD_DIR`, a folder
this project owns (mode 0700). Each file is created and locked (`flock`) by the process that
downloads it, and stays locked until it is stored or discarded. A process that dies (SIGKILL, the
OOM killer) releases its locks, so `download_dir_sweep` can tell a file whose owner is gone from
one being written, and deletes the former at once: no patient PDF stays behind. A file is created
under a hidden name and gets its visible one only once it is locked. The sweep deletes every hidden
file at once, whether its process died before locking it or is about to lock it: a live process
whose hidden file went finds its rename failing and creates another, so nothing depends on an
age guess and a process killed in that instant leaves nothing behind for long.
"""

from __future__ import annotations

import fcntl
import logging
import os
import pathlib
import tempfile

from django.conf import settings

logger = logging.getLogger(__name__)

#: Prefix of the downloads in the download folder: a file gets it only once its process holds its lock.
TEMP_FILE_PREFIX = "crm-invoice-"
#: Prefix of a file just created, not locked yet (empty); renamed to TEMP_FILE_PREFIX once locked.
_UNLOCKED_PREFIX = ".crm-invoice-new-"


def download_dir() -> pathlib.Path:
    """The download folder (created, private to the service's user, when missing)."""
    folder = pathlib.Path(settings.INVOICE_DOWNLOAD_DIR)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    return folder


def download_file_create() -> tuple[pathlib.Path, int]:
    """Create an empty file in the download folder, locked by this process; return its path and
    the open descriptor that holds the lock (closing it releases the lock)."""
    folder = download_dir()
    while True:
        fd, name = tempfile.mkstemp(prefix=_UNLOCKED_PREFIX, suffix=".pdf", dir=folder)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            path = folder / (TEMP_FILE_PREFIX + pathlib.Path(name).name[len(_UNLOCKED_PREFIX) :])
            os.rename(name, path)  # only now can the sweep see it, and it is locked
        except FileNotFoundError:
            os.close(fd)  # a sweep took the hidden file before it was locked: another one
            continue
        except BaseException:
            os.close(fd)
            pathlib.Path(name).unlink(missing_ok=True)
            raise
        return path, fd


def download_dir_sweep(*, delete: bool = True) -> int:
    """Delete the downloads whose process is gone (their lock is free); return how many (with
    `delete` False, only count them)."""
    folder = pathlib.Path(settings.INVOICE_DOWNLOAD_DIR)
    if not folder.is_dir():
        return 0
    removed = 0
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
            if delete:
                path.unlink(missing_ok=True)
            removed += 1
        finally:
            os.close(fd)
    for path in folder.glob(f"{_UNLOCKED_PREFIX}*"):  # empty; a live creator makes another
        if delete:
            path.unlink(missing_ok=True)
        removed += 1
    if removed and delete:
        logger.debug("Removed %d comprobante download(s) left by a process that died", removed)
    return removed
