"""Country lookup from a local MaxMind-format database written by the tests' own writer."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import maxminddb
import pytest

from collector.ingest.parsers.geo import GeoLookup
from tests.collector.mmdb_writer import Value, write_country_db, write_db

NETWORKS = {
    "81.2.69.0/24": "GB",
    "2.16.0.0/13": "FR",
    "89.160.20.112/28": "SE",
    "217.65.48.0/20": "de",  # lower case in the file: the lookup answers upper case
    "2001:db8::/32": "DE",
    "2a02:26f0::/29": "NL",
}


@pytest.fixture(scope="module")
def country_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_country_db(tmp_path_factory.mktemp("geo") / "country.mmdb", NETWORKS)


@pytest.fixture
def geo(country_db: Path) -> Iterator[GeoLookup]:
    lookup = GeoLookup.open(country_db)
    yield lookup
    lookup.close()


LOOKUPS: list[tuple[str, str, str | None]] = [
    ("ipv4-gb", "81.2.69.160", "GB"),
    ("ipv4-network-start", "81.2.69.0", "GB"),
    ("ipv4-network-end", "81.2.69.255", "GB"),
    ("ipv4-just-outside", "81.2.70.0", None),
    ("ipv4-fr-wide-network", "2.23.255.1", "FR"),
    ("ipv4-small-network", "89.160.20.113", "SE"),
    ("ipv4-next-to-small-network", "89.160.20.128", None),
    ("iso-code-upper-cased", "217.65.50.1", "DE"),
    ("ipv4-unknown", "192.0.2.1", None),
    ("ipv4-loopback", "127.0.0.1", None),
    ("ipv4-mapped-ipv6", "::ffff:81.2.69.7", "GB"),
    ("ipv6-de", "2001:db8::1", "DE"),
    ("ipv6-uppercase-long-form", "2001:0DB8:0000:0000:0000:0000:0000:0001", "DE"),
    ("ipv6-nl", "2a02:26f7:ffff::1", "NL"),
    ("ipv6-unknown", "2001:db9::1", None),
    ("ipv6-loopback", "::1", None),
    ("surrounding-spaces", " 81.2.69.160 ", "GB"),
    ("malformed", "not an ip", None),
    ("empty", "", None),
    ("ipv4-out-of-range", "300.1.2.3", None),
    ("with-port", "81.2.69.160:443", None),
    ("cidr-not-address", "81.2.69.0/24", None),
    ("ipv6-zone", "fe80::1%eth0", None),
]


@pytest.mark.parametrize(("ip", "country"), [c[1:] for c in LOOKUPS], ids=[c[0] for c in LOOKUPS])
def test_country(geo: GeoLookup, ip: str, country: str | None) -> None:
    assert geo.country(ip) == country


def test_no_database_always_answers_none() -> None:
    lookup = GeoLookup.open(None)
    assert lookup.country("81.2.69.160") is None
    lookup.close()


def test_ipv6_against_an_ipv4_only_database_answers_none(tmp_path: Path) -> None:
    path = write_country_db(tmp_path / "v4.mmdb", {"81.2.69.0/24": "GB"}, ip_version=4)
    with GeoLookup.open(path) as lookup:
        assert lookup.country("81.2.69.1") == "GB"
        assert lookup.country("2001:db8::1") is None
        assert lookup.country("::ffff:81.2.69.1") == "GB"


def test_the_writer_output_is_read_by_the_pure_python_reader_too(country_db: Path) -> None:
    # The C extension and the pure-Python reader must agree that the test file is valid.
    with maxminddb.open_database(str(country_db), maxminddb.MODE_MEMORY) as reader:
        assert reader.metadata().ip_version == 6
        assert reader.get("2.16.0.1") == {"country": {"iso_code": "FR", "names": {"en": "FR"}}}


def test_city_records_give_only_the_country(tmp_path: Path) -> None:
    city: Value = {
        "city": {"geoname_id": 2643743, "names": {"en": "London"}},
        "continent": {"code": "EU"},
        "country": {"iso_code": "GB", "names": {"en": "United Kingdom", "fr": "Royaume-Uni"}},
        "location": {"latitude": "51.5142", "longitude": "-0.0931", "accuracy_radius": 10},
        "postal": {"code": "EC2V"},
    }
    anycast: Value = {"registered_country": {"iso_code": "US"}}
    odd: Value = {"country": {"iso_code": "GBR"}}
    path = write_db(
        tmp_path / "city.mmdb",
        {"81.2.69.0/24": city, "192.0.2.0/24": anycast, "198.51.100.0/24": odd},
        database_type="Mesure-Test-City",
    )
    with GeoLookup.open(path) as lookup:
        assert lookup.country("81.2.69.1") == "GB"
        assert lookup.country("192.0.2.1") == "US"
        assert lookup.country("198.51.100.1") is None


@pytest.mark.parametrize(
    "content",
    [b"", b"not a maxmind database at all", b"\xab\xcd\xefMaxMind.com" + b"\x00" * 8],
    ids=["empty-file", "text-file", "marker-without-metadata"],
)
def test_open_rejects_a_file_that_is_not_a_database(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "broken.mmdb"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=r"broken\.mmdb"):
        GeoLookup.open(path)


def test_open_names_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"missing\.mmdb"):
        GeoLookup.open(tmp_path / "missing.mmdb")


def test_close_is_idempotent_and_later_lookups_answer_none(country_db: Path) -> None:
    lookup = GeoLookup.open(country_db)
    lookup.close()
    lookup.close()
    assert lookup.country("81.2.69.160") is None
