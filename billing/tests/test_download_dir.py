"""The download folder: a download is locked by its process; the sweep deletes only what a dead
process left (docs/operations.md "What survives what")."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from billing.downloads import download_dir_sweep
from billing.downloads.workdir import download_file_create

ROOT = Path(__file__).resolve().parents[2]


def test_a_live_download_is_kept_and_a_discarded_one_is_gone(download_temp_dir):
    path, fd = download_file_create()
    assert path.parent == download_temp_dir and path.name.startswith("crm-invoice-")
    assert oct(download_temp_dir.stat().st_mode & 0o777) == "0o700"
    assert download_dir_sweep() == 0 and path.exists()
    os.close(fd)  # released as by a process that died
    assert download_dir_sweep() == 1 and not path.exists()


def test_a_hidden_file_is_swept_at_once_and_its_live_creator_makes_another(download_temp_dir, monkeypatch):
    """A process killed between creating a file and locking it leaves an empty hidden file: the next
    sweep deletes it, whatever its age. A live process whose hidden file a sweep took in that instant
    creates another and gets a locked file all the same."""
    download_temp_dir.mkdir(exist_ok=True)
    left = download_temp_dir / ".crm-invoice-new-x1.pdf"
    left.write_bytes(b"")
    assert download_dir_sweep() == 1 and not left.exists()

    real_flock = fcntl.flock
    swept: list[int] = []

    def flock_after_a_sweep(fd: int, operation: int) -> None:
        if not swept:  # the sweep runs between this process's mkstemp and its lock
            swept.append(download_dir_sweep())
        real_flock(fd, operation)

    monkeypatch.setattr(fcntl, "flock", flock_after_a_sweep)
    path, fd = download_file_create()
    monkeypatch.setattr(fcntl, "flock", real_flock)
    assert swept == [1]
    assert path.name.startswith("crm-invoice-") and path.exists()
    assert [p.name for p in download_temp_dir.iterdir()] == [path.name]
    assert download_dir_sweep() == 0  # locked
    os.close(fd)
    assert download_dir_sweep() == 1


def test_the_downloads_of_a_killed_process_are_swept(download_temp_dir, settings):
    """A process killed with SIGKILL mid-download leaves its file; its lock dies with it."""
    script = textwrap.dedent(
        f"""
        import os, sys, time
        os.environ["DJANGO_SETTINGS_MODULE"] = "crm.settings_test"
        import django; django.setup()
        from django.conf import settings
        settings.INVOICE_DOWNLOAD_DIR = {str(download_temp_dir)!r}
        from billing.downloads.workdir import download_file_create
        path, fd = download_file_create()
        os.write(fd, b"%PDF-1.4 datos del paciente")
        os.utime(path, (time.time() - 60, time.time() - 60))
        print(path, flush=True)
        time.sleep(60)
        """
    )
    child = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        path = Path(child.stdout.readline().strip())
        assert path.exists()
        assert download_dir_sweep() == 0  # its owner is alive
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    assert download_dir_sweep() == 1
    assert list(download_temp_dir.iterdir()) == []


def test_no_download_folder_yet_is_nothing_to_sweep(tmp_path, settings):
    settings.INVOICE_DOWNLOAD_DIR = tmp_path / "never-created"
    assert download_dir_sweep() == 0
