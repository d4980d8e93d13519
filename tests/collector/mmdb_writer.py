"""A minimal MaxMind DB (format 2.0) writer, so geo tests need no downloaded database.

Follows the public "MaxMind DB File Format Specification": a binary search tree over the 128
bits of an IPv6 address (IPv4 networks live under ``::/96``), 24-bit records, a 16-byte zero
separator, the data section, then ``\\xab\\xcd\\xefMaxMind.com`` and the metadata map. Only the
types a country database needs are encoded: maps, UTF-8 strings, unsigned integers, arrays.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

METADATA_MARKER = b"\xab\xcd\xefMaxMind.com"
RECORD_BITS = 24
_SEPARATOR = b"\x00" * 16

Value = str | int | list["Value"] | dict[str, "Value"]

_TYPE_STRING = 2
_TYPE_UINT16 = 5
_TYPE_UINT32 = 6
_TYPE_MAP = 7
_TYPE_UINT64 = 9
_TYPE_ARRAY = 11


def encode(value: Value, *, uint_type: int = _TYPE_UINT32) -> bytes:
    """One value of the data section (control byte(s) then payload)."""
    if isinstance(value, bool):
        raise TypeError("booleans are not needed by these tests")
    if isinstance(value, str):
        payload = value.encode("utf-8")
        return _control(_TYPE_STRING, len(payload)) + payload
    if isinstance(value, int):
        payload = value.to_bytes((value.bit_length() + 7) // 8, "big") if value else b""
        return _control(uint_type, len(payload)) + payload
    if isinstance(value, list):
        return _control(_TYPE_ARRAY, len(value)) + b"".join(encode(item) for item in value)
    if isinstance(value, dict):
        body = b"".join(encode(key) + encode(item) for key, item in value.items())
        return _control(_TYPE_MAP, len(value)) + body
    raise TypeError(f"cannot encode {type(value).__name__}")


def _control(type_number: int, size: int) -> bytes:
    if size < 29:
        size_bits, extra = size, b""
    elif size < 285:
        size_bits, extra = 29, bytes([size - 29])
    elif size < 65821:
        size_bits, extra = 30, (size - 285).to_bytes(2, "big")
    else:
        size_bits, extra = 31, (size - 65821).to_bytes(3, "big")
    if type_number <= 7:
        return bytes([(type_number << 5) | size_bits]) + extra
    # Extended types: type bits 0 in the control byte, then (type - 7), then the size bytes.
    return bytes([size_bits, type_number - 7]) + extra


def write_country_db(path: Path, networks: dict[str, str], *, ip_version: int = 6) -> Path:
    """Write a country database mapping each CIDR network to its ISO code; returns ``path``."""
    records: dict[str, Value] = {
        cidr: {"country": {"iso_code": code, "names": {"en": code}}}
        for cidr, code in networks.items()
    }
    return write_db(path, records, ip_version=ip_version)


def write_db(
    path: Path,
    records: dict[str, Value],
    *,
    ip_version: int = 6,
    database_type: str = "Mesure-Test-Country",
) -> Path:
    """Write a database mapping each CIDR network to its record; returns ``path``.

    Networks must not overlap. In an IPv6 database (``ip_version=6``) IPv4 networks are stored
    under ``::/96`` as readers expect; an IPv4 database holds IPv4 networks only.
    """
    data = bytearray()
    offsets: dict[bytes, int] = {}
    # Each node is [left, right]; a record is ("node", index), ("data", offset) or None.
    nodes: list[list[tuple[str, int] | None]] = [[None, None]]
    for cidr, record in records.items():
        encoded = encode(record)
        if encoded not in offsets:
            offsets[encoded] = len(data)
            data += encoded
        network = ipaddress.ip_network(cidr)
        _insert(nodes, network, offsets[encoded], tree_bits=32 if ip_version == 4 else 128)
    node_count = len(nodes)
    tree = bytearray()
    for left, right in nodes:
        tree += _record(left, node_count) + _record(right, node_count)
    metadata: dict[str, Value] = {
        "binary_format_major_version": 2,
        "binary_format_minor_version": 0,
        "build_epoch": 1_700_000_000,
        "database_type": database_type,
        "description": {"en": "Tiny country database for Mesure's tests"},
        "ip_version": ip_version,
        "languages": ["en"],
        "node_count": node_count,
        "record_size": RECORD_BITS,
    }
    path.write_bytes(bytes(tree) + _SEPARATOR + bytes(data) + METADATA_MARKER + _metadata(metadata))
    return path


def _metadata(fields: dict[str, Value]) -> bytes:
    uint_types = {
        "binary_format_major_version": _TYPE_UINT16,
        "binary_format_minor_version": _TYPE_UINT16,
        "ip_version": _TYPE_UINT16,
        "record_size": _TYPE_UINT16,
        "node_count": _TYPE_UINT32,
        "build_epoch": _TYPE_UINT64,
    }
    body = b"".join(
        encode(key) + encode(value, uint_type=uint_types.get(key, _TYPE_UINT32))
        for key, value in fields.items()
    )
    return _control(_TYPE_MAP, len(fields)) + body


def _insert(
    nodes: list[list[tuple[str, int] | None]],
    network: ipaddress.IPv4Network | ipaddress.IPv6Network,
    offset: int,
    *,
    tree_bits: int,
) -> None:
    if network.max_prefixlen > tree_bits:
        raise ValueError(f"{network} does not fit an IPv4 database")
    # An IPv4 address in an IPv6 tree is ::a.b.c.d: the same integer, 96 more leading zero bits.
    bits = int(network.network_address)
    prefix = tree_bits - network.max_prefixlen + network.prefixlen
    if prefix == 0:
        raise ValueError("a whole-space network is not supported")
    node = 0
    for depth in range(prefix):
        bit = (bits >> (tree_bits - 1 - depth)) & 1
        record = nodes[node][bit]
        if depth == prefix - 1:
            if record is not None:
                raise ValueError(f"{network} overlaps another network")
            nodes[node][bit] = ("data", offset)
            return
        if record is None:
            nodes.append([None, None])
            record = ("node", len(nodes) - 1)
            nodes[node][bit] = record
        elif record[0] == "data":
            raise ValueError(f"{network} overlaps another network")
        node = record[1]


def _record(record: tuple[str, int] | None, node_count: int) -> bytes:
    if record is None:
        value = node_count  # "no data"
    elif record[0] == "node":
        value = record[1]
    else:
        value = node_count + len(_SEPARATOR) + record[1]
    return value.to_bytes(RECORD_BITS // 8, "big")
