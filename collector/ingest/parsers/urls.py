"""URLs as stored: hostname normalised, path masked, query reduced to allowlisted params.

docs/design.md §5 invariant 4. Every URL-valued field goes through here: the page URL
(:func:`clean_url`, whose parts the event keeps), and the referrer and URL-valued properties
(:func:`url_text`, kept as one URL). Choices a reader may question:

- Hostnames are kept in their ASCII (punycode) form, lower-cased, without port, user info or
  trailing dot: that is what ``location.href`` carries, and one spelling per host keeps reports
  grouped. Unicode labels are mapped (NFKC, lower-case) and punycoded label by label, like
  browsers' non-transitional UTS 46 (``straße`` stays ``xn--strae-oqa``, not ``strasse``), but
  without the full IDNA 2008 validity checks (no ``idna`` package at run time). Hostnames with
  characters other than letters, digits, ``-`` and ``_`` are rejected.
- Paths are percent-decoded to readable Unicode, so ``/caf%C3%A9`` and ``/café`` group together.
  What would change the path's meaning or be unsafe to display stays encoded, in upper-case hex:
  ``%`` ``?`` ``#``, a decoded ``/`` (``%2F``), bytes that are not UTF-8, and control, format
  (bidi overrides, zero-width) and line/paragraph separator characters. Session ids some servers
  put in the path (``;jsessionid=…``) are dropped.
- Masking: a chunk of text between slashes or whitespace that holds an e-mail address (also
  with ``%40`` or double-encoded ``%2540``) becomes ``[email]`` as a whole; runs
  of six or more digits, also split by single spaces, dots or dashes (phone numbers written
  ``06 12 34 56 78`` or ``06.12.34.56.78``, card numbers, ids, IPv4 addresses), become
  ``[number]``. An isolated date written ``YYYY-MM-DD`` or ``DD.MM.YYYY`` (one separator used
  twice, a plausible month and day) is kept, like ``/2024/05/12/`` whose digit runs are short;
  compact dates (``20240512``) cannot be told from an id and are masked. A dotted price or
  version with six digits (``/1299.99``, ``/v10.20.30``) is masked too: privacy wins ties.
- UUIDs and other hex tokens stay: they name a resource, not a person, and masking them would
  merge every product or article page into one row. Six or more consecutive digits inside one
  are still masked.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from collections.abc import Sequence
from functools import lru_cache
from urllib.parse import parse_qsl, urlencode, urlsplit

import msgspec

#: Campaign parameters read into :attr:`CleanUrl.utm`, whatever the site's allowlist.
UTM_FIELDS: tuple[str, ...] = (
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
)
#: Longest campaign or kept query value, after trimming.
MAX_CAMPAIGN_VALUE = 200

# An e-mail address inside a chunk of text without whitespace or "/": something, an at-sign
# (also percent-encoded), then a dotted domain. Anchored on the at-sign, so the scan is linear
# (a backtracking pattern over the whole address was quadratic: 190 ms on a 2 KB path).
_AT_SIGN = re.compile(r"[@＠]|%40|%2540", re.IGNORECASE)
_EMAIL_IN_CHUNK = re.compile(r"[^@＠](?:[@＠]|%40|%2540)[^@＠.]+(?:\.|%2E)[^@＠.]", re.IGNORECASE)
_CHUNK_DELIMITERS = re.compile(r"([\s/]+)")
# An isolated date is tried first at each position, so it is consumed and kept whole.
_DATE = (
    r"(?:19|20)[0-9]{2}(?P<s1>[-.])(?:0[1-9]|1[0-2])(?P=s1)(?:0[1-9]|[12][0-9]|3[01])"
    r"|(?:0[1-9]|[12][0-9]|3[01])(?P<s2>[-.])(?:0[1-9]|1[0-2])(?P=s2)(?:19|20)[0-9]{2}"
)
_DIGIT_SEPARATOR = r"(?:[ .\-]|%20)"
# ``\d`` is Unicode-aware: Arabic-Indic or fullwidth digits are digits too.
_NUMBER = re.compile(rf"(?<!\d)(?P<date>{_DATE})(?!\d)|\d(?:{_DIGIT_SEPARATOR}?\d){{5,}}")
_PATH_SESSION = re.compile(r";(?:jsessionid|phpsessid|sid|sessionid)=[^/;]*", re.IGNORECASE)
_ESCAPE_RUN = re.compile(r"(?:%[0-9A-Fa-f]{2})+")
_HOST_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?")
_ENCODED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp", "Co", "Cn"})
_ALWAYS_ENCODED = frozenset("%?#")
# Printable ASCII except "#", "%" and "?" never needs a look: anything else does.
_NOT_PLAIN = re.compile(r"[^\x20-\x22\x24\x26-\x3e\x40-\x7e]")


class CleanUrl(msgspec.Struct, frozen=True):
    """A page URL reduced to what may be stored."""

    hostname: str
    path: str
    query: str | None
    utm: dict[str, str]


def clean_url(url: str, *, keep_params: Sequence[str]) -> CleanUrl:
    """Clean an absolute http(s) URL; ``ValueError`` for another scheme, no host or a bad host.

    Results are cached: a site's pages and referrers repeat from hit to hit, and cleaning was
    the largest single cost of a hit in the ingest benchmark. The cache is bounded
    (:data:`URL_CACHE_SIZE` entries of at most 2 KiB URLs) and holds no identifier.
    """
    return _clean_url_cached(url, tuple(keep_params))


URL_CACHE_SIZE = 4096


@lru_cache(maxsize=URL_CACHE_SIZE)
def _clean_url_cached(url: str, keep_params: tuple[str, ...]) -> CleanUrl:
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 -- validates the port (range, digits), which is then dropped
    except ValueError as error:
        raise ValueError(f"malformed URL: {error}") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise ValueError(f"not an http(s) URL: scheme {parts.scheme[:20]!r}")
    if not parts.hostname:
        raise ValueError("URL has no host")
    hostname = normalise_hostname(parts.hostname)
    if hostname is None:
        raise ValueError("URL host is not a valid hostname")
    path = _PATH_SESSION.sub("", _normalise_path(parts.path or "/"))
    query, utm = _campaign_params(parts.query, keep_params)
    return CleanUrl(hostname=hostname, path=mask_personal_data(path), query=query, utm=utm)


def url_text(url: str, *, keep_params: Sequence[str] = ()) -> str:
    """An absolute http(s) URL as a URL-valued field stores it: its scheme, host and cleaned
    path, and the query parameters of ``keep_params`` (none by default); the fragment, user
    info, port and every other parameter are dropped. ``ValueError`` as :func:`clean_url`.
    """
    cleaned = clean_url(url, keep_params=keep_params)
    scheme = urlsplit(url.strip()).scheme.lower()
    host = f"[{cleaned.hostname}]" if ":" in cleaned.hostname else cleaned.hostname
    query = f"?{cleaned.query}" if cleaned.query else ""
    return f"{scheme}://{host}{cleaned.path}{query}"


def is_url(value: object) -> bool:
    """``value`` is text that names an http(s) URL (it may still be malformed): such a value is
    URL-valued under any property name."""
    return isinstance(value, str) and value.lstrip()[:8].lower().startswith(("http://", "https://"))


def host_allowed(hostname: str, patterns: Sequence[str]) -> bool:
    """``hostname`` is one of ``patterns``: exact names, or ``*.example.com`` for subdomains.

    ``*.example.com`` does not match ``example.com`` itself: list both to allow both. Names are
    compared normalised (case, trailing dot, punycode), so ``café.fr`` matches its punycode.
    Never raises: an invalid hostname or pattern matches nothing.
    """
    host = normalise_hostname(hostname)
    if host is None:
        return False
    for pattern in patterns:
        wildcard = pattern.startswith("*.")
        name = normalise_hostname(pattern[2:] if wildcard else pattern)
        if name is None:
            continue
        if host.endswith("." + name) if wildcard else host == name:
            return True
    return False


def mask_personal_data(path: str) -> str:
    """Replace e-mail addresses by ``[email]`` and long digit runs by ``[number]``.

    A chunk of text between slashes or whitespace that holds an address is replaced whole
    (``/to/name=jane@example.org`` → ``/to/[email]``): what surrounds an address in one path
    segment is rarely worth keeping, and it cannot leak part of it.
    """
    if _AT_SIGN.search(path):
        path = "".join(
            "[email]" if _EMAIL_IN_CHUNK.search(chunk) else chunk
            for chunk in _CHUNK_DELIMITERS.split(path)
        )
    return _NUMBER.sub(_mask_number, path)


@lru_cache(maxsize=4096)
def normalise_hostname(hostname: str) -> str | None:
    """The ASCII, lower-case form of a hostname or IP literal; ``None`` if it is not one."""
    host = hostname.strip().rstrip(".")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not host or len(host) > 253:
        return None
    if ":" in host:
        try:
            return ipaddress.IPv6Address(host).compressed
        except ValueError:
            return None
    # Browsers treat the ideographic full stop as a dot too.
    labels = unicodedata.normalize("NFKC", host).lower().replace("。", ".").split(".")
    ascii_labels: list[str] = []
    for label in labels:
        if not label.isascii():
            try:
                label = "xn--" + label.encode("punycode").decode("ascii")
            except UnicodeError:
                return None
        if len(label) > 63 or not _HOST_LABEL.fullmatch(label):
            return None
        ascii_labels.append(label)
    result = ".".join(ascii_labels)
    return result if len(result) <= 253 else None


def _mask_number(match: re.Match[str]) -> str:
    return match.group(0) if match.group("date") else "[number]"


def _normalise_path(raw: str) -> str:
    if "%" not in raw and not _NOT_PLAIN.search(raw):  # the usual path: nothing to re-escape
        return raw if raw.startswith("/") else "/" + raw
    out: list[str] = []
    position = 0
    for run in _ESCAPE_RUN.finditer(raw):
        out.append(_escape_text(raw[position : run.start()]))
        decoded = bytes.fromhex(run.group(0).replace("%", "")).decode("utf-8", "surrogateescape")
        for char in decoded:
            code = ord(char)
            if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8: keep it encoded
                out.append(f"%{code - 0xDC00:02X}")
            elif char == "/":
                out.append("%2F")
            else:
                out.append(_escape_char(char))
        position = run.end()
    out.append(_escape_text(raw[position:]))
    path = "".join(out)
    return path if path.startswith("/") else "/" + path


def _escape_text(text: str) -> str:
    return _NOT_PLAIN.sub(lambda match: _escape_char(match.group(0)), text)


@lru_cache(maxsize=4096)
def _escape_char(char: str) -> str:
    if char in _ALWAYS_ENCODED or unicodedata.category(char) in _ENCODED_CATEGORIES:
        return "".join(f"%{byte:02X}" for byte in char.encode("utf-8", "surrogatepass"))
    return char


def _campaign_params(query: str, keep_params: Sequence[str]) -> tuple[str | None, dict[str, str]]:
    if not query:
        return None, {}
    keep = {name.lower() for name in keep_params}
    kept: list[tuple[str, str]] = []
    utm: dict[str, str] = {}
    for raw_name, raw_value in parse_qsl(query, errors="replace"):
        name = raw_name.strip().lower()
        if name not in keep and name not in UTM_FIELDS:
            continue
        value = _campaign_value(raw_value)
        if not value:
            continue
        if name in UTM_FIELDS:
            utm.setdefault(name, value)
        if name in keep:
            kept.append((name, value))
    kept.sort(key=lambda pair: pair[0])  # stable: a repeated name keeps its values' order
    return (urlencode(kept) if kept else None), utm


def _campaign_value(value: str) -> str:
    if value.isascii() and value.isprintable():  # no control character to look for
        visible = value
    else:
        visible = "".join(
            char for char in value if unicodedata.category(char) not in _ENCODED_CATEGORIES
        )
    return mask_personal_data(visible.strip())[:MAX_CAMPAIGN_VALUE].strip()
