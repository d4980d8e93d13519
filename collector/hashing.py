"""Keyed hashes of identifiers: HMAC-SHA-256 truncated to 16 bytes.

Pure functions; the keys come from :mod:`collector.keys`. Each input is length-prefixed, so
``("ab", "c")`` and ``("a", "bc")`` never hash alike, and each purpose has its own label, so a
hash made for one purpose never equals one made for another.
"""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes, hmac

HASH_BYTES = 16


def keyed_hash(key: bytes, *parts: str | bytes) -> bytes:
    """HMAC-SHA-256 of the length-prefixed ``parts`` under ``key``, truncated to 16 bytes."""
    chunks: list[bytes] = []
    for part in parts:
        data = part.encode("utf-8") if isinstance(part, str) else part
        chunks.append(len(data).to_bytes(8, "big"))
        chunks.append(data)
    mac = hmac.HMAC(key, hashes.SHA256())
    mac.update(b"".join(chunks))  # one call into the library instead of two per part
    return mac.finalize()[:HASH_BYTES]


def client_visitor(key: bytes, site: str, client_id: str) -> bytes:
    """The stored visitor of a client id kept in first-party storage."""
    return keyed_hash(key, b"client-visitor", site, client_id)


def cookieless_visitor(daily_key: bytes, site: str, ip: str, user_agent: str) -> bytes:
    """The stored visitor of a browser without storage, under one day's random key."""
    return keyed_hash(daily_key, b"cookieless-visitor", site, ip, user_agent)


def user(key: bytes, site: str, user_id: str) -> bytes:
    """The stored form of the site's own user id."""
    return keyed_hash(key, b"user", site, user_id)


def client_address(key: bytes, ip: str) -> bytes:
    """The rate limiter's key for a client address (the limiter never holds the address)."""
    return keyed_hash(key, b"rate-limit", ip)
