"""Bulk import / replay of historical events from JSONL or CSV.

Produces straight to the history topic (``beacon.events.history``) with kafka-python
(acks=all, idempotent): it is an operator tool with Kafka access, replaying years of
history is far faster without HTTP round trips and per-source rate limits, and
validation is the same contract and the same date window as the HTTP API
(``contract_errors``). Its own topic, not the live events topic: the correlator reads
history only when no live event is waiting (correlator/app.py), so an import of years
never delays a live page.

Resumable: lines are sent in chunks; after each chunk the producer is flushed
(every record acknowledged) and only then the checkpoint file records the last
line number written. ``--resume`` skips up to that line. A crash between flush and
checkpoint resends at most one chunk, which is harmless: duplicates are dropped
downstream by (source, id).
"""

from __future__ import annotations

import csv
import functools
import json
import os
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from beacon.core.events import EVENT_TYPES, event_to_json
from beacon.ingest.decisions import ContractRules, contract_errors

ENVELOPE_COLUMNS = ("specversion", "id", "source", "type", "time", "subject", "datacontenttype", "dataschema")
DATA_PREFIX = "data."


@dataclass
class ImportSummary:
    lines: int = 0
    accepted: int = 0
    rejected: int = 0
    skipped: int = 0  # already imported before --resume
    reasons: Counter[str] = field(default_factory=Counter)
    stopped_at_line: int = 0

    def render(self) -> str:
        out = [
            (
                f"lines read: {self.lines}  accepted: {self.accepted}  rejected: {self.rejected}"
                f"  skipped (resume): {self.skipped}"
            )
        ]
        for reason, count in self.reasons.most_common():
            out.append(f"  {count:7d}  {reason}")
        return "\n".join(out)


def csv_row_to_event(row: dict[str, str]) -> dict[str, Any]:
    """One CSV row -> a raw event: envelope columns by name, ``data.<field>`` columns
    into ``data``. Empty cells are omitted. A CSV cell is always text, so a cell of a field
    the contract declares an integer or a boolean is read as one when it is written as one
    (``14``, ``true``, ``false``); anything else stays text and the strict contract refuses it."""
    event: dict[str, Any] = {"specversion": "1.0"}
    data: dict[str, Any] = {}
    for column, value in row.items():
        if column is None or value is None or value == "":
            continue
        if column.startswith(DATA_PREFIX):
            data[column[len(DATA_PREFIX) :]] = value
        else:
            event[column] = value
    kinds = _data_field_kinds(event.get("type"))
    event["data"] = {name: _typed_cell(value, kinds.get(name)) for name, value in data.items()}
    return event


_INTEGER_CELL = re.compile(r"^-?[0-9]+$")


def _typed_cell(value: str, kind: str | None) -> Any:
    if kind == "integer" and _INTEGER_CELL.match(value):
        return int(value)
    if kind == "boolean" and value in ("true", "false"):
        return value == "true"
    return value


@functools.cache
def _data_field_kinds(event_type: Any) -> dict[str, str]:
    """Data field -> JSON Schema type ("integer", "boolean", ...) of one event type."""
    model = EVENT_TYPES.get(event_type) if isinstance(event_type, str) else None
    if model is None:
        return {}
    properties = model.model_json_schema().get("properties", {})
    return {name: prop["type"] for name, prop in properties.items() if isinstance(prop.get("type"), str)}


def read_lines(path: Path) -> Iterator[tuple[int, Any]]:
    """(1-based line/row number, decoded raw event or an Exception) for each record."""
    if path.suffix.lower() == ".csv":
        with open(path, newline="", encoding="utf-8") as f:
            for number, row in enumerate(csv.DictReader(f), start=1):
                yield number, csv_row_to_event(row)
        return
    with open(path, encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                yield number, json.loads(line)
            except (ValueError, RecursionError) as exc:
                yield number, exc


def count_lines(path: Path) -> int:
    with open(path, "rb") as f:
        total = sum(1 for _ in f)
    return total - 1 if path.suffix.lower() == ".csv" else total


def checkpoint_path(path: Path) -> Path:
    return path.with_name(path.name + ".checkpoint")


def read_checkpoint(path: Path) -> int:
    try:
        return int(json.loads(checkpoint_path(path).read_text())["last_line"])
    except FileNotFoundError:
        return 0


def write_checkpoint(path: Path, last_line: int) -> None:
    target = checkpoint_path(path)
    tmp = target.with_name(target.name + ".tmp")
    with open(tmp, "w") as f:
        json.dump({"file": str(path), "last_line": last_line}, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, target)


def run_import(
    path: Path,
    *,
    producer: Any,
    topic: str,
    dry_run: bool,
    rejects: Path | None,
    resume: bool,
    limit: int | None,
    chunk: int,
    rules: ContractRules,
    progress: Any = None,
) -> ImportSummary:
    """Validate every record; send the valid ones (unless dry run); write rejects with reasons."""
    summary = ImportSummary()
    start_after = read_checkpoint(path) if resume and not dry_run else 0
    rejects_file = open(rejects, "a" if resume else "w", encoding="utf-8") if rejects else None  # noqa: SIM115 - the handle outlives this call (a child process or a later close)
    pending: list[Any] = []
    last_line = start_after

    def drain() -> None:
        # flush() waits for every request; get() then raises if any record was not acknowledged,
        # so the checkpoint never moves past a record Kafka does not hold.
        producer.flush()
        for future in pending:
            future.get(timeout=0)
        pending.clear()

    now = datetime.now(UTC)
    try:
        for number, raw in read_lines(path):
            if limit is not None and summary.lines >= limit:
                break
            if progress is not None:
                progress.update(1)
            if number <= start_after:
                summary.skipped += 1
                continue
            summary.lines += 1
            if isinstance(raw, Exception):
                errors = [{"field": "/", "reason": f"not valid JSON: {raw or 'nested too deeply'}"}]
                event = None
            else:
                event, field_errors = contract_errors(raw, now, rules)
                errors = [{"field": e.field, "reason": e.reason} for e in field_errors]
            if event is None:
                summary.rejected += 1
                for error in errors:
                    summary.reasons[f"{error['field']}: {error['reason'][:80]}"] += 1
                if rejects_file:
                    rejects_file.write(
                        json.dumps(
                            {
                                "line": number,
                                "errors": errors,
                                "record": raw if not isinstance(raw, Exception) else None,
                            }
                        )
                        + "\n"
                    )
            else:
                summary.accepted += 1
                if not dry_run:
                    pending.append(
                        producer.send(
                            topic,
                            key=event.subject.encode(),
                            value=event_to_json(event),
                            headers=[("beacon-via", b"import")],
                        )
                    )
            last_line = number
            if not dry_run and len(pending) >= chunk:
                drain()
                if rejects_file:
                    rejects_file.flush()
                write_checkpoint(path, last_line)
        if not dry_run:
            drain()
            write_checkpoint(path, last_line)
    finally:
        if rejects_file:
            rejects_file.close()
    summary.stopped_at_line = last_line
    return summary
