"""``accord bench ledger``: ingest and lookup speed, with a raw sqlite3 ceiling measured in the same run.

All numbers come from one process on this machine; nothing here is asserted by tests.
"""

from __future__ import annotations

import os
import platform
import random
import sqlite3
import tempfile
import threading
import time
import uuid
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from accord.app.engine import Engine
from accord.domain.availability import Channel, Location, LocationKind, StockPolicy
from accord.domain.catalog import Sku
from accord.domain.ledger import Movement, MovementKind
from accord.store.db import Database, backend_of, normalise_url
from accord.store.migrate import upgrade
from accord.store.statements import LOAD_STATE, build

N_SKUS = 2_000
N_LOCATIONS = 8
N_CHANNELS = 32
BATCH = 5_000


def _world(engine: Engine) -> None:
    for i in range(N_LOCATIONS):
        engine.add_location(Location(f"L{i}", LocationKind.WAREHOUSE, f"r{i % 6}", "DE"))
    for c in range(N_CHANNELS):
        locs = tuple(f"L{(c + k) % N_LOCATIONS}" for k in range(3))
        engine.add_channel(Channel(f"C{c:02d}", "bench", f"r{c % 6}", "EUR", locs, StockPolicy(buffer_units=c % 3)))
    engine.add_skus([Sku(f"S{i:05d}", f"bench item {i}") for i in range(N_SKUS)])


def _receipts(n: int, tag: str) -> list[Movement]:
    rnd = random.Random(7)
    return [
        Movement(
            MovementKind.RECEIVE, f"S{rnd.randrange(N_SKUS):05d}", f"L{rnd.randrange(N_LOCATIONS)}", 5, f"{tag}{i}"
        )
        for i in range(n)
    ]


def _raw_ceiling(path: Path, movements: list[Movement]) -> tuple[float, float]:
    """Plain sqlite3: the same ledger rows and one balance upsert per movement, in batches of BATCH."""
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")
    cur = con.cursor()
    ins = (
        "INSERT INTO ledger (idem_key, leg, kind, sku_id, location_id, d_on_hand, d_committed, d_in_transit,"
        " d_damaged, d_quarantine, qty, reason, ref, fingerprint, created_at)"
        " VALUES (?, 0, 'receive', ?, ?, ?, 0, 0, 0, 0, ?, NULL, NULL, ?, ?)"
    )
    ups = (
        "INSERT INTO balances (sku_id, location_id, on_hand, committed, in_transit, damaged, quarantine, updated_at)"
        " VALUES (?, ?, ?, 0, 0, 0, 0, ?) ON CONFLICT (sku_id, location_id)"
        " DO UPDATE SET on_hand = on_hand + excluded.on_hand, updated_at = excluded.updated_at"
    )
    now = int(time.time() * 1000)
    t0, c0 = time.perf_counter(), time.process_time()
    for j in range(0, len(movements), BATCH):
        chunk = movements[j : j + BATCH]
        cur.execute("BEGIN IMMEDIATE")
        cur.executemany(ins, [(m.key, m.sku, m.location, m.qty, m.qty, m.fingerprint(), now) for m in chunk])
        cur.executemany(ups, [(m.sku, m.location, m.qty, now) for m in chunk])
        con.commit()
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    con.close()
    return len(movements) / dt, len(movements) / cpu


def _raw_per_tx(path: Path, n: int) -> tuple[float, float]:
    """Plain sqlite3 on Accord's file, one reservation per transaction with the statements Accord runs (see
    ``_raw_per_tx_steps``). Only the SQL and its commit, no domain logic: what per_tx_per_s could be at most."""
    steps = _raw_per_tx_steps(path)
    next(steps)  # set up
    try:
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(n):
            next(steps)
        dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    finally:
        steps.close()
    return n / dt, n / cpu


