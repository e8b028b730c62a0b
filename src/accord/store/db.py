"""Engine setup and transactions for SQLite (WAL) and PostgreSQL (psycopg 3).

Statements are SQLAlchemy Core constructs compiled once per backend (see ``statements``);
hot paths run the compiled SQL on the pooled DBAPI connection, which skips SQLAlchemy's
per-call execution overhead while keeping one schema and one statement source.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect

from accord.domain.errors import InvalidInput

SQLITE_BUSY_TIMEOUT_MS = 30_000
# SQLite checkpoints run on a background thread (see ``Checkpointer``); a commit checkpoints by itself only when
# the WAL grows past this many pages (64 MiB) because the thread fell behind or is not running
SQLITE_WAL_BACKSTOP_PAGES = 16_384
CHECKPOINT_INTERVAL_S = 0.05
INTEGRITY_ERRORS: tuple[type[Exception], ...] = (sqlite3.IntegrityError, psycopg.IntegrityError)


@dataclass(frozen=True, slots=True)
class Compiled:
    sql: str
    names: tuple[str, ...]

    def bind(self, params: Mapping[str, Any]) -> tuple[Any, ...]:
        return tuple(params[n] for n in self.names)


def backend_of(url: str) -> str:
    name = sa.engine.make_url(url).get_backend_name()
    if name not in ("sqlite", "postgresql"):
        raise InvalidInput(f"unsupported database {name!r}: use sqlite:/// or postgresql+psycopg://")
    return name


def normalise_url(url: str) -> str:
    """Accept ``postgresql://`` and ``postgres://`` and use psycopg 3 for them."""
    u = sa.engine.make_url(url)
    if u.get_backend_name() in ("postgresql", "postgres") and u.drivername in ("postgresql", "postgres"):
        u = u.set(drivername="postgresql+psycopg")
    return u.render_as_string(hide_password=False)


