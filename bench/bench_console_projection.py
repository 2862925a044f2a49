"""How fast a console rebuilds its view from Kafka history, and how fast the dashboard query is.

Replays serialized records (as stored on the topics) through decode + projection.apply,
with 10% duplicates, and times the dashboard queries on the resulting view. National
volume is about 590 child missing incidents a day (shared/domain.md), so the default
20,000 incidents is about a month; --incidents 215000 is a year.

    PYTHONPATH=services .venv/bin/python bench/bench_console_projection.py [--incidents N] [--in-memory]

By default it folds the history into a read model file (console/read_model.py) as the
feed does, then restarts on it in a fresh process and prints that process's time to
ready (dashboard and the busiest timeline answered) and peak RSS; --in-memory measures
the old replay of everything into memory instead.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "services"))

from beacon.console.access import Principal, Role, ScopedView
from beacon.console.feed import CATCH_UP_COMMIT_RECORDS, decode
from beacon.console.projection import ViewState, apply, missing_now, open_alerts, timeline
from beacon.console.read_model import ReadModel
from beacon.core.alerts import AlertRecord, Severity, alert_id
from beacon.core.audit import AuditRecord
from beacon.core.events import build_event
from beacon.core.topics import ALERTS, AUDIT, EVENTS


def iso(ts: datetime) -> str:
    return ts.isoformat().replace("+00:00", "Z")


def history(incidents: int, seed: int = 1) -> list[tuple[str, bytes]]:
    rng = random.Random(seed)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    children = max(1, incidents // 6)  # children in care go missing about six times each
    records: list[tuple[str, bytes]] = []
    for n in range(incidents):
        child, episode = f"CH-{rng.randrange(children):07d}", f"EP-{n:08d}"
        start = t0 + timedelta(minutes=n * 2.4)
        src = "urn:beacon:source:police"
        records.append(
            (
                EVENTS,
                json.dumps(
                    build_event(
                        "beacon.episode.reported.v1",
                        child,
                        {
                            "episode_ref": episode,
                            "category": "missing",
                            "started_at": iso(start),
                            "risk": rng.choice(["low", "medium", "high"]),
                            "age_years": 14,
                            "looked_after": True,
                            "reporting_org": "met-police",
                            "placing_council": rng.choice(COUNCILS),
                        },
                        time=iso(start),
                        source=src,
                        event_id=f"r{n}",
                    )
                ).encode(),
            )
        )
        aid = alert_id(child, episode, "triage", "0h")
        alert = AlertRecord(
            alert_id=aid,
            status="raised",
            child_ref=child,
            episode_ref=episode,
            rule="triage",
            step="0h",
            severity=rng.choice(list(Severity)),
            reason="Child reported missing",
            occurred_at=start,
            emitted_at=start,
        )
        records.append((ALERTS, alert.to_json()))
        records.append(
            (
                AUDIT,
                AuditRecord(
                    audit_id=f"s{n}",
                    kind="notification_sent",
                    at=start,
                    alert_id=aid,
                    child_ref=child,
                    person="oncall-1",
                    channel="sms",
                    step=1,
                ).to_json(),
            )
        )
        if n < incidents - 300:  # all but the latest few hundred have been found
            end = start + timedelta(hours=rng.uniform(1, 40))
            records.append(
                (
                    EVENTS,
                    json.dumps(
                        build_event(
                            "beacon.episode.found.v1",
                            child,
                            {"episode_ref": episode, "outcome": "found", "ended_at": iso(end)},
                            time=iso(end),
                            source=src,
                            event_id=f"f{n}",
                        )
                    ).encode(),
                )
            )
            records.append((ALERTS, alert.model_copy(update={"status": "resolved", "occurred_at": end}).to_json()))
    records += rng.sample(records, len(records) // 10)  # at-least-once: 10% delivered twice
    return records


COUNCILS = ("southwark", "lambeth", "lewisham", "greenwich", "croydon", "bromley", "bexley", "kent", "essex", "surrey")


def rss_mib() -> float:
    """Peak resident memory of this process (VmHWM: ru_maxrss would carry the parent's over exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def replay_in_memory(incidents: int) -> None:
    """The console before the read model: every record folded into memory at each start."""
    records = history(incidents)
    state = ViewState()
    started = time.perf_counter()
    for topic, payload in records:
        apply(state, decode(topic, payload))
    replay_s = time.perf_counter() - started

    started = time.perf_counter()
    rounds = 20
    for _ in range(rounds):
        rows, alerts = missing_now(state), open_alerts(state)
    query_ms = (time.perf_counter() - started) / rounds * 1000
    # The same dashboard as one council's user sees it: every row and alert through the access check.
    principal = Principal("bench", frozenset({"southwark"}), Role.viewer)
    started = time.perf_counter()
    for _ in range(rounds):
        view = ScopedView(state, principal, datetime.now(UTC), timedelta(days=30))
        scoped_rows = view.only_visible(missing_now(state))
        scoped_alerts = view.only_visible(open_alerts(state))
    scoped_ms = (time.perf_counter() - started) / rounds * 1000
    busiest = max(state.children.values(), key=lambda c: len(c.entries)).child_ref
    started = time.perf_counter()
    entries = timeline(state, busiest)
    timeline_ms = (time.perf_counter() - started) * 1000

    print(f"incidents                 {incidents}")
    print(f"records replayed          {len(records)} ({state.duplicates} duplicates dropped)")
    print(f"replay (decode + apply)   {replay_s:.2f} s = {len(records) / replay_s:,.0f} records/s")
    print(
        f"a year of national volume {215_000 * len(records) / incidents / (len(records) / replay_s):.0f} s "
        f"to rebuild (extrapolated)"
    )
    print(f"dashboard query           {query_ms:.2f} ms ({len(rows)} missing now, {len(alerts)} open alerts)")
    print(
        f"dashboard, one council   {scoped_ms:.2f} ms with the access check "
        f"({len(scoped_rows)} missing now, {len(scoped_alerts)} open alerts visible)"
    )
    print(f"busiest timeline          {timeline_ms:.2f} ms ({len(entries)} entries)")
    print(f"peak memory (RSS)         {rss_mib():.0f} MiB")


def build_read_model(incidents: int, path: Path, batch: int) -> tuple[int, float]:
    """Fold the history into a read model file, committing every ``batch`` records as the feed does."""
    records = history(incidents)
    model = ReadModel(path)
    started = time.perf_counter()
    for n, (topic, payload) in enumerate(records, 1):
        apply(model.state, decode(topic, payload))
        if n % batch == 0 or n == len(records):
            model.commit({(topic, 0): n})
    build_s = time.perf_counter() - started
    model.close()
    return len(records), build_s


def restart(path: Path, busiest: str) -> None:
    """A console restarting on its read model: open, then serve the dashboard and a timeline."""
    started = time.perf_counter()
    model = ReadModel(path)
    rows, alerts = missing_now(model.state), open_alerts(model.state)
    entries = timeline(model.state, busiest)
    ready_s = time.perf_counter() - started
    ready_rss = rss_mib()
    started = time.perf_counter()
    month = model.episodes_started(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC))
    month_ms = (time.perf_counter() - started) * 1000
    print(
        f"restart: ready_s={ready_s:.3f} ready_rss_mib={ready_rss:.0f} missing_now={len(rows)} "
        f"open_alerts={len(alerts)} timeline_entries={len(entries)} month_episodes={len(month)} "
        f"month_query_ms={month_ms:.0f} rss_after_month_mib={rss_mib():.0f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--incidents", type=int, default=20_000)
    parser.add_argument("--in-memory", action="store_true", help="measure the old replay into memory only")
    parser.add_argument("--restart", type=Path, help=argparse.SUPPRESS)  # the child process of a run
    parser.add_argument("--busiest", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.in_memory:
        replay_in_memory(args.incidents)
        return
    if args.restart:
        restart(args.restart, args.busiest)
        return

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "read-model.sqlite3"
        replayed, build_s = build_read_model(args.incidents, path, batch=CATCH_UP_COMMIT_RECORDS)
        build_rss = rss_mib()
        busiest = f"CH-{0:07d}"
        child = subprocess.run(
            [sys.executable, __file__, "--restart", str(path), "--busiest", busiest],
            capture_output=True,
            text=True,
            check=True,
        )
        size_mib = sum(f.stat().st_size for f in Path(folder).iterdir()) / 2**20
        print(f"incidents                 {args.incidents}")
        print(f"records folded            {replayed} in {build_s:.1f} s (first start: {replayed / build_s:,.0f}/s)")
        print(f"first start peak RSS      {build_rss:.0f} MiB (this process: includes the generated history itself)")
        print(f"read model file           {size_mib:.0f} MiB")
        print(child.stdout.strip())


if __name__ == "__main__":
    main()
