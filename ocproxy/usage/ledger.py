"""The usage ledger: one SQLite row per ``/v1/messages`` request.

Requests never touch the database: :meth:`Ledger.record` puts the row on a
bounded queue and returns; one writer thread, owned by the app and joined
by :meth:`Ledger.close`, writes rows in batches. WAL mode lets the workers
of a WSGI host (one ledger each) write one file. A database that cannot be
opened or written logs one warning and the rows are dropped; requests are
never failed or slowed by it.
"""

from __future__ import annotations

import logging
import os
import queue
import sqlite3
import threading
import time

from ocproxy.usage.record import COLUMNS, QuotaWindow, UsageRow

log = logging.getLogger("ocproxy.usage")

#: Rows waiting for the writer; past this the newest are dropped (with a warning).
QUEUE_ROWS = 10_000
#: Rows written per transaction at most.
BATCH_ROWS = 500
#: How long the writer lets rows gather after the first one before it
#: writes them: one transaction (and one wake-up) per burst rather than per
#: request, which cost ~7 % of a busy proxy's time (bench/README.md).
GATHER_SECONDS = 0.2
#: How long a writer waits for another process's write lock.
BUSY_TIMEOUT_MS = 5000
PURGE_EVERY_S = 3600.0

#: Schema versions in order; a database at version n runs the scripts after n.
MIGRATIONS = (
    """
    CREATE TABLE requests (
        id INTEGER PRIMARY KEY,
        ts REAL NOT NULL,
        request_id TEXT NOT NULL,
        client TEXT NOT NULL,
        session TEXT NOT NULL,
        requested_model TEXT NOT NULL,
        model TEXT NOT NULL,
        provider TEXT NOT NULL,
        endpoint TEXT NOT NULL,
        attempts TEXT NOT NULL,
        outcome TEXT NOT NULL,
        status INTEGER NOT NULL,
        streaming INTEGER NOT NULL,
        input_tokens INTEGER NOT NULL,
        output_tokens INTEGER NOT NULL,
        cache_read_tokens INTEGER NOT NULL,
        cache_write_tokens INTEGER NOT NULL,
        ttfb_ms REAL,
        duration_ms REAL NOT NULL,
        cost_usd REAL
    );
    CREATE INDEX requests_ts ON requests (ts);
    CREATE INDEX requests_session ON requests (session, ts);
    CREATE TABLE quota (
        window TEXT PRIMARY KEY,
        percent REAL NOT NULL,
        resets_at REAL,
        exhausted INTEGER NOT NULL,
        updated REAL NOT NULL
    );
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)

#: The writer connection's page cache (KiB).
WRITER_CACHE_KIB = 256

_INSERT = f"INSERT INTO requests ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
_STOP = object()


def connect(path: str, readonly: bool = False) -> sqlite3.Connection:
    """A connection to the ledger at ``path``; read-only ones never create it."""
    if readonly:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_MS / 1000)
    else:
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
    conn.row_factory = sqlite3.Row
    return conn


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the schema to :data:`SCHEMA_VERSION`; returns the version found.
    One exclusive transaction, so two workers starting together migrate once."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        found = conn.execute("PRAGMA user_version").fetchone()[0]
        if found > SCHEMA_VERSION:
            raise sqlite3.DatabaseError(f"ledger schema {found} is newer than this ocproxy ({SCHEMA_VERSION})")
        for script in MIGRATIONS[found:]:
            for statement in filter(str.strip, script.split(";")):
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return found


class Ledger:
    """Rows in, written by one thread. ``path`` None or ``enabled`` False
    makes every call a no-op."""

    def __init__(self, path: str | None, retention_days: int = 90, enabled: bool = True):
        self.path = path if enabled else None  # None once closed: rows are dropped
        self._file = self.path  # the database the writer thread opens; never changes
        self.retention_s = max(retention_days, 1) * 86400.0
        self._queue: queue.Queue = queue.Queue(QUEUE_ROWS)
        #: Lock ``_warn_lock`` guards ``_warned``: one warning per kind of trouble until it clears.
        self._warn_lock = threading.Lock()
        self._warned: set[str] = set()
        #: Lock ``_thread_lock`` guards ``_thread`` and ``_pid``.
        self._thread_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = 0
        if self.path is None:
            return
        try:
            self._open().close()
        except (sqlite3.Error, OSError) as exc:
            log.warning("usage ledger disabled: cannot open %s: %s", self._file, exc)
            self.path = None

    def _writer(self) -> threading.Thread | None:
        """The writer thread, started on first use in this process: a WSGI
        host that forks workers after loading the app gets one per worker."""
        with self._thread_lock:
            if self.path is None:
                return None
            if self._thread is None or self._pid != os.getpid():
                self._pid = os.getpid()
                self._queue = queue.Queue(QUEUE_ROWS)  # a queue inherited over fork may hold a held lock
                self._thread = threading.Thread(target=self._run, args=(self._queue,), name="ocproxy-ledger",
                                                daemon=True)
                self._thread.start()
            return self._thread

    def _open(self) -> sqlite3.Connection:
        directory = os.path.dirname(self._file)
        if directory:
            os.makedirs(directory, mode=0o700, exist_ok=True)
        conn = connect(self._file)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            # The writer appends and purges, touching a few pages per batch;
            # sqlite's default 2 MB page cache just filled up as the file grew.
            conn.execute(f"PRAGMA cache_size=-{WRITER_CACHE_KIB}")
            migrate(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    @property
    def enabled(self) -> bool:
        return self.path is not None

    def record(self, row: UsageRow | list[QuotaWindow]) -> None:
        """Queue a request's row (or the latest quota windows) for writing; never blocks."""
        if self._writer() is None:
            return
        try:
            self._queue.put_nowait(row)
        except queue.Full:
            self._warn("full", "usage ledger queue full: dropping rows until the writer catches up")

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every queued row was written (or dropped); for tests and shutdown."""
        deadline = time.monotonic() + timeout
        while self._thread is not None and self._queue.unfinished_tasks:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued, stop the writer thread and join it."""
        with self._thread_lock:
            thread, self._thread = self._thread, None
            self.path = None  # rows recorded after close are dropped
        if thread is None or self._pid != os.getpid():
            return
        self._queue.put(_STOP)
        thread.join(timeout)

    def _warn(self, kind: str, message: str, *args) -> None:
        with self._warn_lock:
            if kind in self._warned:
                return
            self._warned.add(kind)
        log.warning(message, *args)

    def _cleared(self, kind: str) -> None:
        if kind in self._warned:
            with self._warn_lock:
                self._warned.discard(kind)

    # -- the writer thread ------------------------------------------------

    def _run(self, rows_in: queue.Queue) -> None:
        try:
            conn = self._open()
        except (sqlite3.Error, OSError) as exc:
            self._warn("write", "usage ledger cannot open %s: %s", self._file, exc)
            conn = None
        next_purge = 0.0
        try:
            while True:
                waited = rows_in.empty()
                first = rows_in.get()  # sleeps until there is work: no idle wake-ups
                if waited and first is not _STOP:
                    time.sleep(GATHER_SECONDS)
                batch = [first]
                while len(batch) < BATCH_ROWS:
                    try:
                        batch.append(rows_in.get_nowait())
                    except queue.Empty:
                        break
                stop = any(item is _STOP for item in batch)
                rows = [item for item in batch if isinstance(item, UsageRow)]
                windows = [w for item in batch if isinstance(item, list) for w in item]
                if conn is None:
                    pass  # could not open: rows are dropped, the warning was given
                elif rows or windows:
                    self._write(conn, rows, windows)
                if conn is not None and time.monotonic() >= next_purge:
                    self._purge(conn)
                    next_purge = time.monotonic() + PURGE_EVERY_S
                for _ in batch:
                    rows_in.task_done()
                if stop:
                    return
        finally:
            if conn is not None:
                conn.close()

    def _write(self, conn: sqlite3.Connection, rows: list[UsageRow], windows: list[QuotaWindow]) -> None:
        try:
            with conn:
                conn.execute("BEGIN")
                conn.executemany(_INSERT, [row.values() for row in rows])
                conn.executemany(
                    "INSERT OR REPLACE INTO quota (window, percent, resets_at, exhausted, updated) VALUES (?, ?, ?, ?, ?)",
                    [(w.window, w.percent, w.resets_at, int(w.exhausted), time.time()) for w in windows])
            self._cleared("write")
            self._cleared("full")
        except sqlite3.Error as exc:
            self._warn("write", "usage ledger cannot write %s (%d rows dropped): %s", self._file, len(rows), exc)

    def _purge(self, conn: sqlite3.Connection) -> None:
        try:
            with conn:
                conn.execute("BEGIN")
                conn.execute("DELETE FROM requests WHERE ts < ?", (time.time() - self.retention_s,))
        except sqlite3.Error as exc:
            self._warn("purge", "usage ledger cannot delete old rows in %s: %s", self._file, exc)
