"""Reading a YAML configuration file (policy, on-call) into a pydantic model, with
errors that name the file, the key and the reason."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


def load_yaml_model(
    path: Path,
    model: type[M],
    what: str,
    error: type[SystemExit],
    prepare: Callable[[dict[str, Any]], None] | None = None,
) -> M:
    """``what`` names the file in messages (e.g. "policy file"); ``error`` is raised
    with the message; ``prepare`` may adjust the raw mapping before validation."""
    try:
        raw = yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise error(f"{what} {path}: cannot read it ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise error(f"{what} {path}: not valid YAML ({exc})") from None
    if not isinstance(raw, dict):
        raise error(f"{what} {path}: the top level must be a mapping")
    if prepare is not None:
        prepare(raw)
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        reasons = "\n".join(
            f"  {'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg']}" for err in exc.errors()
        )
        raise error(f"{what} {path} is invalid:\n{reasons}") from None
