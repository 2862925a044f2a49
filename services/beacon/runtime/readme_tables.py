"""Generated tables in README.md: the text between a pair of markers is the table, rewritten
by ``make schemas`` (the settings table, the topics table); a test fails when one drifts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


class MarkersMissing(ValueError):
    """The README has no place marked for a table."""


@dataclass(frozen=True)
class GeneratedTable:
    name: str  # as in the error: "the README lacks the <name> markers"
    begin: str
    end: str
    render: Callable[[], str]

    def spliced(self, readme: str, table: str | None = None) -> str:
        """``readme`` with the text between the markers replaced by ``table`` (default: a fresh one)."""
        start, end = readme.find(self.begin), readme.find(self.end)
        if start == -1 or end < start:
            raise MarkersMissing(f"the README lacks the {self.name} markers {self.begin!r} ... {self.end!r}")
        return readme[: start + len(self.begin)] + "\n" + (self.render() if table is None else table) + readme[end:]

    def write(self, path: Path) -> bool:
        """Regenerate the table in ``path``; True if the file changed."""
        before = path.read_text()
        after = self.spliced(before)
        if after != before:
            path.write_text(after)
        return after != before
