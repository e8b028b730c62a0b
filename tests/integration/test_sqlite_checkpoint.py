"""SQLite: commits leave checkpointing to a background thread, which starts with the first write and stops with
the database; everything committed ends up in the database file."""

from __future__ import annotations

import threading
from pathlib import Path

from accord.store.db import SQLITE_WAL_BACKSTOP_PAGES

from .helpers import WH1, A, buckets, build_world, mv, new_engine


def test_commits_are_checkpointed_in_the_background(sqlite_url: str) -> None:
    eng = new_engine(sqlite_url)
    try:
        eng.balances()
        assert eng.db._checkpointer is None  # reads start no thread
        build_world(eng)
        conn = eng.db._sqlite_conn()
        # a commit checkpoints by itself only past the backstop size; WAL + NORMAL: no fsync per commit
        assert conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == SQLITE_WAL_BACKSTOP_PAGES
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1
        for i in range(50):
            eng.move(mv("receive", A, WH1, 1, f"k{i}"))
        ckpt = eng.db._checkpointer
        assert ckpt is not None
        waited = threading.Event()
        for _ in range(400):  # it wakes every 50 ms when something was committed: wait for its first checkpoint
            if ckpt.runs:
                break
            waited.wait(0.05)
        assert ckpt.runs >= 1, "the background checkpoint never ran"
    finally:
        eng.db.dispose()
    assert eng.db._checkpointer is None  # stopped with the database
    path = Path(sqlite_url.removeprefix("sqlite:///"))
    assert not Path(f"{path}-wal").exists() or Path(f"{path}-wal").stat().st_size == 0
    again = new_engine(sqlite_url)
    try:
        assert buckets(again, A, WH1) == (50, 0, 0, 0, 0)
    finally:
        again.db.dispose()
