"""Cost of one consumer-progress export (committed offsets + end offsets from the broker)
for a worker holding N partitions, on the embedded broker. Prints milliseconds per read.

    PYTHONPATH=services .venv/bin/python bench/bench_consumer_progress.py [--partitions 4 16 64] [--reads 50]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

from beacon.runtime.broker import EmbeddedBroker
from beacon.runtime.faust_app import ConsumerProgressReader
from beacon.runtime.kafka import make_producer
from beacon.runtime.settings import load_settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--partitions", type=int, nargs="+", default=[4, 16, 64])
    parser.add_argument("--reads", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker(log_file=Path(tmp) / "broker.log") as broker:
        settings = load_settings(kafka_bootstrap_servers=broker.bootstrap, kafka_single_record_batches=True)
        admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
        print(f"{'partitions':>10} {'reads':>6} {'median ms':>10} {'p95 ms':>8}")
        for count in args.partitions:
            topic, group = f"bench.progress.{count}", f"bench-progress-{count}"
            admin.create_topics([NewTopic(topic, num_partitions=count, replication_factor=1)])
            producer = make_producer(settings)
            for n in range(count * 10):
                producer.send(topic, key=str(n).encode(), value=b"x")
            producer.flush()
            producer.close()
            tps = [TopicPartition(topic, p) for p in range(count)]
            consumer = KafkaConsumer(
                bootstrap_servers=settings.bootstrap_servers, group_id=group, enable_auto_commit=False
            )
            consumer.assign(tps)
            consumer.poll(timeout_ms=2000)
            consumer.commit()
            consumer.close()
            reader = ConsumerProgressReader(settings.bootstrap_servers, group)
            reader.read([(topic, p) for p in range(count)])  # connect outside the timing
            samples = []
            for _ in range(args.reads):
                start = time.perf_counter()
                progress = reader.read([(topic, p) for p in range(count)])
                samples.append((time.perf_counter() - start) * 1000)
            assert len(progress) == count
            reader.close()
            samples.sort()
            p95 = samples[int(len(samples) * 0.95) - 1]
            print(f"{count:>10} {args.reads:>6} {statistics.median(samples):>10.2f} {p95:>8.2f}")
        admin.close()


if __name__ == "__main__":
    main()