def _raw_per_tx_steps(path: Path) -> Generator[None, None, None]:
    """One reservation per ``next()``: BEGIN IMMEDIATE, the one load query (config version, the key, the SKU's
    packed row), ledger insert, balance delta update, packed-row upsert, the two outbox rows (MovementsRecorded,
    ChannelAvailabilityChanged), COMMIT — the statements Accord runs for one movement, with the packed JSON passed
    through as loaded (no parsing: SQL only). The first ``next()`` only sets up."""
    db = Database(f"sqlite:///{path}")
    con = None
    try:
        sql = build(db)
        con = db._new_sqlite_conn()
        cur = con.cursor()
        cur.execute("SELECT sku_id, location_id, on_hand - committed FROM balances WHERE on_hand - committed > 10")
        targets = cur.fetchall()
        rnd = random.Random(13)
        now = int(time.time() * 1000)
        changes = [{"channel": f"C{c:02d}", "old_ats": 5, "new_ats": 4} for c in range(12)]
        yield
        i = 0
        while True:
            sku, loc = rnd.choice(targets)[:2]
            key = f"raw{i}"
            i += 1
            cur.execute("BEGIN IMMEDIATE")
            rows = cur.execute(sql.load_one.sql, sql.load_one.bind({"key": key, "sku": sku})).fetchall()
            state = next(r for r in rows if r[0] == LOAD_STATE)
            cur.execute(sql.insert_ledger.sql, (key, 0, "reserve", sku, loc, 0, 1, 0, 0, 0, 1, None, None, key, now))
            cur.execute(sql.add_balance.sql, (0, 1, 0, 0, 0, now, sku, loc))
            cur.execute(sql.upsert_state.sql, (sku, state[3], now, state[4]))
            moved = {
                "movements": [{"key": key, "kind": "reserve", "sku": sku, "location": loc, "qty": 1}],
                "balances": [[sku, loc, 9, 1, 0, 0, 0]],
            }
            cur.executemany(
                sql.insert_outbox.sql,
                [
                    ("MovementsRecorded", sku, orjson.dumps(moved).decode(), now),
                    ("ChannelAvailabilityChanged", sku, orjson.dumps({"sku": sku, "changes": changes}).decode(), now),
                ],
            )
            con.commit()
            yield
    finally:
        if con is not None:
            con.close()
        db.dispose()


@contextmanager
def _database(url: str | None, workdir: Path, name: str) -> Iterator[str]:
    """A fresh database for one measurement: a SQLite file, or a new PostgreSQL database dropped afterwards."""
    if url is None or backend_of(normalise_url(url)) == "sqlite":
        yield f"sqlite:///{workdir / name}.db"
        return
    base = sa.engine.make_url(normalise_url(url))
    db_name = f"accord_bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{db_name}"')
        yield base.set(database=db_name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        admin.dispose()


def _engine(url: str) -> Engine:
    db = Database(url)
    upgrade(db)
    engine = Engine(db)
    _world(engine)
    return engine


def _pct(sorted_values: list[float], p: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(p * len(sorted_values)))]


