"""The built tracker snippet (``dist/m.js``), its Subresource Integrity hash and embed tags.

The built file is committed, so installing Mesure needs no Node; ``build.mjs`` rebuilds it.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import html
from collections.abc import Mapping
from pathlib import Path

DIST = Path(__file__).parent / "dist" / "m.js"


@functools.cache
def script_bytes() -> bytes:
    """The minified snippet, exactly as served at ``/m.js``."""
    return DIST.read_bytes()


def sri_hash() -> str:
    """The ``integrity`` attribute value of the built snippet (SHA-384)."""
    digest = hashlib.sha384(script_bytes()).digest()
    return "sha384-" + base64.b64encode(digest).decode("ascii")


def etag() -> str:
    return '"' + hashlib.sha256(script_bytes()).hexdigest()[:32] + '"'


def embed_tag(site: str, origin: str, attributes: Mapping[str, str] | None = None) -> str:
    """The ``<script>`` tag and ``<noscript>`` pixel to paste into every page of ``site``.

    ``origin`` is where the collector is reachable, e.g. ``https://stats.example.eu``;
    ``attributes`` are further ``data-*`` attributes (name without ``data-`` → value, ``""``
    for a bare attribute), e.g. ``{"default-mode": "denied"}``.
    """
    origin = origin.rstrip("/")
    site_attr = html.escape(site, quote=True)
    site_query = html.escape(site, quote=True)
    extra = "".join(
        f" data-{name}" if value == "" else f' data-{name}="{html.escape(value, quote=True)}"'
        for name, value in (attributes or {}).items()
    )
    return (
        f'<script defer src="{origin}/m.js" data-site="{site_attr}"{extra} '
        f'integrity="{sri_hash()}" crossorigin="anonymous"></script>\n'
        f'<noscript><img src="{origin}/p.gif?site={site_query}" alt="" '
        f'referrerpolicy="no-referrer-when-downgrade" width="1" height="1"></noscript>'
    )
