"""The console's persistent read model: the projection's state in an SQLite file per instance.

Replaying every topic into memory at each start made a console's memory and start-up
grow with years of history. Here the fold (``projection.apply``, reading episodes through
``core/domain.py`` as before) works on a ``StoredViewState``: each child and each alert is
one row, loaded on demand and kept in a bounded cache; what is open now (the dashboard's
indexes) stays in memory, bounded by what is open.

Exactly once into the file: after each batch the feed calls ``commit(offsets)``, which
writes the rows the batch changed, the dedup keys it saw and the next offset of every
partition in one SQLite transaction. A restart (or a crash at any point) resumes from the
committed offsets, so no record is folded twice into the file and none is skipped; the
topics stay the system of record (delete the file and the console rebuilds from them).

The file belongs to one console instance (an exclusive lock is taken); a second instance
pointed at the same file, or an instance whose file's offsets lie beyond the broker's log
(another cluster, a recreated topic), falls back to a fresh model rebuilt from the topics.

Rows are projection objects: a child (plain dataclasses) as msgspec MessagePack decoded into
its typed ChildView (several times faster than pickle, which dominated the first build), an
alert (it holds the pydantic records it was folded from) pickled. The file is private to the
process that writes it (mode 0600 in the console's data folder) and never read from anywhere else.
"""

from __future__ import annotations

import fcntl
import os
import pickle
import sqlite3
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, MutableMapping, MutableSet
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Generic, TypeVar

import msgspec

from beacon.console.access import episode_organisations
from beacon.console.projection import AlertView, ChildView, Episode, ViewState
from beacon.runtime.logs import get_logger

log = get_logger("console")

IN_MEMORY = ":memory:"
# Bump when the projection's classes change shape: an older file is then rebuilt from the topics.
SCHEMA_VERSION = 5
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS offsets (topic TEXT NOT NULL, partition INTEGER NOT NULL, next_offset INTEGER NOT NULL,
    PRIMARY KEY (topic, partition));
