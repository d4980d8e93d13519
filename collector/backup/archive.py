"""The archive of a backup: one tar stream, encrypted to age recipients as it is written.

Written without a plaintext tar on disk: the stream is produced member by member, hashed as it
goes and handed to ``pyrage.encrypt_io``. Read back the same way: ``pyrage.decrypt_io`` runs in
a thread writing into a pipe that :mod:`tarfile` reads from, so neither side holds more than a
chunk in memory. The tar is plain POSIX (pax) so that ``age -d … | tar -x`` restores it too.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pyrage
from pyrage import x25519

from collector.backup.manifest import Archive, BackupFile
from collector.errors import BackupError

CHUNK = 1 << 20
_BLOCK = tarfile.BLOCKSIZE
_RECORD = tarfile.RECORDSIZE


@dataclass(frozen=True)
class Member:
    """A file or directory to archive; a file's bytes are ``data`` or, for the database copy,
    read from ``source`` (``size`` bytes)."""

    path: str
    mode: int
    mtime: float
    uid: int
    gid: int
    directory: bool = False
    data: bytes = b""
    source: IO[bytes] | None = None
    size: int | None = None


class _TarStream:
    """The tar archive of ``members`` as chunks; records each file's size and SHA-256."""

    def __init__(self, members: list[Member]) -> None:
        self._members = members
        self.files: list[BackupFile] = []
        self.directories: list[str] = []
        self.digest = hashlib.sha256()
        self.size = 0

    def chunks(self) -> Iterator[bytes]:
        for chunk in self._raw_chunks():
            self.digest.update(chunk)
            self.size += len(chunk)
            yield chunk

    def _raw_chunks(self) -> Iterator[bytes]:
        for member in self._members:
            info = tarfile.TarInfo(member.path)
            info.mode = member.mode
            info.mtime = int(member.mtime)
            info.uid, info.gid = member.uid, member.gid
            if member.directory:
                info.type = tarfile.DIRTYPE
                self.directories.append(member.path)
                yield info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
                continue
            size = len(member.data) if member.source is None else member.size
            assert size is not None
            info.size = size
            yield info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
            digest = hashlib.sha256()
            written = 0
            for piece in _contents(member):
                digest.update(piece)
                written += len(piece)
                yield piece
            if written != size:
                # The header already promised ``size`` bytes: the archive would be unreadable.
                raise BackupError(f"{member.path} changed size while it was archived")
            if size % _BLOCK:
                yield bytes(_BLOCK - size % _BLOCK)
            self.files.append(
                BackupFile(
                    path=member.path,
                    bytes=size,
                    sha256=digest.hexdigest(),
                    mode=f"{member.mode & 0o7777:04o}",
                )
            )
        # The end-of-archive marker, and padding to a whole record as tar(1) writes it.
        written = self.size + 2 * _BLOCK
        yield bytes(2 * _BLOCK + (-written % _RECORD))


def _contents(member: Member) -> Iterator[bytes]:
    if member.source is None:
        yield member.data
        return
    while piece := member.source.read(CHUNK):
        yield piece


class _ChunkReader:
    """A readable file over an iterator of chunks (what ``pyrage.encrypt_io`` reads)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._pending = memoryview(b"")

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            rest = bytes(self._pending) + b"".join(self._chunks)
            self._pending = memoryview(b"")
            return rest
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                return b""
            self._pending = memoryview(chunk)
        piece = bytes(self._pending[:size])
        self._pending = self._pending[size:]
        return piece


class _HashingWriter:
    def __init__(self, file: IO[bytes]) -> None:
        self._file = file
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        self.size += len(data)
        return self._file.write(data)

    def flush(self) -> None:
        self._file.flush()


def write_archive(
    path: Path, members: list[Member], recipients: list[x25519.Recipient] | None
) -> tuple[Archive, list[BackupFile], list[str]]:
    """Write the archive of ``members`` to the new file ``path`` (mode 0600) and sync it;
    encrypted to ``recipients`` unless ``None``."""
    stream = _TarStream(members)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as file:
        out = _HashingWriter(file)
        if recipients is None:
            for chunk in stream.chunks():
                out.write(chunk)
        else:
            try:
                pyrage.encrypt_io(_ChunkReader(stream.chunks()), out, recipients)
            except pyrage.EncryptError as exc:
                raise BackupError(f"{path.name}: encryption failed: {exc}") from None
        file.flush()
        os.fsync(file.fileno())
    archive = Archive(
        path=path.name,
        bytes=out.size,
        sha256=out.digest.hexdigest(),
        tar_bytes=stream.size,
        tar_sha256=stream.digest.hexdigest(),
    )
    return archive, stream.files, stream.directories


# ---------------------------------------------------------------- reading


class TarSource:
    """The plaintext tar stream of an archive, hashed as it is read.

    Reading past the end raises the decryption's error, if any, so that a wrong identity or a
    corrupted chunk is reported as such, not as a truncated tar.
    """

    def __init__(
        self,
        file: IO[bytes],
        decryption: threading.Thread | None = None,
        failure: list[BaseException] | None = None,
    ) -> None:
        self._file = file
        self._decryption = decryption
        self._failure = failure if failure is not None else []
        self.digest = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        data = self._file.read(size)
        if data:
            self.digest.update(data)
            self.size += len(data)
        elif self._decryption is not None:
            self._decryption.join()
            if self._failure:
                raise _decryption_error(self._failure[0])
        return data

    def drain(self) -> None:
        """Read to the end (the padding after the tar's last member), to hash everything."""
        while self.read(CHUNK):
            pass


def _decryption_error(exc: BaseException) -> BackupError:
    if isinstance(exc, pyrage.DecryptError) and "No matching keys" in str(exc):
        return BackupError("none of the identities given can decrypt the archive")
    return BackupError(f"the archive cannot be decrypted: {exc}")


class _PipeWriter:
    def __init__(self, fd: int) -> None:
        self._fd = fd

    def write(self, data: bytes) -> int:
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view) :]
        return len(data)

    def flush(self) -> None:
        return None


@contextmanager
def plaintext(path: Path, identities: list[x25519.Identity] | None) -> Iterator[TarSource]:
    """The archive's tar stream: read as is (``identities`` ``None``) or decrypted."""
    if identities is None:
        with path.open("rb") as file:
            yield TarSource(file)
        return
    read_end, write_end = os.pipe()
    failure: list[BaseException] = []

    def decrypt() -> None:
        try:
            with path.open("rb") as encrypted:
                pyrage.decrypt_io(encrypted, _PipeWriter(write_end), identities)
        except BrokenPipeError:
            pass  # the reader stopped at a problem of its own, which it reports
        except BaseException as exc:  # handed to the reading thread
            failure.append(exc)
        finally:
            os.close(write_end)

    thread = threading.Thread(target=decrypt, name="mesure-backup-decrypt", daemon=True)
    with os.fdopen(read_end, "rb") as file:
        source = TarSource(file, thread, failure)
        thread.start()
        try:
            yield source
        finally:
            file.close()  # a writer blocked on a full pipe gets EPIPE and ends
            thread.join()


def members(source: TarSource) -> Iterator[tuple[tarfile.TarInfo, IO[bytes] | None]]:
    """Each member of the tar stream, with a reader of its contents for a regular file."""
    try:
        with tarfile.open(fileobj=source, mode="r|") as tar:  # type: ignore[call-overload]
            for info in tar:
                yield info, tar.extractfile(info) if info.isreg() else None
    except (tarfile.TarError, EOFError) as exc:
        raise BackupError(f"the archive is not a complete tar archive: {exc}") from None
