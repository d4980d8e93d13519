"""Whether a collector is serving a data directory: ``DATA/collector.lock``.

Every collector process (each ``mesure serve`` worker, or any ASGI server running
:func:`collector.web.app.create_app`) holds a shared ``flock`` on this file for as long as its app
runs. The kernel drops the lock when the process ends, ``kill -9`` included, so a lock that can
be taken exclusively means no collector is running there: unlike a PID file, it cannot go stale.
``mesure restore`` checks it before writing a data directory.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

LOCK_FILE = "collector.lock"


def hold(data_dir: Path) -> int:
    """Mark ``data_dir`` as served until the returned descriptor is closed."""
    fd = os.open(data_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        # Shared: the worker processes of one collector hold it together.
        fcntl.flock(fd, fcntl.LOCK_SH)
    except BaseException:
        os.close(fd)
        raise
    return fd


def in_use(data_dir: Path) -> bool:
    """Whether a collector is serving ``data_dir`` right now."""
    try:
        fd = os.open(data_dir / LOCK_FILE, os.O_RDONLY)
    except (FileNotFoundError, NotADirectoryError):
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # also releases the lock if it was taken
    return False
