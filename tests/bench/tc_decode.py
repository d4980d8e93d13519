"""How long ``consent.tcf.decode`` takes on 2 KB TC strings (issue 3: "well under a millisecond").

    python tests/bench/tc_decode.py [--runs 3000]

Prints the best, median and 90th-percentile time of three strings built with the test encoder:
a 2 KB string with bit-field vendor sections, a 2 KB string whose vendor consents are ranges of
isolated ids (the costliest kind per byte), and a typical 200-character string. A script, not a
test: timings depend on the machine and on what else runs on it.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from consent import tcf
from tests.consent.tc_encoder import encode

CREATED = datetime(2026, 6, 1, tzinfo=UTC)


def strings() -> dict[str, str]:
    bitfield = encode(
        purposes_consent={1, 8, 9},
        vendor_consents=set(range(1, 12000, 2)),
        vendor_legitimate_interests=set(range(2, 800, 3)),
        created=CREATED,
    )
    count = 100
    while True:  # the smallest range-encoded string of isolated ids that reaches 2 KB
        ranged = encode(
            vendor_encoding="range",
            purposes_consent={1, 8, 9},
            vendor_consents=set(range(1, 2 * count, 2)),
            created=CREATED,
        )
        if len(ranged) >= 2048:
            break
        count += 10
    typical = encode(
        purposes_consent={1, 8, 9}, vendor_consents=set(range(1, 900, 3)), created=CREATED
    )
    return {"bit fields": bitfield, "ranges of isolated ids": ranged, "typical": typical}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3000)
    runs = parser.parse_args().runs
    for label, text in strings().items():
        tcf.decode(text)
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            tcf.decode(text)
            times.append(time.perf_counter() - start)
        times.sort()
        print(
            f"{label:<24} {len(text):>5} chars  best {times[0] * 1e6:6.0f} µs  "
            f"median {statistics.median(times) * 1e6:6.0f} µs  "
            f"p90 {times[int(0.9 * runs)] * 1e6:6.0f} µs"
        )


if __name__ == "__main__":
    main()
