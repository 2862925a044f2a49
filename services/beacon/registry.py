"""The service registry: which services Beacon has and the settings each reads. Only the CLI
(and the documentation it generates) imports it; neither floor (``beacon.core``,
``beacon.runtime``) knows its services."""

from __future__ import annotations

import importlib
from pathlib import Path

import yaml

from beacon.runtime.settings import ENV_PREFIX, Settings, SettingsError

# The services' own Settings subclasses (module:class), so a shared config file can be
# checked for keys that nobody reads (typos) without starting every service.
SERVICE_SETTINGS = (
    "beacon.ingest.settings:IngestSettings",
    "beacon.correlator.settings:CorrelatorSettings",
    "beacon.notifier.settings:NotifierSettings",
    "beacon.console.settings:ConsoleSettings",
)


def known_setting_names() -> set[str]:
    names = set(Settings.model_fields)
    for path in SERVICE_SETTINGS:
        module, cls = path.split(":")
        names |= set(getattr(importlib.import_module(module), cls).model_fields)
    return names


def unknown_config_file_keys(config_file: str) -> list[str]:
    try:
        raw = yaml.safe_load(Path(config_file).read_text()) or {}
    except yaml.YAMLError as exc:
        raise SettingsError(f"invalid settings:\n  {ENV_PREFIX}CONFIG_FILE: not valid YAML ({exc})") from None
    if not isinstance(raw, dict):
        raise SettingsError(f"invalid settings:\n  {ENV_PREFIX}CONFIG_FILE: the top level must be a mapping")
    return sorted(set(map(str, raw)) - known_setting_names())


def check_config_file(config_file: str | None) -> None:
    """Refuse (exit 2) a shared config file holding a key no service reads: a typo would
    otherwise be ignored by every service, each taking only its own keys."""
    if not config_file or not Path(config_file).is_file():
        return  # load_settings names a missing file
    unknown = unknown_config_file_keys(config_file)
    if unknown:
        lines = "\n".join(f"  {config_file}: {key}: not a Beacon setting" for key in unknown)
        raise SettingsError(f"invalid settings:\n{lines}")
