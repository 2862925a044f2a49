"""Records that must not stop a worker: the named cases that did (issue 11, item 4) and a
hypothesis strategy of arbitrary ones (bytes, JSON of any shape, event-shaped JSON that
breaks the contract). Shared by tests/ops/test_poison_records.py and
tests/console/test_console_poison.py."""

from __future__ import annotations

import json

from hypothesis import strategies as st

from beacon.core.events import EVENT_TYPES


def named_poison() -> list[bytes | None]:
    return [
        None,
        b"[" * 100_000 + b"]" * 100_000,
        b'{"x": "' + b"a" * 950_000,  # ~950 KB, not JSON: its dead letter must still fit
        b"\xff\xfe\x00 not UTF-8",
        b"not json at all",
        b"[1, 2, 3]",
        b'{"type": "beacon.episode.reported.v1", "data": {}}',
        json.dumps({"specversion": "1.0", "type": "beacon.nope.v1", "id": "x", "source": "urn:x"}).encode(),
    ]


json_documents = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=20,
)
# Event-shaped but never valid: "time" is not a time.
event_shaped = st.fixed_dictionaries(
    {
        "specversion": st.just("1.0"),
        "type": st.sampled_from(sorted(EVENT_TYPES)),
        "id": st.text(max_size=12),
        "source": st.text(max_size=12),
        "time": st.just("not a time"),
        "subject": st.text(max_size=12),
        "data": json_documents,
    }
)
arbitrary_records = st.lists(
    st.one_of(
        st.binary(max_size=4096),
        json_documents.map(lambda doc: json.dumps(doc).encode()),
        event_shaped.map(lambda doc: json.dumps(doc).encode()),
    ),
    min_size=1,
    max_size=8,
)
