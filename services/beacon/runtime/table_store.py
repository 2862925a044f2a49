"""Read and write a Faust table's local store by partition, from outside a Faust event.

Faust's table API (``table[key] = value``) takes the partition of a write from the
current stream event, and its RocksDB store asserts there is one (``_set``: ``assert
event is not None``). A batch agent or a timer has no current event, so it names the
partition itself, through this class: the one place that knows how each store
(``memory://``, ``rocksdb://``) takes a keyed write for a given partition.

The caller writes the changelog itself (see ``correlator/app.py``). A write is *staged*
(readable at once) and reaches the local store only when the caller reports its
changelog record acknowledged (:meth:`PartitionedStore.acknowledged`), together with the
changelog offset the partition then holds, as Faust's own changelog callback does. So a
RocksDB store never holds a state the changelog lacks (a worker killed before the ack
would otherwise keep, on its disk only, a state that a fresh pod could never recover),
and a restart on the same data directory recovers only the changelog's tail.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from faust.stores.rocksdb import Store as RocksDBStore


class PartitionedStore:
    """Raw ``bytes`` keys and values (a table made with ``key_type=bytes, value_type=bytes``)."""

    def __init__(self, table: Any):
        self.table = table
        # Written, changelog record not yet acknowledged: key -> (value, partition).
        self._staged: dict[bytes, tuple[bytes, int]] = {}

    @property
    def _rocksdb(self) -> RocksDBStore | None:
        store = self.table.data
        return store if isinstance(store, RocksDBStore) else None

    def get(self, key: bytes, partition: int) -> bytes | None:
        staged = self._staged.get(key)
        if staged is not None:
            return staged[0]
        rocksdb = self._rocksdb
        if rocksdb is None:
            value: bytes | None = self.table.data.get(key)
            return value
        found: bytes | None = rocksdb._db_for_partition(partition).get(key)
        return found

    def put(self, key: bytes, value: bytes, partition: int) -> None:
        """Stage a write: read back at once, stored once its changelog record is acknowledged."""
        self._staged[key] = (value, partition)

    def acknowledged(self, writes: Iterable[tuple[bytes, bytes, int]], changelog_partition: Any, offset: int) -> None:
        """The changelog holds ``writes`` and everything of this partition up to ``offset``."""
        rocksdb = self._rocksdb
        for key, value, partition in writes:
            if rocksdb is None:
                self.table.data[key] = value
            else:
                rocksdb._db_for_partition(partition).put(key, value)
                rocksdb._key_index[key] = partition  # Faust's own lookups then go straight to this partition
            staged = self._staged.get(key)
            if staged is not None and staged[0] is value:  # not superseded by a later write meanwhile
                del self._staged[key]
        self.table.data.set_persisted_offset(changelog_partition, offset)

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        """Every key of this worker's active partitions (staged writes included)."""
        for key, value in self.table.data.items():
            key = key if isinstance(key, bytes) else str(key).encode()
            if key not in self._staged:
                yield key, value
        for key, (value, _) in list(self._staged.items()):
            yield key, value
