"""The key store: per-site client and user keys with epochs, and random daily cookieless keys.

Files live in ``DATA/keys/`` with mode 0600 (the store refuses to start otherwise):
``<site>.client.json`` and ``<site>.user.json`` hold ``{"epoch": n, "key": hex}``;
``daily/<YYYY-MM-DD>.key`` holds one UTC day's random key. Only the current and the previous
day's keys exist: older ones are destroyed as soon as the store is asked for a key on a later day,
so a daily key is gone at most 48 hours after its day ends and the hashes made with it can no
longer be linked to anyone. Each creation, rotation and destruction is written to the audit log.
"""

from __future__ import annotations

import os
import secrets
import stat
import threading
import time
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Literal

import msgspec

from collector.audit import AuditLog
from collector.errors import KeyFileError

KEY_BYTES = 32
SiteKeyKind = Literal["client", "user"]


class SiteKey(msgspec.Struct, frozen=True):
    epoch: int
    key: bytes

    def __repr__(self) -> str:
        return f"SiteKey(epoch={self.epoch}, key=<redacted>)"


class DailyKey(msgspec.Struct, frozen=True):
    day: date
    key: bytes

    @property
    def epoch(self) -> int:
        """The day as ``YYYYMMDD``: the ``key_epoch`` stored with cookieless visitors."""
        return self.day.year * 10000 + self.day.month * 100 + self.day.day

    def __repr__(self) -> str:
        return f"DailyKey(day={self.day.isoformat()}, key=<redacted>)"


class DailyKeys(msgspec.Struct, frozen=True):
    current: DailyKey
    previous: DailyKey | None


