"""The suite's Apache Kafka clusters (harness/kafka_cluster.py): a one-node KRaft cluster
answers and carries records; the three-node one is shaped like production (replication
factor 3, min.insync.replicas 2) for the failover tests."""

from __future__ import annotations

import pytest
from kafka import KafkaConsumer, TopicPartition
from kafka.admin import NewTopic

from beacon.runtime.kafka import make_producer
from beacon.runtime.settings import load_settings

pytestmark = [pytest.mark.slow, pytest.mark.kafka]


def test_one_node_cluster_stores_and_serves_records(kafka_cluster):
    kafka_cluster.reset()
    admin = kafka_cluster.admin()
    try:
        admin.create_topics([NewTopic("harness.probe", num_partitions=2, replication_factor=1)])
    finally:
        admin.close()
    producer = make_producer(load_settings(kafka_bootstrap_servers=kafka_cluster.bootstrap))
    try:
        acks = [producer.send("harness.probe", key=b"k", value=b"%d" % i) for i in range(5)]
        producer.flush()
        offsets = [ack.get(timeout=30).offset for ack in acks]
    finally:
        producer.close()
    assert offsets == [0, 1, 2, 3, 4]

    consumer = KafkaConsumer(bootstrap_servers=kafka_cluster.bootstrap, enable_auto_commit=False)
    try:
        partition = TopicPartition("harness.probe", next(iter(consumer.partitions_for_topic("harness.probe"))))
        ends = consumer.end_offsets([TopicPartition("harness.probe", p) for p in (0, 1)])
    finally:
        consumer.close()
    assert sorted(ends.values()) == [0, 5] and partition.topic == "harness.probe"

    kafka_cluster.reset()  # what every Kafka test starts from: no topic, no group left behind
    admin = kafka_cluster.admin()
    try:
        assert [t for t in admin.list_topics() if not t.startswith("__")] == []
        assert admin.list_groups() == []
    finally:
        admin.close()
