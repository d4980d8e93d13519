"""Reading what is stored, byte by byte: every file under a directory, searched for needles.

ClickHouse (chDB) compresses its column files in blocks (LZ4 by default), where a string may be
split by a back-reference: each such file is read both as it is and decompressed, block by block,
so a needle is found whether or not its bytes happen to sit in the file literally. A file that
does not parse as ClickHouse blocks is read as it is only (SQLite, JSON, logs, exports).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import lz4.block

try:  # the standard library from Python 3.14, the backport before
    from compression import zstd  # type: ignore[import-not-found]
except ImportError:
    from backports import zstd  # type: ignore[no-redef]

# A block: 16-byte checksum, method, size with the 9-byte header, size decompressed.
_HEADER = struct.Struct("<BII")
_CHECKSUM = 16
_NONE, _LZ4, _ZSTD = 0x02, 0x82, 0x90


def clickhouse_blocks(data: bytes) -> bytes | None:
    """The decompressed content of a file made of ClickHouse compressed blocks; ``None`` if it
    is not one (or uses a codec this reader does not know, which the scan then cannot see
    through: ``test_the_scan_sees_through_clickhouse_compression`` pins the default one)."""
    out: list[bytes] = []
    position = 0
    while position < len(data):
        if len(data) - position < _CHECKSUM + _HEADER.size:
            return None
        method, size, plain = _HEADER.unpack_from(data, position + _CHECKSUM)
        start, end = position + _CHECKSUM + _HEADER.size, position + _CHECKSUM + size
        if size < _HEADER.size or end > len(data):
            return None
        payload = data[start:end]
        try:
            if method == _NONE:
                out.append(payload)
            elif method == _LZ4:
                out.append(lz4.block.decompress(payload, uncompressed_size=plain))
            elif method == _ZSTD:
                out.append(zstd.decompress(payload))
            else:
                return None
        except Exception:  # not a block after all: bytes that looked like a header
            return None
        position = end
    return b"".join(out) if out else None


def views(path: Path) -> Iterator[bytes]:
    """The file's bytes, then its decompressed ClickHouse blocks when it has any."""
    data = path.read_bytes()
    yield data
    plain = clickhouse_blocks(data)
    if plain is not None:
        yield plain


#: How ClickHouse spells a byte inside a quoted string literal: these few are escaped, every
#: other byte is written as it is.
_CLICKHOUSE_ESCAPES = {
    0: b"\\0",
    8: b"\\b",
    9: b"\\t",
    10: b"\\n",
    12: b"\\f",
    13: b"\\r",
    39: b"\\'",
    92: b"\\\\",
}


def clickhouse_literal(value: bytes) -> bytes:
    """``value`` as ClickHouse writes it in a quoted literal (a statement's text)."""
    return b"".join(_CLICKHOUSE_ESCAPES.get(byte, bytes([byte])) for byte in value)


def encodings(value: str | bytes) -> list[bytes]:
    """How a stored value may be spelled: UTF-8 and UTF-16 for text; for bytes raw, hex, and
    as ClickHouse writes them in a statement's text, once and twice escaped (a mutation's
    ``mutation_N.txt`` holds its statement, parameters substituted, escaped again as a field:
    only 8 byte values are escaped, so the raw form alone misses a hash 40 % of the time)."""
    if isinstance(value, bytes):
        literal = clickhouse_literal(value)
        return [
            value,
            value.hex().encode(),
            value.hex().upper().encode(),
            literal,
            clickhouse_literal(literal),
        ]
    return [value.encode(), value.encode("utf-16-le")]


def scan(roots: Iterable[Path], needles: Mapping[str, str | bytes]) -> dict[str, list[str]]:
    """``{needle name: [files holding it]}`` over every file under ``roots`` (files or
    directories); a name absent from the answer was found nowhere."""
    found: dict[str, list[str]] = {}
    files: list[Path] = []
    for root in roots:
        if root.is_file():
            files.append(root)
        elif root.is_dir():
            files += sorted(path for path in root.rglob("*") if path.is_file())
    spelled = {name: encodings(value) for name, value in needles.items()}
    for path in files:
        for data in views(path):
            for name, forms in spelled.items():
                if any(form in data for form in forms) and str(path) not in found.get(name, []):
                    found.setdefault(name, []).append(str(path))
    return found
