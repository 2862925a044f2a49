"""The README's settings table is generated from the settings models: it lists every
setting with its variable, type, default and meaning, and cannot drift from them."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from beacon import settings_doc
from beacon.runtime.settings import SettingsError, load_settings

README = settings_doc.README.read_text()


def _documented() -> dict[str, list[str]]:
    """Variable -> its row's cells, as a reader of README.md sees them."""
    block = README[README.index(settings_doc.BEGIN) : README.index(settings_doc.END)]
    rows = {}
    for line in block.splitlines():
        if match := re.match(r"^\| `(BEACON_\w+)` \| (.*) \|$", line):
            rows[match.group(1)] = [cell.strip() for cell in re.split(r"(?<!\\)\|", match.group(2))]
    return rows


def test_the_readme_table_is_the_one_generated_from_the_models():
    assert settings_doc.with_table(README, settings_doc.settings_table()) == README, (
        "README.md's settings table drifted from the settings models: run `make schemas` and commit README.md"
    )


def test_every_setting_of_every_service_is_in_the_table_with_a_meaning():
    documented = _documented()
    for cls in settings_doc.settings_classes():
        for name, field in cls.model_fields.items():
            variable = f"BEACON_{name.upper()}"
            assert variable in documented, f"{cls.__name__}.{name} is not in README.md"
            assert field.description, f"{cls.__name__}.{name} has no description"
            kind, default, accepted_by, meaning = documented[variable]
            assert kind and default and accepted_by and meaning


@pytest.mark.parametrize(
    "variable",
    sorted(v for v, row in _documented().items() if row[0].startswith(("integer", "number", "boolean", "one of"))),
)
def test_each_documented_variable_is_the_one_the_service_reads(variable, monkeypatch):
    """An operator who sets a documented variable to nonsense is told so by that name."""
    monkeypatch.setenv(variable, "not-a-valid-value")
    accepting = [c for c in settings_doc.settings_classes() if variable[len("BEACON_") :].lower() in c.model_fields]
    with pytest.raises(SettingsError) as refused:
        load_settings(accepting[-1])
    assert variable in str(refused.value)


def test_a_setting_without_a_description_stops_the_generator(monkeypatch):
    from beacon.correlator.settings import CorrelatorSettings

    field = CorrelatorSettings.model_fields["correlator_tick_interval_s"]
    monkeypatch.setattr(field, "description", None)
    with pytest.raises(settings_doc.DescriptionMissing, match="correlator_tick_interval_s"):
        settings_doc.settings_table()


def test_the_regenerate_command_refuses_a_readme_without_the_markers(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# Title\n\nno table here\n")
    command = [sys.executable, "-m", "beacon", "settings", "doc", "--write", "--readme", str(readme)]
    refused = subprocess.run(command, check=False, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and "settings markers" in refused.stderr
    assert readme.read_text() == "# Title\n\nno table here\n"


def test_the_regenerate_command_rewrites_a_stale_table_and_keeps_the_prose(tmp_path):
    stale = tmp_path / "README.md"
    stale.write_text(
        f"# Title\n\nprose before\n\n{settings_doc.BEGIN}\n| old | table |\n{settings_doc.END}\n\nprose after\n"
    )
    command = [sys.executable, "-m", "beacon", "settings", "doc", "--write", "--readme", str(stale)]
    first = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True)
    assert "regenerated" in first.stdout
    text = stale.read_text()
    assert text.startswith("# Title\n\nprose before\n\n") and text.endswith(f"{settings_doc.END}\n\nprose after\n")
    assert "| old | table |" not in text and "`BEACON_SMTP_STARTTLS`" in text
    second = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True)
    assert "up to date" in second.stdout and stale.read_text() == text
