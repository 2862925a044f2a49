"""The production table store: docker-compose and Kubernetes run the correlator and
notifier with BEACON_TABLE_STORE=rocksdb:// (RocksDB through rocksdict), so the
installed packages must give Faust a working RocksDB store."""

from __future__ import annotations

from beacon.core.faust_app import make_faust_app
from beacon.core.settings import load_settings


def test_rocksdb_table_store_writes_and_reads_under_the_data_dir(tmp_path):
    settings = load_settings(data_dir=tmp_path, table_store="rocksdb://")
    app = make_faust_app("store-check", settings, web_port=1)
    table = app.Table("store-check-table", default=int, partitions=2)
    app.finalize()
    store = table.data
    assert type(store).__module__ == "faust.stores.rocksdb"
    db = store._db_for_partition(0)  # the per-partition RocksDB that Faust recovers into
    db[b"alert-1"] = b"raised"
    assert db[b"alert-1"] == b"raised"
    assert any((tmp_path / "store-check").rglob("*.sst")) or any((tmp_path / "store-check").rglob("CURRENT"))