class _KeyFile(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    epoch: int
    key: str


#: How long a site key is used from memory before its file is looked at again: a rotation made
#: by another process (the CLI, another worker, the privacy API) applies within this time.
KEY_RECHECK_SECONDS = 1.0


class _CachedKey(msgspec.Struct):
    key: SiteKey
    #: The file the key was read from (inode, modification time): a rotation replaces it.
    source: tuple[int, int]
    checked: float


class KeyStore:
    """Keys of every site in ``keys_dir``; thread-safe, and safe across worker processes."""

    def __init__(self, keys_dir: Path, audit: AuditLog) -> None:
        self.keys_dir = keys_dir
        self._audit = audit
        self._lock = threading.Lock()
        self._site_keys: dict[tuple[str, SiteKeyKind], _CachedKey] = {}
        self._daily: DailyKeys | None = None

    @classmethod
    def open(cls, keys_dir: Path, audit: AuditLog, sites: Iterable[str]) -> KeyStore:
        """Create missing keys of ``sites`` and check every key file's permissions."""
        store = cls(keys_dir, audit)
        keys_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        (keys_dir / "daily").mkdir(mode=0o700, exist_ok=True)
        for site in sites:
            for kind in ("client", "user"):
                store.site_key(site, kind)
        store.check_permissions()
        return store

    def check_permissions(self) -> None:
        """Refuse keys that another user could read or replace: mode 0600 (0700 for folders),
        owned by the user running Mesure."""
        user = os.geteuid()
        for path in [self.keys_dir, *self.keys_dir.rglob("*")]:
            info = path.stat()
            if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
                raise KeyFileError(
                    f"{path} is accessible to other users (mode {stat.S_IMODE(info.st_mode):o}); "
                    f"run: chmod -R go-rwx {self.keys_dir}"
                )
            if info.st_uid != user:
                raise KeyFileError(
                    f"{path} belongs to uid {info.st_uid}, not to the user running Mesure "
                    f"(uid {user}); run Mesure as its owner, or: chown -R {user} {self.keys_dir}"
                )

    def site_key(self, site: str, kind: SiteKeyKind) -> SiteKey:
        """The current key; re-read when its file was replaced (a rotation elsewhere)."""
        with self._lock:
            now = time.monotonic()
            cached = self._site_keys.get((site, kind))
            if cached is not None and now - cached.checked < KEY_RECHECK_SECONDS:
                return cached.key
            if cached is not None and _source(self._site_path(site, kind)) == cached.source:
                cached.checked = now
                return cached.key
            # Looked at before reading: a rotation in between is seen at the next check.
            source = _source(self._site_path(site, kind))
            key = self._load_or_create(site, kind)
            source = source or _source(self._site_path(site, kind))
            assert source is not None  # just read (or created)
            self._site_keys[(site, kind)] = _CachedKey(key=key, source=source, checked=now)
            return key

    def rotate(self, site: str, kind: SiteKeyKind, *, by: str | None = None) -> SiteKey:
        """Replace ``site``'s ``kind`` key by a new random key of the next epoch.

        Hashes made with the old key can no longer be linked to new ones; for the user key this
        crypto-shreds every stored link to a user id.
        """
        with self._lock:
            old = self._load_or_create(site, kind)
            new = SiteKey(epoch=old.epoch + 1, key=secrets.token_bytes(KEY_BYTES))
            path = self._site_path(site, kind)
            _write_private(path, _encode_site_key(new), replace=True)
            source = _source(path)
            assert source is not None
            self._site_keys[(site, kind)] = _CachedKey(
                key=new, source=source, checked=time.monotonic()
            )
        who = {} if by is None else {"by": by}
        self._audit.append(
            "key.rotate", concerns=[site], site=site, kind=kind, epoch=str(new.epoch), **who
        )
        return new

    def daily_keys(self, now: datetime) -> DailyKeys:
        """The keys of ``now``'s UTC day and of the day before; destroys any older key."""
        today = now.date() if now.tzinfo is None else now.astimezone(UTC).date()
        with self._lock:
            if self._daily is not None and self._daily.current.day == today:
                return self._daily
            self._destroy_before(today - timedelta(days=1))
            current = self._daily_key(today, create=True)
            assert current is not None
            previous = self._daily_key(today - timedelta(days=1), create=False)
            self._daily = DailyKeys(current=current, previous=previous)
            return self._daily

    def _site_path(self, site: str, kind: SiteKeyKind) -> Path:
        return self.keys_dir / f"{site}.{kind}.json"

    def _load_or_create(self, site: str, kind: SiteKeyKind) -> SiteKey:
        path = self._site_path(site, kind)
        if not path.exists():
            fresh = SiteKey(epoch=1, key=secrets.token_bytes(KEY_BYTES))
            if _write_private(path, _encode_site_key(fresh), replace=False):
                self._audit.append("key.create", concerns=[site], site=site, kind=kind, epoch="1")
        try:
            data = msgspec.json.decode(path.read_bytes(), type=_KeyFile)
            return SiteKey(epoch=data.epoch, key=bytes.fromhex(data.key))
        except (OSError, ValueError, msgspec.DecodeError) as exc:
            raise KeyFileError(f"{path}: unreadable key file: {exc}") from exc

    def _daily_path(self, day: date) -> Path:
        return self.keys_dir / "daily" / f"{day.isoformat()}.key"

    def _daily_key(self, day: date, *, create: bool) -> DailyKey | None:
        path = self._daily_path(day)
        if create and not path.exists():
            created = _write_private(path, secrets.token_bytes(KEY_BYTES).hex().encode(), False)
            if created:
                self._audit.append("daily-key.create", day=day.isoformat())
        try:
            return DailyKey(day=day, key=bytes.fromhex(path.read_text()))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise KeyFileError(f"{path}: unreadable key file: {exc}") from exc

    def _destroy_before(self, first_kept: date) -> None:
        for path in sorted((self.keys_dir / "daily").glob("*.key")):
            try:
                day = date.fromisoformat(path.stem)
            except ValueError:
                continue
            if day >= first_kept:
                continue
            try:
                shred(path)
            except FileNotFoundError:
                continue  # another worker process destroyed it first
            self._audit.append("daily-key.destroy", day=day.isoformat())


def _source(path: Path) -> tuple[int, int] | None:
    try:
        info = path.stat()
    except FileNotFoundError:
        return None
    return (info.st_ino, info.st_mtime_ns)


def shred(path: Path) -> None:
    """Destroy a key file: overwritten and synced first, so the key does not linger in the
    file's old blocks, then removed. ``FileNotFoundError`` when it is already gone."""
    with path.open("r+b") as file:
        file.write(b"0" * len(file.read()))
        file.flush()
        os.fsync(file.fileno())
    path.unlink()


def _encode_site_key(key: SiteKey) -> bytes:
    return msgspec.json.encode(_KeyFile(epoch=key.epoch, key=key.key.hex()))


def _write_private(path: Path, data: bytes, replace: bool) -> bool:
    """Write ``data`` to ``path`` with mode 0600, atomically; without ``replace``, only if the
    file does not exist yet (``False`` then: another process won the race)."""
    temp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
    try:
        if replace:
            os.replace(temp, path)
            return True
        try:
            os.link(temp, path)
        except FileExistsError:
            return False
        return True
    finally:
        temp.unlink(missing_ok=True)
