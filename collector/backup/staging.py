"""Half-written directories: a backup or a restore is written into a hidden sibling of its
destination and renamed into place once complete and synced.

So a process killed mid-way (``kill -9``, power loss) leaves no directory under the name asked
for, and nothing that verifies. What it does leave (``.NAME.mesure-partial-XXXX``, possibly with
a plaintext copy of the database in it) is removed by the next backup or restore writing beside
it: each partial directory holds a lock file that its writer keeps locked, so one whose lock can
be taken belongs to a process that is gone.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from collector.errors import BackupError

PARTIAL_MARK = ".mesure-partial-"
LOCK_NAME = ".writing"


def refuse_existing(path: Path, what: str) -> None:
    if path.exists() or path.is_symlink():
        raise BackupError(f"{path} already exists: {what} goes to a new directory")


def remove_abandoned(parent: Path, echo: Callable[[str], object]) -> None:
    """Remove what killed backups and restores left in ``parent``."""
    if not parent.is_dir():
        return
    for candidate in parent.iterdir():
        if not (candidate.name.startswith(".") and PARTIAL_MARK in candidate.name):
            continue
        lock = candidate / LOCK_NAME
        if not candidate.is_dir() or candidate.is_symlink() or not lock.is_file():
            continue
        fd = os.open(lock, os.O_RDONLY)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # still being written
            shutil.rmtree(candidate)
            echo(f"removed {candidate}, left by an interrupted backup or restore")
        finally:
            os.close(fd)


@contextmanager
def partial_directory(destination: Path) -> Iterator[Path]:
    """A new, locked, mode 0700 sibling of ``destination``; removed unless moved into place."""
    token = secrets.token_hex(4)
    # Locked under another name first: a lock file found unlocked under PARTIAL_MARK then
    # always means its writer is gone.
    starting = destination.with_name(f".{destination.name}.mesure-starting-{token}")
    partial = destination.with_name(f".{destination.name}{PARTIAL_MARK}{token}")
    starting.mkdir(mode=0o700)
    starting.chmod(0o700)  # whatever the umask: it becomes a data directory, or holds one
    lock = os.open(starting / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    fcntl.flock(lock, fcntl.LOCK_EX)
    os.rename(starting, partial)
    try:
        yield partial
    finally:
        if partial.exists():
            shutil.rmtree(partial, ignore_errors=True)
        os.close(lock)


def move_into_place(partial: Path, destination: Path) -> None:
    """Sync ``partial`` and rename it to ``destination`` (absent, or an empty directory)."""
    (partial / LOCK_NAME).unlink()
    sync_tree(partial)
    try:
        os.rename(partial, destination)
    except OSError as exc:
        raise BackupError(
            f"cannot move the finished directory to {destination}: {exc.strerror}; "
            "name a directory that does not exist yet"
        ) from None
    sync_directory(destination.parent)


def sync_tree(root: Path) -> None:
    for folder, _dirs, files in os.walk(root):
        for name in files:
            fd = os.open(os.path.join(folder, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        sync_directory(Path(folder))


def sync_directory(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with contextlib.suppress(OSError):  # some file systems cannot sync a directory
            os.fsync(fd)
    finally:
        os.close(fd)