CREATE TABLE IF NOT EXISTS children (child_ref TEXT PRIMARY KEY, body BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS alerts (alert_id TEXT PRIMARY KEY, body BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS seen (record_key TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS episodes (
    child_ref TEXT NOT NULL, episode_ref TEXT NOT NULL,
    started_at TEXT, ended_at TEXT, interview_status TEXT, interview_at TEXT, category TEXT, placing_council TEXT,
    organisations TEXT NOT NULL,   -- '|'-joined, with a leading and a trailing '|', for LIKE '%|org|%'
    PRIMARY KEY (child_ref, episode_ref));
CREATE INDEX IF NOT EXISTS episodes_by_start ON episodes (started_at);
CREATE INDEX IF NOT EXISTS episodes_by_end_awaiting_interview ON episodes (ended_at)
    WHERE interview_status IS NULL OR interview_status = 'offered';
"""

V = TypeVar("V")
_CHILD_ENCODER = msgspec.msgpack.Encoder()
_CHILD_DECODER = msgspec.msgpack.Decoder(ChildView)


def _pickle(value: Any) -> bytes:
    return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


def _encode_child(child: ChildView) -> bytes:
    """MessagePack, tagged ``m``; ``p`` + pickle for the rare child msgspec cannot encode (it
    writes times in UTC: year 1 with a positive offset, or 9999 with a negative one, overflow)."""
    try:
        return b"m" + _CHILD_ENCODER.encode(child)
    except (OverflowError, ValueError):
        return b"p" + _pickle(child)


def _decode_child(body: bytes) -> ChildView:
    if body[:1] == b"m":
        return _CHILD_DECODER.decode(body[1:])
    value: ChildView = pickle.loads(body[1:])
    return value


class _StoredMap(MutableMapping[str, V], Generic[V]):
    """Rows of one table as a mapping: changed values wait in ``dirty`` until the commit;
    clean ones are cached, least recently used leave first."""

    def __init__(
        self,
        db: sqlite3.Connection,
        table: str,
        key_column: str,
        cache_entries: int,
        encode: Callable[[V], bytes],
        decode: Callable[[bytes], V],
    ):
        self._db, self._table, self._key = db, table, key_column
        self._encode, self._decode = encode, decode
        self._cache: OrderedDict[str, V] = OrderedDict()
        self._cache_entries = cache_entries
        self.dirty: dict[str, V] = {}

    def _load(self, key: str) -> V | None:
        if key in self.dirty:
            return self.dirty[key]
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        row = self._db.execute(f"SELECT body FROM {self._table} WHERE {self._key} = ?", (key,)).fetchone()
        if row is None:
            return None
        value: V = self._decode(row[0])  # our own private file (module docstring)
        self._remember(key, value)
        return value

    def _remember(self, key: str, value: V) -> None:
        self._cache[key] = value
        self._cache.move_to_end(key)
        while len(self._cache) > self._cache_entries:
            self._cache.popitem(last=False)

    def __getitem__(self, key: str) -> V:
        value = self._load(key)
        if value is None:
            raise KeyError(key)
        return value

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self._load(key) is not None

    def __setitem__(self, key: str, value: V) -> None:
        self.dirty[key] = value

    def mark_changed(self, key: str) -> V:
        value = self[key]
        self.dirty[key] = value
        self._cache.pop(key, None)
        return value

    def __delitem__(self, key: str) -> None:
        raise TypeError("the read model never forgets a row (the topics' retention does)")

    def __iter__(self) -> Iterator[str]:
        stored = (row[0] for row in self._db.execute(f"SELECT {self._key} FROM {self._table}"))
        yield from self.dirty
        yield from (key for key in stored if key not in self.dirty)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def write_dirty(self) -> list[tuple[str, V]]:
        written = list(self.dirty.items())
        self._db.executemany(
            f"INSERT OR REPLACE INTO {self._table} ({self._key}, body) VALUES (?, ?)",
            [(key, self._encode(value)) for key, value in written],
        )
        return written

    def committed(self) -> None:
        for key, value in self.dirty.items():
            self._remember(key, value)
        self.dirty.clear()

    def cached(self) -> int:
        return len(self._cache)


class _StoredSet(MutableSet[tuple[str, ...]]):
    """The dedup keys of every record folded in: on disk, plus those of the batch not committed yet."""

    def __init__(self, db: sqlite3.Connection):
        self._db = db
        self.pending: set[str] = set()

    @staticmethod
    def _key(item: object) -> str:
        return "\x1f".join(item) if isinstance(item, tuple) else str(item)

    def __contains__(self, item: object) -> bool:
        key = self._key(item)
        return key in self.pending or (
            self._db.execute("SELECT 1 FROM seen WHERE record_key = ?", (key,)).fetchone() is not None
        )

    def add(self, item: tuple[str, ...]) -> None:
        self.pending.add(self._key(item))

    def discard(self, item: tuple[str, ...]) -> None:
        raise TypeError("a record once folded in stays seen")

    def __iter__(self) -> Iterator[tuple[str, ...]]:
        for (key,) in self._db.execute("SELECT record_key FROM seen"):
            yield tuple(key.split("\x1f"))

    def __len__(self) -> int:
        stored: int = self._db.execute("SELECT count(*) FROM seen").fetchone()[0]
        return stored + len(self.pending)

    def write_pending(self) -> None:
        self._db.executemany("INSERT OR IGNORE INTO seen (record_key) VALUES (?)", [(k,) for k in self.pending])

    def committed(self) -> None:
        self.pending.clear()


class StoredViewState(ViewState):
    """A ViewState whose children, alerts and dedup keys live in the read model's file."""

    def __init__(self, db: sqlite3.Connection, cache_entries: int):
        super().__init__()
        self.stored_children: _StoredMap[ChildView] = _StoredMap(
            db, "children", "child_ref", cache_entries, _encode_child, _decode_child
        )
        self.stored_alerts: _StoredMap[AlertView] = _StoredMap(
            db, "alerts", "alert_id", cache_entries, _pickle, pickle.loads
        )
        self.stored_seen = _StoredSet(db)
        self.children = self.stored_children
        self.alerts = self.stored_alerts
        self.seen = self.stored_seen

    # The fold changes children and alerts only through these two (projection.py).
    def child(self, child_ref: str) -> ChildView:
        if child_ref not in self.children:
            self.children[child_ref] = ChildView(child_ref)
        return self.stored_children.mark_changed(child_ref)

    def alert(self, alert_id: str) -> AlertView:
        if alert_id not in self.alerts:
            self.alerts[alert_id] = AlertView(alert_id)
        return self.stored_alerts.mark_changed(alert_id)


@dataclass(frozen=True)
class EpisodeRow:
    """One episode as the reports and the returns-due page read it (no free text): built from
    the episodes table's columns, so ``episode`` carries the effective start and end (after
    corrections) as its reported/found times, the current category, the placing council and
    the latest interview; not its risk history or reporting force."""

    child_ref: str
    episode: Episode
    organisations: frozenset[str]


def _iso(ts: datetime | None) -> str | None:
    """UTC ISO text, so that text order is time order in SQL."""
    if ts is None:
        return None
    try:
        return ts.astimezone(UTC).isoformat()
    except (OverflowError, ValueError):  # year 1 or 9999 with an offset: keep its own (see app._local_time)
        return ts.isoformat()


class ReadModel:
    """Owns the SQLite file and the StoredViewState on it. Interface used by the feed and pages:

    * ``state``: the ViewState the fold and the page queries read (projection.py).
    * ``offsets() -> {(topic, partition): next offset}``: where to resume.
    * ``commit(offsets)``: the batch's rows, dedup keys and offsets, in one transaction.
    * ``reset()``: forget everything (the feed then replays the topics from their start).
    * ``episodes_started(start, end, organisations=None)`` and
      ``returns_awaiting_interview(ended_after, organisations=None)``: EpisodeRow lists
      from the episodes table; ``organisations`` restricts to episodes involving one of
      them (None: every organisation).
    """

    def __init__(self, path: Path | str = IN_MEMORY, cache_entries: int = 10_000):
        self.path = str(path)
        self.cache_entries = cache_entries
        self._lock_file: IO[bytes] | None = None
        if self.path != IN_MEMORY and not self._lock(Path(self.path)):
            log.warning("console_read_model_in_use", file=self.path, fallback="in-memory, rebuilt from the topics")
            self.path = IN_MEMORY
        self.db = self._open()
        self.state = self._load_state()

    def _lock(self, path: Path) -> bool:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock_file = open(f"{path}.lock", "ab")  # noqa: SIM115 - held for the life of the process
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock_file.close()
            return False
        self._lock_file = lock_file
        return True

    def _open(self) -> sqlite3.Connection:
        if self.path != IN_MEMORY and not os.path.exists(self.path):
            os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: a commit survives a process crash
        db.executescript(_SCHEMA)
        version = db.execute("SELECT value FROM meta WHERE name = 'schema'").fetchone()
        if version is not None and int(version[0]) != SCHEMA_VERSION:
            log.warning("console_read_model_rebuilt", reason="schema_changed", file=self.path)
            self._drop(db)
        db.execute("INSERT OR REPLACE INTO meta (name, value) VALUES ('schema', ?)", (SCHEMA_VERSION,))
        return db

    @staticmethod
    def _drop(db: sqlite3.Connection) -> None:
        db.execute("BEGIN")
        for table in ("offsets", "children", "alerts", "seen", "episodes"):
            db.execute(f"DELETE FROM {table}")
        db.execute("DELETE FROM meta WHERE name != 'schema'")
        db.execute("COMMIT")

    def _load_state(self) -> StoredViewState:
        state = StoredViewState(self.db, self.cache_entries)
        row = self.db.execute("SELECT value FROM meta WHERE name = 'view'").fetchone()
        if row is not None:
            view = pickle.loads(row[0])  # our own private file
            state.open_episodes, state.open_alert_ids = view["open_episodes"], view["open_alert_ids"]
            state.version, state.duplicates = view["version"], view["duplicates"]
        return state

    def reset(self) -> None:
        self._drop(self.db)
        self.state = self._load_state()

    def offsets(self) -> dict[tuple[str, int], int]:
        return {(t, p): o for t, p, o in self.db.execute("SELECT topic, partition, next_offset FROM offsets")}

    def commit(self, offsets: dict[tuple[str, int], int]) -> None:
        state = self.state
        db = self.db
        db.execute("BEGIN")
        try:
            state.stored_children.write_dirty()
            db.executemany(
                "INSERT OR REPLACE INTO episodes (child_ref, episode_ref, started_at, ended_at, interview_status,"
                " interview_at, category, placing_council, organisations) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        child.child_ref,
                        episode.episode_ref,
                        _iso(episode.started_at),
                        _iso(episode.ended_at),
                        episode.interview_status,
                        _iso(episode.interview_at),
                        episode.current_category,
                        episode.placing_council,
                        "|" + "|".join(sorted(episode_organisations(child, episode))) + "|",
                    )
                    for child in state.stored_children.dirty.values()
                    for episode in child.episodes.values()
                ],
            )
            state.stored_alerts.write_dirty()
            state.stored_seen.write_pending()
            db.executemany(
                "INSERT OR REPLACE INTO offsets (topic, partition, next_offset) VALUES (?, ?, ?)",
                [(t, p, o) for (t, p), o in offsets.items()],
            )
            view = {
                "open_episodes": state.open_episodes,
                "open_alert_ids": state.open_alert_ids,
                "version": state.version,
                "duplicates": state.duplicates,
            }
            db.execute("INSERT OR REPLACE INTO meta (name, value) VALUES ('view', ?)", (pickle.dumps(view),))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        state.stored_children.committed()
        state.stored_alerts.committed()
        state.stored_seen.committed()

    # ---------------------------------------------------------------- queries for the pages

    def _rows(self, sql: str, params: Iterable[Any], organisations: frozenset[str] | None) -> list[EpisodeRow]:
        if organisations is not None:
            if not organisations:
                return []
            sql += " AND (" + " OR ".join("organisations LIKE ? ESCAPE '\\'" for _ in organisations) + ")"
            params = [*params, *(f"%|{_like_escape(org)}|%" for org in sorted(organisations))]
        return [
            EpisodeRow(
                child_ref,
                Episode(
                    episode_ref,
                    category=category,
                    reported_started_at=_parse(started),
                    found_ended_at=_parse(ended),
                    interview_status=interview_status,
                    interview_at=_parse(interview_at),
                    placing_council=placing_council,
                ),
                frozenset(org for org in organisations.split("|") if org),
            )
            for child_ref, episode_ref, started, ended, interview_status, interview_at, category, placing_council, organisations in self.db.execute(
                sql.replace("SELECT child_ref, episode_ref FROM", f"SELECT {_EPISODE_COLUMNS} FROM"), list(params)
            )
        ]

    def episodes_started(
        self, start: datetime, end: datetime, organisations: frozenset[str] | None = None
    ) -> list[EpisodeRow]:
        """Episodes that started in [start, end) (committed rows; the feed commits every batch)."""
        return self._rows(
            "SELECT child_ref, episode_ref FROM episodes WHERE started_at >= ? AND started_at < ?",
            (_iso(start), _iso(end)),
            organisations,
        )

    def returns_awaiting_interview(
        self, ended_after: datetime, organisations: frozenset[str] | None = None
    ) -> list[EpisodeRow]:
        """Episodes ended after ``ended_after`` with no interview held, declined or decided against."""
        return self._rows(
            "SELECT child_ref, episode_ref FROM episodes WHERE ended_at >= ?"
            " AND (interview_status IS NULL OR interview_status = 'offered')",
            (_iso(ended_after),),
            organisations,
        )

    def close(self) -> None:
        self.db.close()
        if self._lock_file is not None:
            self._lock_file.close()


_EPISODE_COLUMNS = (
    "child_ref, episode_ref, started_at, ended_at, interview_status, interview_at, category, placing_council,"
    " organisations"
)


def _parse(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text is not None else None


def _like_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