class Tx:
    """One open transaction on a DBAPI connection."""

    __slots__ = ("_after", "_undo", "backend", "cur", "raw")

    def __init__(self, raw: Any, backend: str, cur: Any = None) -> None:
        self.raw = raw
        self.cur = raw.cursor() if cur is None else cur
        self.backend = backend
        self._after: list[Callable[[], None]] | None = None
        self._undo: list[Callable[[], None]] | None = None

    def after_commit(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` once this transaction has committed; never when it rolls back (or is read-only)."""
        if self._after is None:
            self._after = []
        self._after.append(fn)

    def on_rollback(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` if this write transaction rolls back: e.g. drop a cache filled from what it wrote."""
        if self._undo is None:
            self._undo = []
        self._undo.append(fn)

    def _committed(self) -> None:
        fns, self._after, self._undo = self._after, None, None
        for fn in fns or ():
            fn()

    def _rolled_back(self) -> None:
        fns, self._after, self._undo = self._undo, None, None
        for fn in fns or ():
            fn()

    def run(self, c: Compiled, params: Sequence[Any] = ()) -> Any:
        self.cur.execute(c.sql, params)
        return self.cur

    @contextmanager
    def pipelined(self) -> Iterator[None]:
        """PostgreSQL: send the writes inside as one pipeline (one round trip); SQLite: nothing to do."""
        if self.backend != "postgresql":
            yield
            return
        with self.raw.driver_connection.pipeline():
            yield

    def many(self, c: Compiled, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self.cur.executemany(c.sql, rows)

    def many_counted(self, c: Compiled, rows: Sequence[Sequence[Any]]) -> Any:
        """``many`` on a cursor of its own, returned: its ``rowcount`` (rows changed, summed over ``rows``) is
        read once the statement has run (PostgreSQL: after the pipeline it was sent in)."""
        cur = self.raw.cursor()
        cur.executemany(c.sql, rows)
        return cur

    def all(self, c: Compiled, params: Sequence[Any] = ()) -> list[Any]:
        self.cur.execute(c.sql, params)
        return list(self.cur.fetchall())

    def one(self, c: Compiled, params: Sequence[Any] = ()) -> Any:
        self.cur.execute(c.sql, params)
        return self.cur.fetchone()


class Database:
    """Owns the engine. No global state: create one per process (or per test)."""

    def __init__(self, url: str, *, pool_size: int = 8, echo: bool = False) -> None:
        self.url = normalise_url(url)
        self.backend = backend_of(self.url)
        if self.backend == "sqlite":
            # transactions always end in commit or rollback here, so the pool need not reset connections
            self.engine = sa.create_engine(
                self.url, echo=echo, pool_size=pool_size, max_overflow=8, pool_reset_on_return=None
            )
            event.listen(self.engine, "connect", _sqlite_on_connect)
            event.listen(self.engine, "begin", _sqlite_on_begin)
            self.dialect: Dialect = sqlite.dialect(paramstyle="qmark")
        else:
            self.engine = sa.create_engine(self.url, echo=echo, pool_size=pool_size, max_overflow=8, pool_pre_ping=True)
            self.dialect = postgresql.psycopg.dialect(paramstyle="format")  # type: ignore[no-untyped-call]
        self._lookup_engine: sa.Engine | None = None
        self._local = threading.local()
        self._held: list[Any] = []  # SQLite connections held by threads (closed on dispose)
        self._checkpointer: Checkpointer | None = None
        self._lock = threading.Lock()

    def compile(self, stmt: sa.ClauseElement, suffix: str = "") -> Compiled:
        """Compile a statement whose parameters are all ``bindparam``s without values (hot-path statements)."""
        c = stmt.compile(dialect=self.dialect)
        names = tuple(getattr(c, "positiontup", None) or ())
        binds: dict[str, Any] = getattr(c, "binds", {})
        fixed = [n for n in names if binds[n].value is not None]
        if fixed:
            raise ValueError(f"statement has literal parameters {fixed}; use literal_column or bindparam")
        return Compiled(c.string + suffix, names)

    def _sqlite_conn(self) -> Any:
        """SQLite: each thread keeps one connection for the hot path (no pool checkout per transaction)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._new_sqlite_conn()
            self._local.conn = conn
            self._local.cur = conn.cursor()  # the cursor its write transactions use, one at a time
            with self._lock:
                self._held.append(conn)
        return conn

    def tx(self) -> AbstractContextManager[Tx]:
        """A write transaction: whole or nothing. SQLite takes the write lock up front (BEGIN IMMEDIATE)."""
        if self.backend == "sqlite":
            return _SqliteWriteTx(self)
        return self._pg_tx()

    def _committed_sqlite(self) -> None:
        ckpt = self._checkpointer
        if ckpt is None:
            ckpt = self._start_checkpointer()
        ckpt.commits += 1

    @contextmanager
    def _pg_tx(self) -> Iterator[Tx]:
        raw = self.engine.raw_connection()
        try:
            tx = Tx(raw, self.backend)
            try:
                yield tx
                raw.commit()
            except BaseException as exc:
                if isinstance(exc, psycopg.OperationalError):
                    raw.invalidate()  # the connection is gone; the pool opens a new one next time
                else:
                    raw.rollback()
                tx._rolled_back()
                raise
        finally:
            raw.close()
        tx._committed()

    @contextmanager
    def read(self) -> Iterator[Tx]:
        """A read-only transaction with a consistent snapshot."""
        if self.backend == "sqlite":
            conn = self._sqlite_conn()
            if not conn.in_transaction:
                tx = Tx(conn, self.backend)
                tx.cur.execute("BEGIN")
                try:
                    yield tx
                finally:
                    conn.rollback()
                return
        raw = self.engine.raw_connection()
        try:
            tx = Tx(raw, self.backend)
            if self.backend == "sqlite":
                tx.cur.execute("BEGIN")
            try:
                yield tx
            finally:
                raw.rollback()
        finally:
            raw.close()

    @contextmanager
    def lookup(self) -> Iterator[Tx]:
        """Point reads that need no snapshot across statements (e.g. one ATS value). PostgreSQL: an autocommit
        connection, so a lookup is one round trip instead of three; SQLite: the same as ``read``."""
        if self.backend == "sqlite":
            with self.read() as tx:
                yield tx
            return
        raw = self._autocommit_engine().raw_connection()
        try:
            yield Tx(raw, self.backend)
        finally:
            raw.close()

    def _autocommit_engine(self) -> sa.Engine:
        eng = self._lookup_engine
        if eng is None:
            with self._lock:
                if self._lookup_engine is None:
                    self._lookup_engine = sa.create_engine(
                        self.url, pool_size=4, max_overflow=8, pool_reset_on_return=None, isolation_level="AUTOCOMMIT"
                    )
                eng = self._lookup_engine
        return eng

    def _start_checkpointer(self) -> Checkpointer:
        with self._lock:
            if self._checkpointer is None:
                self._checkpointer = Checkpointer(self._new_sqlite_conn)
            return self._checkpointer

    def _new_sqlite_conn(self) -> Any:
        cargs, cparams = self.engine.dialect.create_connect_args(self.engine.url)
        connect: Any = sqlite3.connect
        conn = connect(*cargs, **{**cparams, "check_same_thread": False})
        _sqlite_on_connect(conn, None)
        return conn

    def dispose(self) -> None:
        with self._lock:
            ckpt, self._checkpointer = self._checkpointer, None
        if ckpt is not None:
            ckpt.stop()
        with self._lock:
            held, self._held = self._held, []
        for conn in held:
            conn.close()
        self._local = threading.local()
        if self._lookup_engine is not None:
            self._lookup_engine.dispose()
            self._lookup_engine = None
        self.engine.dispose()


def _sqlite_on_connect(dbapi_conn: Any, _record: Any) -> None:
    # take control of transactions ourselves (pysqlite's implicit BEGIN would be DEFERRED)
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cur.execute(f"PRAGMA wal_autocheckpoint={SQLITE_WAL_BACKSTOP_PAGES}")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA temp_store=MEMORY")
    cur.execute("PRAGMA cache_size=-65536")  # 64 MiB page cache per connection
    cur.close()


class _SqliteWriteTx:
    """``Database.tx`` on SQLite, as a plain context manager (it runs around every movement: no generator, and the
    thread's connection keeps one cursor for its write transactions)."""

    __slots__ = ("_conn", "_db", "_tx")

    def __init__(self, db: Database) -> None:
        self._db = db

    def __enter__(self) -> Tx:
        db = self._db
        conn = db._sqlite_conn()
        if conn.in_transaction:
            raise RuntimeError("nested write transaction on one thread")
        tx = Tx(conn, "sqlite", db._local.cur)
        tx.cur.execute("BEGIN IMMEDIATE")
        self._conn, self._tx = conn, tx
        return tx

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        conn, tx = self._conn, self._tx
        if exc_type is None:
            try:
                conn.commit()
            except BaseException:
                conn.rollback()
                tx._rolled_back()
                raise
            self._db._committed_sqlite()
            tx._committed()
            return
        conn.rollback()
        tx._rolled_back()


class Checkpointer:
    """SQLite: copies committed WAL pages into the database file on its own thread, off the commit path.

    With ``synchronous=NORMAL`` a commit only appends its pages to the WAL (no fsync); the fsyncs happen when
    a checkpoint runs. SQLite would run one inside every commit that crosses its autocheckpoint size; here a
    PASSIVE checkpoint runs every ``interval_s`` when something was committed, on a separate connection, while
    writers carry on (PASSIVE never blocks them). Crash safety is SQLite's own: a checkpoint that stops halfway
    is redone from the WAL on the next open."""

    def __init__(self, connect: Callable[[], Any], interval_s: float = CHECKPOINT_INTERVAL_S) -> None:
        self.commits = 0  # bumped by writers after each commit (a lost increment only delays a checkpoint)
        self.runs = 0  # checkpoints completed (frames backfilled into the database file)
        self._connect = connect
        self._interval_s = interval_s
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="accord-sqlite-checkpoint", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        conn: Any = None
        seen = 0
        try:
            while not self._stopping.wait(self._interval_s):
                if self.commits == seen:
                    continue
                seen = self.commits
                if conn is None:
                    conn = self._connect()
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error:  # busy or the file went away: the commit-path backstop still holds
                    continue
                self.runs += 1
        except sqlite3.Error:
            return
        finally:
            if conn is not None:
                conn.close()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join()


def _sqlite_on_begin(conn: sa.Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")
