"""Produce an event straight to Beacon's raw events topic with kafka-python.

For police and council systems that already speak Kafka. Beacon's validator checks
every record: valid ones join the HTTP events on ``beacon.events``; invalid ones go
to ``beacon.events.dlq`` with your original bytes and the reason.

    pip install kafka-python==3.0.12
    python examples/produce_kafka.py --bootstrap kafka-1:9092 [--file examples/reported.json]

Rules: the value is one CloudEvent as JSON (see schemas/README.md); the key is the
pseudonymous child reference (``subject``), so one child's events stay in order on
one partition; acks=all and an idempotent producer, so a retry never duplicates and
a success means Kafka holds it. Resending the same ``id`` from the same ``source``
is safe: Beacon drops duplicates.
"""

import argparse
import json
from pathlib import Path

from kafka import KafkaProducer

RAW_TOPIC = "beacon.events.raw"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--file", type=Path, default=Path(__file__).with_name("reported.json"))
    args = parser.parse_args()

    event = json.loads(args.file.read_text())
    producer = KafkaProducer(
        bootstrap_servers=args.bootstrap.split(","),
        acks="all",
        enable_idempotence=True,
        max_in_flight_requests_per_connection=1,
        key_serializer=str.encode,
        value_serializer=lambda value: json.dumps(value).encode(),
    )
    metadata = producer.send(RAW_TOPIC, key=event["subject"], value=event).get(timeout=30)
    producer.close()
    print(f"sent {event['id']} to {metadata.topic} partition {metadata.partition} offset {metadata.offset}")


if __name__ == "__main__":
    main()
