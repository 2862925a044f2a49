"""What the one safe decode step costs: per valid event (against the bare decoder the
correlator used before), and per poison record (time to refuse it, size of its letter).

    PYTHONPATH=services .venv/bin/python bench/bench_poison.py [--events N]
"""

from __future__ import annotations

import argparse
import json
import sys
import timeit
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "services"))

from beacon.core.dead_letters import dead_letter
from beacon.core.events import event_from_json
from beacon.core.schemas import example_event
from beacon.runtime.decoding import Rejected, safe_decode

POISON = {
    "null value": None,
    "100,000-deep JSON": b"[" * 100_000 + b"]" * 100_000,
    "950 KB invalid": b'{"x": "' + b"a" * 950_000,
    "not UTF-8": b"\xff\xfe" * 1000,
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=50_000)
    n = parser.parse_args().events
    valid = json.dumps(example_event("beacon.episode.reported.v1")).encode()
    bare = min(timeit.repeat(lambda: event_from_json(valid), number=n, repeat=5)) / n * 1e6
    safe = min(timeit.repeat(lambda: safe_decode(valid, event_from_json), number=n, repeat=5)) / n * 1e6
    print(f"valid event: event_from_json {bare:.2f} us, safe_decode(event_from_json) {safe:.2f} us")
    for name, value in POISON.items():
        ms = min(timeit.repeat(lambda v=value: safe_decode(v, event_from_json), number=10, repeat=3)) / 10 * 1e3
        rejected = safe_decode(value, event_from_json)
        assert isinstance(rejected, Rejected)
        letter = dead_letter(
            value,
            b"k",
            rejected.errors,
            topic="t",
            partition=0,
            offset=0,
            now=datetime.now(UTC),
            service="validator",
            reason_class=rejected.reason,
        ).to_json()
        print(f"{name}: refused as {rejected.reason} in {ms:.2f} ms; dead letter {len(letter):,} bytes")


if __name__ == "__main__":
    main()
