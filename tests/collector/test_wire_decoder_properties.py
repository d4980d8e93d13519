"""Property tests of the wire decoder: valid hits round-trip; any other input is a 400."""

from __future__ import annotations

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.errors import BadRequestError
from collector.ingest.wire import MAX_ENGAGED_MS, HitIn, decode_batch, decode_hit

printable = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=40
)
prop_values = st.one_of(
    st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs")), max_size=50),
    st.integers(min_value=-(10**15), max_value=10**15),
    st.floats(min_value=-1e15, max_value=1e15, allow_nan=False),
    st.booleans(),
)
hits = st.builds(
    HitIn,
    site=st.from_regex(r"\A[a-z0-9][a-z0-9_.-]{0,20}\Z"),
    url=printable.map(lambda path: "https://example.com/" + path),
    name=printable,
    mode=st.sampled_from([None, "granted", "exempt", "denied", "optout"]),
    cid=st.one_of(st.none(), st.from_regex(r"\A[A-Za-z0-9_-]{1,64}\Z")),
    uid=st.one_of(st.none(), printable),
    props=st.one_of(st.none(), st.dictionaries(printable, prop_values, max_size=30)),
    screen=st.one_of(st.none(), st.integers(min_value=0, max_value=100_000)),
    engaged_ms=st.one_of(st.none(), st.integers(min_value=0, max_value=MAX_ENGAGED_MS)),
)


@settings(max_examples=200, deadline=None)
@given(hits)
def test_every_valid_hit_round_trips(hit: HitIn) -> None:
    assert decode_hit(msgspec.json.encode(hit)) == msgspec.convert(msgspec.to_builtins(hit), HitIn)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_decode_or_raise_a_400_naming_a_field(body: bytes) -> None:
    for decode in (decode_hit, decode_batch):
        try:
            decode(body)
        except BadRequestError as exc:
            assert exc.status == 400
            assert exc.field is not None and exc.field.startswith("$")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(list(HitIn.__struct_fields__)), json_values))
def test_wrongly_typed_fields_are_a_400_or_a_valid_hit(document: dict[str, object]) -> None:
    body = msgspec.json.encode(document)
    try:
        hit = decode_hit(body)
    except BadRequestError as exc:
        assert exc.field is not None and exc.field.startswith("$")
    else:
        assert hit.site == document["site"] and hit.url == document["url"]
