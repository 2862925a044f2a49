"""The ingest producer on the real broker: idempotence is granted, acks are awaited,
and a stopped broker is an error, never a silent success."""

from __future__ import annotations

import pytest

from beacon.core.topics import EVENTS
from beacon.ingest.settings import IngestSettings
from beacon.runtime.acked_producer import AckedProducer, KafkaUnavailable
from beacon.runtime.settings import load_settings
from harness.kafka import read_topic

pytestmark = pytest.mark.slow


# Stops its broker: only the embedded one is per test (the Kafka cluster serves the whole
# session); losing Kafka brokers is the three-node failover tests' job.
@pytest.mark.parametrize("broker", ["tansu"], indirect=True)
async def test_idempotent_acked_writes_and_kafka_down(settings, broker):
    ingest_settings = load_settings(
        IngestSettings,
        kafka_bootstrap_servers=settings.kafka_bootstrap_servers,
        kafka_single_record_batches=True,
        ingest_kafka_timeout_s=2,
    )
    producer = AckedProducer(ingest_settings, ingest_settings.ingest_kafka_timeout_s, "beacon-ingest")
    try:
        acked = await producer.write(EVENTS, [(b"CH-AAA-001", b'{"n": 1}', []), (b"CH-AAA-001", b'{"n": 2}', [])])
        assert [m.offset for m in acked] == [0, 1] and acked[0].partition == acked[1].partition
        # Tansu 0.6 grants a producer id, so retries inside the producer cannot duplicate.
        assert producer._get()._transaction_manager.producer_id_and_epoch.producer_id >= 0
        assert [r.value for r in read_topic(settings, EVENTS, expect=2)] == [b'{"n": 1}', b'{"n": 2}']

        first = producer._get()
        broker.stop()
        with pytest.raises(KafkaUnavailable):
            await producer.write(EVENTS, [(b"CH-AAA-001", b'{"n": 3}', [])])
        # Discarded: kafka-python's idempotent producer never recovers from an expired batch
        # (tests/ha/test_broker_failover.py): discarded, the next write makes a new one.
        assert producer._producer is None and first is not None
    finally:
        producer.close()
