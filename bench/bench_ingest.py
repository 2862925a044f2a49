"""Benchmark of POST /v1/events: events/s and p50/p99 request latency.

Starts an embedded broker and the ingest service as a real process, creates an API
key, then drives it with httpx (async) at a given concurrency, with single events
and with batches. Latency is until the 202, i.e. until Kafka acknowledged (acks=all).

    .venv/bin/python bench/bench_ingest.py                     # default run, well under 2 minutes
    .venv/bin/python bench/bench_ingest.py --requests 5000 --concurrency 32 --batch-size 500
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "services"))
sys.path.insert(0, str(REPO / "tests"))

from beacon.core.schemas import example_event
from beacon.runtime.broker import EmbeddedBroker, free_port
from beacon.runtime.settings import load_settings
from beacon.runtime.topic_admin import ensure_topics
from harness.services import ServiceProcess, service_env


def event(n: int) -> dict:
    e = example_event("beacon.episode.sighting.v1")
    e.update(id=f"bch-{n:08d}", subject=f"CH-BCH-{n % 997:04d}")
    return e


async def drive(base_url: str, token: str, requests: int, concurrency: int, batch: int) -> tuple[float, list[float]]:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    bodies = [
        json.dumps(event(r) if batch == 1 else [event(r * batch + i) for i in range(batch)]).encode()
        for r in range(requests)
    ]
    latencies: list[float] = []
    next_index = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, timeout=60, limits=limits) as client:

        async def worker() -> None:
            nonlocal next_index
            while next_index < len(bodies):
                body = bodies[next_index]
                next_index += 1
                started = time.perf_counter()
                r = await client.post("/v1/events", content=body, headers=headers)
                latencies.append(time.perf_counter() - started)
                if r.status_code != 202:
                    raise SystemExit(f"unexpected {r.status_code}: {r.text[:300]}")

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - started, latencies


def report(label: str, elapsed: float, latencies: list[float], events: int) -> None:
    q = statistics.quantiles(latencies, n=100)
    print(
        f"{label:34} {events / elapsed:9.0f} events/s  {len(latencies) / elapsed:7.0f} req/s  "
        f"p50 {q[49] * 1000:7.1f} ms  p99 {q[98] * 1000:7.1f} ms  ({events} events in {elapsed:.1f} s)",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000, help="single-event requests")
    parser.add_argument("--batch-requests", type=int, default=100, help="batch requests")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker(log_file=Path(tmp) / "broker.log") as broker:
        port = free_port()
        settings = load_settings(kafka_bootstrap_servers=broker.bootstrap, kafka_single_record_batches=True)
        ensure_topics(settings)
        env = service_env(
            kafka_bootstrap_servers=broker.bootstrap,
            kafka_single_record_batches=True,
            data_dir=Path(tmp) / "data",
            ingest_port=port,
            log_level="WARNING",
            ingest_rate_per_s=1e9,
            ingest_rate_burst=10**9,
            ingest_max_batch_events=max(500, args.batch_size),
        )
        token = subprocess.run(
            [sys.executable, "-m", "beacon", "apikeys", "create", "--source", "met-police", "--scope", "police"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            cwd=REPO,
        ).stdout.strip()
        with ServiceProcess("ingest", env, Path(tmp) / "ingest.log", port=port):
            base = f"http://127.0.0.1:{port}"
            print(
                f"ingest benchmark: embedded Tansu broker, single-record batches, acks=all, idempotent producer, "
                f"{os.cpu_count()} CPUs, concurrency {args.concurrency}",
                flush=True,
            )
            asyncio.run(drive(base, token, 50, 4, 1))  # warm-up: connections, metadata
            elapsed, lat = asyncio.run(drive(base, token, args.requests, args.concurrency, 1))
            report("single events", elapsed, lat, args.requests)
            elapsed, lat = asyncio.run(drive(base, token, args.batch_requests, args.concurrency, args.batch_size))
            report(f"batches of {args.batch_size}", elapsed, lat, args.batch_requests * args.batch_size)


if __name__ == "__main__":
    main()