def run_ledger_bench(
    *, database_url: str | None = None, movements: int = 200_000, progress: bool = True
) -> dict[str, Any]:
    per_tx_n = max(2_000, movements // 10)
    lookups = 20_000
    console = Console(stderr=True)
    cpu: dict[str, int] = {}
    backend = "sqlite" if database_url is None else backend_of(normalise_url(database_url))
    result: dict[str, Any] = {
        "backend": backend,
        "movements": movements,
        "per_tx_movements": per_tx_n,
        "skus": N_SKUS,
        "locations": N_LOCATIONS,
        "channels": N_CHANNELS,
        "batch_size": BATCH,
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "cpus": os.cpu_count(),
    }
    with (
        tempfile.TemporaryDirectory(prefix="accord-bench-") as tmp,
        Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=console, disable=not progress, transient=True,
        ) as bar,
    ):  # fmt: skip
        work = Path(tmp)
        batch_moves = _receipts(movements, "b")

        # 1. the ceiling: plain sqlite3 on the same schema
        task = bar.add_task("raw sqlite3 ceiling", total=1)
        with _database(None, work, "raw") as raw_url:
            eng = _engine(raw_url)
            eng.db.dispose()
            per_s, cpu_per_s = _raw_ceiling(work / "raw.db", batch_moves)
            result["raw_sqlite_batched_per_s"] = round(per_s)
            cpu["raw_sqlite_batched_per_s"] = round(cpu_per_s)
        bar.advance(task)

        # 2a. the same batches through Engine.move_batch with per-movement results (what the API answers)
        sample = batch_moves[: max(BATCH, movements // 4)]
        with _database(database_url, work, "batched_results") as url:
            eng = _engine(url)
            task = bar.add_task("accord batched, with results", total=len(sample))
            t0 = time.perf_counter()
            for j in range(0, len(sample), BATCH):
                chunk = sample[j : j + BATCH]
                eng.move_batch(chunk)
                bar.advance(task, len(chunk))
            result["batched_with_results_per_s"] = round(len(sample) / (time.perf_counter() - t0))
            result["batched_with_results_movements"] = len(sample)
            eng.db.dispose()

        # 2b. Accord batched ingest through Engine.move_batch in bulk mode: the same rows (ledger + balances +
        # ATS + outbox), no per-movement result objects
        with _database(database_url, work, "batched") as url:
            eng = _engine(url)
            task = bar.add_task("accord batched", total=movements)
            t0, c0 = time.perf_counter(), time.process_time()
            for j in range(0, movements, BATCH):
                chunk = batch_moves[j : j + BATCH]
                eng.move_batch(chunk, want_results=False)
                bar.advance(task, len(chunk))
            dt = time.perf_counter() - t0
            result["batched_per_s"] = round(movements / dt)
            cpu["batched_per_s"] = round(movements / (time.process_time() - c0))
            with eng.db.read() as tx:
                result["batched_outbox_events"] = int(tx.one(eng.db.compile(sa.text("SELECT count(*) FROM outbox")))[0])

            # 3. one movement per transaction: reservations, each with its events and ATS changes
            rnd = random.Random(11)
            stocked = [(s, loc) for s, loc, b in eng.balances() if b.available > 0]
            reserves = [
                Movement(MovementKind.RESERVE, s, loc, 1, f"t{i}")
                for i, (s, loc) in enumerate(rnd.choice(stocked) for _ in range(per_tx_n))
            ]
            task = bar.add_task("accord one movement per transaction", total=per_tx_n)
            t0, c0 = time.perf_counter(), time.process_time()
            for k, m in enumerate(reserves):
                try:
                    eng.move(m)
                except Exception:  # a location may run dry; that is a valid, rejected transaction
                    result["per_tx_rejected"] = result.get("per_tx_rejected", 0) + 1
                if k % 500 == 0:
                    bar.advance(task, 500)
            dt = time.perf_counter() - t0
            result["per_tx_per_s"] = round(per_tx_n / dt)
            cpu["per_tx_per_s"] = round(per_tx_n / (time.process_time() - c0))

            # 3b. the same from several threads at once (PostgreSQL shares commits between clients)
            threads = 8
            result["per_tx_concurrent_threads"] = threads
            conc = [
                Movement(MovementKind.RESERVE, s, loc, 1, f"c{i}")
                for i, (s, loc) in enumerate(rnd.choice(stocked) for _ in range(per_tx_n))
            ]
            task = bar.add_task(f"accord one movement per transaction, {threads} threads", total=per_tx_n)
            lock = threading.Lock()

            def worker(part: list[Movement]) -> None:
                for m in part:
                    try:
                        eng.move(m)
                    except Exception:
                        with lock:
                            result["per_tx_rejected"] = result.get("per_tx_rejected", 0) + 1
                bar.advance(task, len(part))

            pool = [threading.Thread(target=worker, args=(conc[k::threads],)) for k in range(threads)]
            t0 = time.perf_counter()
            for th in pool:
                th.start()
            for th in pool:
                th.join()
            result["per_tx_concurrent_per_s"] = round(per_tx_n / (time.perf_counter() - t0))

            # 4. ATS lookups: one SKU on one channel, as a channel-sync worker or an API call does
            task = bar.add_task("ATS lookups", total=lookups)
            lat: list[float] = []
            for i in range(lookups):
                sku = f"S{rnd.randrange(N_SKUS):05d}"
                ch = f"C{rnd.randrange(N_CHANNELS):02d}"
                t0 = time.perf_counter()
                eng.ats(sku, ch)
                lat.append((time.perf_counter() - t0) * 1000)
                if i % 1000 == 0:
                    bar.advance(task, 1000)
            lat.sort()
            result["ats_lookup_p50_ms"] = round(_pct(lat, 0.50), 4)
            result["ats_lookup_p99_ms"] = round(_pct(lat, 0.99), 4)
            problems = eng.verify()
            result["verify_mismatches"] = len(problems)
            eng.db.dispose()
            if backend == "sqlite":
                # 5. the floor under per_tx_per_s: plain sqlite3, the same statements per transaction, no Accord
                db_path = Path(sa.engine.make_url(url).database or "")
                per_s, cpu_per_s = _raw_per_tx(db_path, per_tx_n)
                result["raw_sqlite_per_tx_per_s"] = round(per_s)
                cpu["raw_sqlite_per_tx_per_s"] = round(cpu_per_s)

    result["batched_vs_raw"] = round(result["batched_per_s"] / result["raw_sqlite_batched_per_s"], 3)
    # the same throughputs per CPU-second of this process (all its threads, user + system): on a shared machine
    # they move far less than wall-clock figures, since waiting for a CPU is not counted
    result["per_cpu_second"] = cpu
    result["batched_vs_raw_cpu"] = round(cpu["batched_per_s"] / cpu["raw_sqlite_batched_per_s"], 3)
    result["goals"] = {
        "batched_per_s >= 0.5 x raw": result["batched_vs_raw"] >= 0.5,
        "per_tx_per_s >= 10000": result["per_tx_per_s"] >= 10_000,
        "ats_lookup_p99_ms <= 1": result["ats_lookup_p99_ms"] <= 1.0,
    }
    return result
