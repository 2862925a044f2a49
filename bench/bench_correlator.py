"""Correlator throughput and replay, side by side on one embedded broker, in one run.

Pre-produces one synthetic national history (shared/domain.md volumes: ~590 child
incidents a day, children in care going missing ~6 times a year, ~9% with a CSE flag;
~5.4 events per incident) to the events topic, then measures over that same stream:

  (a) a raw aiokafka consumer (no processing),
  (b) a plain Faust agent that only counts (per-event iteration),
  (c) the correlator worker (``python -m beacon correlator``: batched, state table, alerts),
  (d) the pure engine in-process (no Kafka), then the same with the worker's decoding and
      state (de)serialisation around each event, and the serialised state per tracked child.

Default: 30 days of national history, so it finishes in a few minutes on 2 cores; the
5-year replay time is extrapolated from the measured rate (and says so). ``--days 1826``
replays the full ~5 M events.

    PYTHONPATH=services .venv/bin/python bench/bench_correlator.py [--days N]

``--compare-with DIR`` measures only the engine passes (d), for this checkout and for the
Beacon checkout at DIR (e.g. ``git archive main services | tar -x -C /tmp/base``), alternating in one run
over the same stream, and prints the ratio: a refactor must not make the engine slower.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# --compare-with runs the engine passes of another checkout in a child process.
sys.path.insert(0, os.environ.get("BEACON_BENCH_CODE") or str(ROOT / "services"))

from beacon.core.events import build_event
from beacon.core.policy import load_policy
from beacon.core.topics import EVENTS
from beacon.runtime import processes
from beacon.runtime.broker import EmbeddedBroker, free_port
from beacon.runtime.kafka import make_producer
from beacon.runtime.settings import load_settings
from beacon.runtime.topic_admin import ensure_topics

INCIDENTS_PER_DAY = 590
CHILDREN = 75_000
FIVE_YEARS_DAYS = 1826


def _iso(ts: datetime) -> str:
    return ts.isoformat().replace("+00:00", "Z")


def synthetic_history(days: int, seed: int = 7) -> list[dict[str, Any]]:
    """A national stream of ``days`` days, sorted by event time, ending a day ago."""
    rng = random.Random(seed)
    end = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
    begin = end - timedelta(days=days)
    # Children in care (a third of those who go missing) go missing ~3x as often.
    looked_after = [rng.random() < 0.35 for _ in range(CHILDREN)]
    weights = [3.0 if la else 1.0 for la in looked_after]
    events: list[dict[str, Any]] = []
    n = 0

    def add(kind: str, child: str, at: datetime, data: dict[str, Any], source: str) -> None:
        nonlocal n
        n += 1
        events.append(
            build_event(f"beacon.{kind}.v1", child, data, time=_iso(at), source=source, event_id=f"bench-{n:09d}")
        )

    incidents = INCIDENTS_PER_DAY * days
    chosen = rng.choices(range(CHILDREN), weights=weights, k=incidents)
    for i, index in enumerate(chosen):
        child = f"CH-{index:08X}"
        cared = looked_after[index]
        police, council = "urn:beacon:source:police", "urn:beacon:source:council"
        start = begin + timedelta(seconds=rng.uniform(0, days * 86400))
        episode = f"EP-{i:09d}"
        risk = rng.choices(["no_apparent_risk", "low", "medium", "high"], [20, 35, 35, 10])[0]
        if rng.random() < 0.09:
            level = rng.choice(["low", "medium", "high"])
            add(
                "cse.screened",
                child,
                start - timedelta(days=rng.uniform(1, 60)),
                {"level": level, "screened_at": _iso(start - timedelta(days=30))},
                council,
            )
        if rng.random() < 0.05:
            add(
                "allocation.changed",
                child,
                start - timedelta(days=rng.uniform(1, 30)),
                {"status": "unallocated", "effective_at": _iso(start - timedelta(days=2))},
                council,
            )
        reported = start + timedelta(minutes=rng.uniform(5, 240))
        add(
            "episode.reported",
            child,
            reported,
            {
                "episode_ref": episode,
                "category": rng.choice(["missing", "missing", "absent"]),
                "started_at": _iso(start),
                "risk": risk,
                "age_years": rng.randint(8, 17),
                "looked_after": cared,
                "reporting_org": "met-police",
                "placing_council": "southwark",
            },
            police,
        )
        hours = min(rng.expovariate(1 / 14), 24 * 10)  # 90% under 2 days
        ended = start + timedelta(hours=hours)
        if rng.random() < 0.5:
            at = reported + (ended - reported) * rng.random()
            add(
                "episode.risk_regraded",
                child,
                at,
                {"episode_ref": episode, "risk": rng.choice(["medium", "high"]), "regraded_at": _iso(at)},
                police,
            )
        if rng.random() < 0.5:
            at = reported + (ended - reported) * rng.random()
            add(
                "episode.sighting",
                child,
                at,
                {"episode_ref": episode, "kind": "sighting", "observed_at": _iso(at)},
                police,
            )
        found_at = max(ended, reported) + timedelta(minutes=10)
        add(
            "episode.found",
            child,
            found_at,
            {"episode_ref": episode, "outcome": "found", "ended_at": _iso(max(ended, start))},
            police,
        )
        add(
            "episode.safe_and_well_checked",
            child,
            found_at + timedelta(hours=2),
            {"episode_ref": episode, "checked_at": _iso(found_at + timedelta(hours=2))},
            police,
        )
        if rng.random() < 0.8:  # 42% within 72 h, the rest later
            at = found_at + timedelta(hours=rng.uniform(4, 72) if rng.random() < 0.42 else rng.uniform(72, 400))
            add(
                "return_interview.recorded",
                child,
                at,
                {"episode_ref": episode, "status": "completed", "recorded_at": _iso(at)},
                council,
            )
    events.sort(key=lambda e: e["time"])
    return events


def for_the_doors(events: list[dict[str, Any]], now: datetime | None = None) -> list[dict[str, Any]]:
    """The same history as the doors (HTTP ingest, ``python -m beacon import``) accept it:
    ids and child references in the deployment's default patterns (no run of four letters,
    which ``bench`` and some hex references have), and nothing dated in the future."""
    now = now or datetime.now(UTC)
    cutoff = _iso(now - timedelta(minutes=1))
    accepted = []
    for event in events:
        if event["time"] > cutoff or any(
            isinstance(v, str) and v.endswith("Z") and v > cutoff for v in event["data"].values()
        ):
            continue
        child = f"CH-{int(event['subject'][3:], 16):08d}"
        accepted.append({**event, "id": event["id"].replace("bench-", "b-"), "subject": child})
    return accepted


def produce_history(settings: Any, payloads: list[tuple[bytes, bytes]]) -> float:
    # Multi-record batches for speed: the events topic is only fetched, never end-offset
    # checked by a table recovery, so Tansu's ListOffsets defect does not apply to it.
    producer = make_producer(settings, batch_size=256 * 1024, linger_ms=20)
    started = time.perf_counter()
    for key, value in payloads:
        producer.send(EVENTS, key=key, value=value)
    producer.flush()
    producer.close()
    return time.perf_counter() - started


async def raw_consume(bootstrap: str, total: int) -> float:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        EVENTS, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False, group_id=None
    )
    await consumer.start()
    try:
        seen, started = 0, None
        while seen < total:
            batches = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            for records in batches.values():
                started = started or time.perf_counter()
                seen += len(records)
        return time.perf_counter() - (started or time.perf_counter())
    finally:
        await consumer.stop()


COUNTER_APP = """
import sys, time, faust
total, out = int(sys.argv[1]), sys.argv[2]
app = faust.App("bench-counter", broker="kafka://" + sys.argv[3], store="memory://", web_enabled=False,
                consumer_auto_offset_reset="earliest", topic_partitions=int(sys.argv[4]),
                broker_session_timeout=10, broker_heartbeat_interval=1, broker_rebalance_timeout=10)
