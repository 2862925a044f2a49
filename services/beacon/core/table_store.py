"""Read and write a Faust table's local store by partition, from outside a Faust event.

Faust's table API (``table[key] = value``) takes the partition of a write from the
current stream event, and its RocksDB store asserts there is one (``_set``: ``assert
event is not None``). A batch agent or a timer has no current event, so it names the
partition itself, through this class: the one place that knows how each store
(``memory://``, ``rocksdb://``) takes a keyed write for a given partition.

The caller writes the changelog itself (see ``correlator/app.py``) and reports each
acknowledged changelog offset with :meth:`PartitionedStore.mark_persisted`, as Faust's
own changelog callback does: a RocksDB store keeps that offset with its data, so a
restart on the same data directory recovers only the changelog's tail.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from faust.stores.rocksdb import Store as RocksDBStore
from faust.types import TP


class PartitionedStore:
    """Raw ``bytes`` keys and values (a table made with ``key_type=bytes, value_type=bytes``)."""

    def __init__(self, table: Any):
        self.table = table

    @property
    def _rocksdb(self) -> RocksDBStore | None:
        store = self.table.data
        return store if isinstance(store, RocksDBStore) else None

    def get(self, key: bytes, partition: int) -> bytes | None:
        rocksdb = self._rocksdb
        if rocksdb is None:
            value: bytes | None = self.table.data.get(key)
            return value
        found: bytes | None = rocksdb._db_for_partition(partition).get(key)
        return found

    def put(self, key: bytes, value: bytes, partition: int) -> None:
        rocksdb = self._rocksdb
        if rocksdb is None:
            self.table.data[key] = value
            return
        rocksdb._db_for_partition(partition).put(key, value)
        rocksdb._key_index[key] = partition  # Faust's own lookups then go straight to this partition

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        """Every key of this worker's active partitions."""
        for key, value in self.table.data.items():
            yield (key if isinstance(key, bytes) else str(key).encode()), value

    def mark_persisted(self, changelog_partition: TP | Any, offset: int) -> None:
        """The changelog holds every write up to ``offset`` of this partition."""
        self.table.data.set_persisted_offset(changelog_partition, offset)
