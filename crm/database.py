"""Telling a lost database connection from a failed statement, and retrying briefly across one
(docs/operations.md "Monitoring", dropped connections and killed runs).

A failover, a restarted server or `pg_terminate_backend` kills the connection a process holds:
the next statement raises, and Django keeps the broken connection object until someone closes
it. The periodic commands stop their run on such an error (`connection_lost`), close the
connection (`connection_drop`) and make their last writes (the release of their claims, their
run record) with `database_retry`, which reconnects for up to `COMMAND_DB_RETRY_SECONDS`.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from typing import TypeVar

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection
from django.db.utils import Error as DatabaseError

T = TypeVar("T")

#: SQLSTATE classes of a connection that is gone: 08 connection exception, 57 operator
#: intervention (57P01 `pg_terminate_backend`, a shutdown), 53 insufficient resources.
_LOST_CLASSES = ("08", "57", "53")
_SQLITE_LOST = ("unable to open database file", "disk I/O error")

#: Spanish, for people: the reason a run stopped.
DATABASE_LOST = "se perdió la conexión con la base de datos"


def connection_lost(exc: BaseException) -> bool:
    """Whether `exc` means the database connection (or the server) is gone, rather than one
    statement failing (a deadlock, a constraint): the driver's SQLSTATE, where it gives one."""
    if isinstance(exc, InterfaceError):
        return True
    if not isinstance(exc, OperationalError):
        return False
    cause = exc.__cause__
    if isinstance(cause, sqlite3.Error):
        # A file that cannot be opened or read; not "no such table" or "database is locked".
        return str(cause).startswith(_SQLITE_LOST)
    if cause is None or not hasattr(cause, "sqlstate"):
        return True  # drivers without SQLSTATE
    state = cause.sqlstate
    return state is None or state.startswith(_LOST_CLASSES)  # None: the client saw the socket close


def connection_drop() -> None:
    """Close this thread's connection, whatever state it is in (the next query opens a new one)."""
    try:
        connection.close()
    except DatabaseError:
        pass  # already broken: Django forgets it all the same


def database_retry(action: Callable[[], T], *, seconds: float | None = None) -> T:
    """Run `action` (a short write), reconnecting and trying again while the connection is lost,
    for up to `seconds` (default `COMMAND_DB_RETRY_SECONDS`); then the last error is raised."""
    limit = settings.COMMAND_DB_RETRY_SECONDS if seconds is None else seconds
    deadline = time.monotonic() + limit
    pause = 0.1
    while True:
        try:
            return action()
        except DatabaseError as exc:
            if not connection_lost(exc):
                raise
            connection_drop()
            if time.monotonic() + pause > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 2.0)