topic = app.topic("{topic}", key_serializer="raw", value_serializer="raw")
state = {{"n": 0, "t0": None}}

@app.agent(topic)
async def count(stream):
    async for _ in stream:
        state["t0"] = state["t0"] or time.perf_counter()
        state["n"] += 1
        if state["n"] == total:
            open(out, "w").write(str(time.perf_counter() - state["t0"]))

if __name__ == "__main__":
    sys.argv = [sys.argv[0], "worker", "-l", "warn"]
    app.main()
"""


def faust_count(bootstrap: str, total: int, partitions: int, workdir: Path) -> float:
    script, out = workdir / "counter.py", workdir / "counter.out"
    script.write_text(COUNTER_APP.format(topic=EVENTS))
    argv = [sys.executable, script, str(total), str(out), bootstrap, str(partitions)]
    proc = processes.start(argv, log_file=workdir / "counter.log", cwd=workdir)
    try:
        while not out.exists():
            if proc.poll() is not None:
                raise RuntimeError("the Faust counter exited early:\n" + (workdir / "counter.log").read_text()[-3000:])
            time.sleep(0.2)
        time.sleep(0.1)
        return float(out.read_text())
    finally:
        processes.stop(proc, sig=signal.SIGKILL)  # its numbers are taken: no need to wait for a clean exit


def _processed(port: int) -> float:
    import httpx

    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
    except httpx.HTTPError:
        return 0.0
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("beacon_correlator_events_total{")
    )


def correlator_run(settings: Any, total: int, workdir: Path, single_record_batches: bool, table_store: str) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BEACON_")}
    env.update(
        PYTHONPATH=str(ROOT / "services"),
        BEACON_KAFKA_BOOTSTRAP_SERVERS=settings.kafka_bootstrap_servers,
        BEACON_KAFKA_SINGLE_RECORD_BATCHES=str(single_record_batches).lower(),
        BEACON_DATA_DIR=str(workdir / "data"),
        BEACON_TABLE_STORE=table_store,
        BEACON_CORRELATOR_PORT=str(free_port()),
        BEACON_LOG_LEVEL="WARNING",
    )
    port = int(env["BEACON_CORRELATOR_PORT"])
    proc = processes.start([sys.executable, "-m", "beacon", "correlator"], env, workdir / "correlator.log")
    try:
        started: float | None = None
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"correlator exited; see {workdir / 'correlator.log'}")
            done = _processed(port)
            if done and started is None:
                started, first = time.perf_counter(), done
            if done >= total:
                # The first poll already saw ``first`` events: scale to the measured span.
                return (time.perf_counter() - started) * total / max(total - first, 1)  # type: ignore[operator]
            time.sleep(0.25)
    finally:
        processes.stop(proc, sig=signal.SIGKILL)  # its numbers are taken: no need to wait for a clean exit


def engine_pass(
    payloads: list[tuple[bytes, bytes]], chunk: int = 100_000, clock: Any = time.perf_counter
) -> tuple[float, list[int]]:
    """The engine alone: events parsed a chunk at a time (five years of parsed events
    would not fit in memory), only ``apply_event`` timed (by ``clock``)."""
    from beacon.core.events import event_from_json
    from beacon.correlator.engine import apply_event
    from beacon.correlator.state import ChildState

    policy = load_policy(ROOT / "deploy" / "policies" / "default.yaml")
    states: dict[str, ChildState] = {}
    now = datetime.now(UTC)
    elapsed = 0.0
    for begin in range(0, len(payloads), chunk):
        parsed = [event_from_json(value) for _, value in payloads[begin : begin + chunk]]
        started = clock()
        for event in parsed:
            states[event.subject], _ = apply_event(
                states.get(event.subject) or ChildState(), event, now, policy, copy=False
            )
        elapsed += clock() - started
    return elapsed, sorted(len(s.to_bytes()) for s in states.values())


def worker_path_pass(payloads: list[tuple[bytes, bytes]], clock: Any = time.perf_counter) -> float:
    """The worker's per-event CPU without Kafka or Faust: event bytes -> validated event,
    state loaded from and saved to JSON around each event (the worker does it once per
    child per batch, so this is the pessimistic bound)."""
    from beacon.core.events import event_from_json
    from beacon.correlator.engine import apply_event
    from beacon.correlator.state import ChildState

    policy = load_policy(ROOT / "deploy" / "policies" / "default.yaml")
    stored: dict[bytes, bytes] = {}
    now = datetime.now(UTC)
    started = clock()
    for key, value in payloads:
        state, _ = apply_event(ChildState.from_bytes(stored.get(key)), event_from_json(value), now, policy, copy=False)
        stored[key] = state.to_bytes()
    return clock() - started


def engine_rates(payloads: list[tuple[bytes, bytes]]) -> dict[str, float]:
    """Events per second of CPU time (process time, not wall time: on cores shared with
    other work, wall time measures the neighbours as much as the code)."""
    engine_s, _ = engine_pass(payloads, clock=time.process_time)
    worker_path_s = worker_path_pass(payloads, clock=time.process_time)
    return {"engine": len(payloads) / engine_s, "worker_path": len(payloads) / worker_path_s}


def compare(payloads: list[tuple[bytes, bytes]], other: Path, rounds: int) -> None:
    """The engine passes of this checkout and of ``other``, alternating, each in a fresh
    process over the same stream: best of ``rounds`` each (the least disturbed by the
    other processes sharing the cores)."""
    with tempfile.TemporaryDirectory() as tmp:
        stream = Path(tmp) / "stream.json"
        stream.write_text(json.dumps([[k.decode(), v.decode()] for k, v in payloads]))
        checkouts = {"this checkout": ROOT / "services", f"{other}": other / "services"}
        best: dict[str, dict[str, float]] = {name: {} for name in checkouts}
        for round_ in range(rounds):
            for name, code in checkouts.items():
                env = {**os.environ, "BEACON_BENCH_CODE": str(code)}
                out = subprocess.run(
                    [sys.executable, __file__, "--engine-rates", str(stream)],
                    env=env,
                    check=True,
                    capture_output=True,
                    text=True,
                ).stdout
                rates = json.loads(out.strip().splitlines()[-1])
                print(
                    f"  round {round_ + 1} {name:>30}: engine {rates['engine']:>9,.0f} ev/CPU-s, "
                    f"decode + load + engine + save {rates['worker_path']:>9,.0f} ev/CPU-s",
                    flush=True,
                )
                for key, rate in rates.items():
                    best[name][key] = max(best[name].get(key, 0.0), rate)
    new, old = best["this checkout"], best[f"{other}"]
    print(f"\nbest of {rounds} (ev/CPU-s)                  this checkout   {other}   ratio")
    for key, label in (("engine", "engine only"), ("worker_path", "decode + load + engine + save")):
        print(f"  {label:36} {new[key]:>12,.0f} {old[key]:>12,.0f} {new[key] / old[key]:>7.3f}x")
    print(
        f"correlator-compare: engine_ratio={new['engine'] / old['engine']:.3f} "
        f"worker_path_ratio={new['worker_path'] / old['worker_path']:.3f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=30, help="days of national history (1826 = 5 years)")
    parser.add_argument(
        "--single-record-batches",
        action="store_true",
        help="correlator writes one record per batch (the Tansu workaround used in tests)",
    )
    parser.add_argument(
        "--table-store", default="memory://", choices=["memory://", "rocksdb://"], help="the correlator's table store"
    )
    parser.add_argument(
        "--compare-with",
        type=Path,
        metavar="DIR",
        help="only the engine passes, this checkout against the Beacon checkout at DIR, and their ratio",
    )
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds for --compare-with")
    parser.add_argument("--engine-rates", type=Path, help=argparse.SUPPRESS)  # the child of --compare-with
    args = parser.parse_args()

    if args.engine_rates:
        payloads = [(k.encode(), v.encode()) for k, v in json.loads(args.engine_rates.read_text())]
        print(json.dumps(engine_rates(payloads)))
        return

    print(f"synthetic national history: {args.days} days ...", flush=True)
    events = synthetic_history(args.days)
    payloads = [(e["subject"].encode(), json.dumps(e).encode()) for e in events]
    del events  # only the serialised stream is kept: five years of dicts take gigabytes
    total = len(payloads)
    children = len({key for key, _ in payloads})
    print(f"  {total:,} events, {children:,} children, {total / args.days:,.0f} events/day")
    if args.compare_with:
        compare(payloads, args.compare_with.resolve(), args.rounds)
        return

    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker(log_file=Path(tmp) / "broker.log") as broker:
        workdir = Path(tmp)
        settings = load_settings(kafka_bootstrap_servers=broker.bootstrap, kafka_single_record_batches=False)
        ensure_topics(settings)
        produced = produce_history(settings, payloads)
        print(f"  produced in {produced:.1f} s ({total / produced:,.0f} ev/s, kafka-python)")

        raw = asyncio.run(raw_consume(broker.bootstrap, total))
        counted = faust_count(broker.bootstrap, total, settings.topic_partitions, workdir)
        correlated = correlator_run(settings, total, workdir, args.single_record_batches, args.table_store)

    engine_s, sizes = engine_pass(payloads)
    worker_path_s = worker_path_pass(payloads)
    rates = {
        "raw aiokafka consumer": total / raw,
        "plain Faust agent (count only)": total / counted,
        "correlator worker": total / correlated,
        "engine only (in-process, no Kafka)": total / engine_s,
        "decode + load + engine + save (no Kafka)": total / worker_path_s,
    }
    print("\nthroughput over the same stream (1 worker, 2 shared cores):")
    for name, rate in rates.items():
        print(f"  {name:40} {rate:>10,.0f} ev/s")
    print(
        f"  correlator / plain Faust agent           {rates['correlator worker'] / rates['plain Faust agent (count only)']:>10.2f}x"
    )
    print(
        f"  correlator / raw consumer                {rates['correlator worker'] / rates['raw aiokafka consumer']:>10.3f}x"
    )

    five_years = INCIDENTS_PER_DAY * FIVE_YEARS_DAYS * (total / (INCIDENTS_PER_DAY * args.days))
    print(f"\nreplay of {args.days} days: {correlated:.1f} s by the correlator worker")
    print(
        f"  5 years (~{five_years / 1e6:.1f} M events) at this rate: {five_years / rates['correlator worker'] / 60:.1f} min"
        + ("" if args.days >= FIVE_YEARS_DAYS else " (extrapolated; run --days 1826 to measure)")
    )

    print(f"\nserialised state (MessagePack) per tracked child ({len(sizes):,} children):")
    print(
        f"  mean {statistics.fmean(sizes):.0f} B, p50 {sizes[len(sizes) // 2]} B, "
        f"p99 {sizes[int(len(sizes) * 0.99)]} B, max {sizes[-1]} B"
    )


if __name__ == "__main__":
    main()
