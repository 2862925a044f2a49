"""The ingest API's OpenAPI document, rendered for ``schemas/openapi.json``.

Rendered with default settings so the checked-in file does not depend on the
environment; a test fails if it drifts from the service.
"""

from __future__ import annotations

import json

from beacon.runtime.settings import PROJECT_ROOT

OPENAPI_FILE = PROJECT_ROOT / "schemas" / "openapi.json"


def render_openapi() -> str:
    from beacon.ingest.app import create_app
    from beacon.ingest.settings import IngestSettings

    settings = IngestSettings.model_construct()  # defaults only, whatever BEACON_* says
    # Not sort_keys: the order of request content types matters to some tools (see app.py).
    return json.dumps(create_app(settings).openapi(), indent=2) + "\n"
