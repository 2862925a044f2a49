"""Property-based fuzz of POST /v1/events against the real service: no input gives a 5xx.

Hypothesis generates arbitrary JSON, example events with a field replaced by junk,
batches, binary-mode headers and content types; every answer must be a 2xx or a
4xx problem document.
"""

from __future__ import annotations

import json
import string

import httpx
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from beacon.core.events import EVENT_TYPES
from beacon.core.schemas import example_event

pytestmark = pytest.mark.slow

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
police_examples = st.sampled_from([t for t in EVENT_TYPES]).map(example_event)


@st.composite
def mutated_events(draw):  # type: ignore[no-untyped-def]
    event = draw(police_examples)
    if draw(st.booleans()):
        field = draw(st.sampled_from(sorted(event)))
        event[field] = draw(json_values)
    if draw(st.booleans()) and isinstance(event["data"], dict):
        data = dict(event["data"])
        data[draw(st.sampled_from(sorted(data) + ["extra"]))] = draw(json_values)
        event["data"] = data
    return event


bodies = st.one_of(
    json_values,
    mutated_events(),
    st.lists(mutated_events(), min_size=0, max_size=5),
)
header_text = st.text(alphabet=string.ascii_letters + string.digits + ":-._/ +", max_size=30).map(str.strip)
content_types = st.sampled_from(
    [
        "application/json",
        "application/cloudevents+json",
        "application/cloudevents-batch+json",
        "application/json; charset=utf-8",
        "text/plain",
        "",
        "application/xml",
    ]
)


def test_no_input_gives_a_server_error(settings, client, create_key):
    token = create_key("met-police", "police")

    @hsettings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        body=bodies,
        raw=st.binary(max_size=64),
        use_raw=st.booleans(),
        content_type=content_types,
        ce=st.dictionaries(
            st.sampled_from(["ce-specversion", "ce-id", "ce-source", "ce-type", "ce-time", "ce-subject", "ce-extra"]),
            header_text,
            max_size=6,
        ),
        authorised=st.booleans(),
    )
    def check(body, raw, use_raw, content_type, ce, authorised):  # type: ignore[no-untyped-def]
        headers = {"Content-Type": content_type, **ce}
        if authorised:
            headers["Authorization"] = f"Bearer {token}"
        content = raw if use_raw else json.dumps(body).encode()
        response = client.post("/v1/events", content=content, headers=headers)
        assert response.status_code < 500, response.text
        if response.status_code >= 400:
            assert response.headers["content-type"] == "application/problem+json"
            assert response.json()["status"] == response.status_code

    check()
    with httpx.Client(base_url=str(client.base_url)) as fresh:
        assert fresh.get("/healthz").status_code == 200
