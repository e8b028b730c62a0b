"""Helpers for the integration suite: a small standard world and ways to look at what was written."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from accord.app.engine import Engine
from accord.app.ports import ManualClock, SequentialIds
from accord.domain.availability import Channel, Location, LocationKind, StockPolicy
from accord.domain.catalog import Sku
from accord.domain.errors import InsufficientStock
from accord.domain.ledger import Balance, Movement, MovementKind
from accord.store import schema as t
from accord.store.db import Database

# locations
WH1 = "WH-DE-1"
WH2 = "WH-FR-1"
STORE = "STORE-BER"
FBA = "FBA-DE"
# channels
SHOP = "shop-eu"  # WH1 + WH2
AMZ = "amazon-de"  # WH1 + FBA (its own platform stock)
EBAY = "ebay-fr"  # WH2 only
SKUS = ("SKU-A", "SKU-B", "SKU-C")
A, B, C = SKUS


def new_engine(url: str, clock: ManualClock | None = None) -> Engine:
    return Engine(Database(url), clock or ManualClock(), SequentialIds())


def build_world(engine: Engine) -> None:
    """Four locations, three channels, three SKUs; no stock."""
    engine.add_location(Location(WH1, LocationKind.WAREHOUSE, "eu", "DE"))
    engine.add_location(Location(WH2, LocationKind.WAREHOUSE, "eu", "FR"))
    engine.add_location(Location(STORE, LocationKind.STORE, "eu", "DE"))
    engine.add_location(Location(FBA, LocationKind.PLATFORM_FC, "eu", "DE", owner_channel=AMZ))
    engine.add_channel(Channel(SHOP, "shopify", "eu", "EUR", (WH1, WH2)))
    engine.add_channel(Channel(AMZ, "amazon", "eu", "EUR", (WH1, FBA)))
    engine.add_channel(Channel(EBAY, "ebay", "eu", "EUR", (WH2,), StockPolicy()))
    engine.add_skus([Sku(s, f"title {s}") for s in SKUS])


def mv(kind: MovementKind | str, sku: str, location: str, qty: Any, key: str, **extra: Any) -> Movement:
    return Movement(MovementKind(kind), sku, location, qty, key, **extra)


def balance(engine: Engine, sku: str, location: str) -> Balance:
    for _, loc, b in engine.balances(sku, location):
        if loc == location:
            return b
    return Balance()


def buckets(engine: Engine, sku: str, location: str) -> tuple[int, int, int, int, int]:
    return balance(engine, sku, location).as_tuple()


@dataclass(frozen=True)
class StoredRow:
    id: int
    type: str
    key: str
    data: dict[str, Any]


def outbox_max(db: Database) -> int:
    with db.engine.connect() as conn:
        value = conn.execute(sa.select(sa.func.max(t.outbox.c.id))).scalar()
        conn.rollback()
    return int(value or 0)


def events_since(db: Database, after: int) -> list[StoredRow]:
    o = t.outbox
    with db.engine.connect() as conn:
        rows = conn.execute(sa.select(o.c.id, o.c.type, o.c.key, o.c.data).where(o.c.id > after).order_by(o.c.id))
        out = [StoredRow(int(r[0]), r[1], r[2], json.loads(r[3])) for r in rows]
        conn.rollback()
    return out


def ledger_rows(db: Database, key: str | None = None) -> list[dict[str, Any]]:
    lg = t.ledger
    q = sa.select(lg).order_by(lg.c.idem_key, lg.c.leg)
    if key is not None:
        q = q.where(lg.c.idem_key == key)
    with db.engine.connect() as conn:
        out = [dict(r) for r in conn.execute(q).mappings()]
        conn.rollback()
    return out


def legs(db: Database, key: str) -> list[tuple[str, tuple[int, ...]]]:
    """(location, (d_on_hand, d_committed, d_in_transit, d_damaged, d_quarantine)) per leg of one movement."""
    return [
        (
            r["location_id"],
            (r["d_on_hand"], r["d_committed"], r["d_in_transit"], r["d_damaged"], r["d_quarantine"]),
        )
        for r in ledger_rows(db, key)
    ]


def dump(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, sorted: equal dumps mean nothing was written."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    with db.engine.connect() as conn:
        for table in t.metadata.sorted_tables:
            rows = conn.execute(sa.select(table)).all()
            out[table.name] = sorted((tuple(r) for r in rows), key=repr)
        conn.rollback()
    return out


def ats_snapshot(engine: Engine) -> dict[tuple[str, str], int]:
    """ATS of every SKU on every channel, read through the engine (independent of how it is stored)."""
    out: dict[tuple[str, str], int] = {}
    for sku in engine.skus(limit=10_000):
        for ch, qty in engine.ats(sku.id).items():
            out[(sku.id, ch)] = qty
    return out


AtsEvent = tuple[str, str, int, int, str]  # (sku, channel, old_ats, new_ats, cause)


def ats_changes_in(events: list[StoredRow]) -> list[AtsEvent]:
    """Every channel change carried by ChannelAvailabilityChanged events, in order.

    Accepts one change per event (``channel``/``old_ats``/``new_ats``) or several (``changes: [...]``).
    """
    out: list[AtsEvent] = []
    for e in events:
        if e.type != "ChannelAvailabilityChanged":
            continue
        d = e.data
        assert e.key == d["sku"]
        changes = d.get("changes", [d])
        out.extend((d["sku"], c["channel"], c["old_ats"], c["new_ats"], d["cause"]) for c in changes)
    return out


def reserve_worker(url: str, targets: list[tuple[str, str]], prefix: str, barrier: Any, results: Any) -> None:
    """Process body for the concurrency tests (module level so the 'spawn' start method can import it).

    Builds its own engine, waits for every other process, then reserves 1 unit at a time round-robin over
    ``targets`` (SKU, location) until each is exhausted (InsufficientStock). Puts ``(prefix, done, error)``
    on ``results``: the (key, sku, location) of every reservation that succeeded, and any unexpected error.
    """
    done: list[tuple[str, str, str]] = []
    error = ""
    try:
        engine = Engine(Database(url))
        try:
            engine.config()  # connect and load before the start line
            barrier.wait(timeout=60)
            live = list(targets)
            n = 0
            while live:
                sku, loc = live[n % len(live)]
                key = f"{prefix}-{n}"
                n += 1
                try:
                    result = engine.move(Movement(MovementKind.RESERVE, sku, loc, 1, key))
                except InsufficientStock:
                    live.remove((sku, loc))
                    continue
                if result.replayed:
                    raise AssertionError(f"fresh key {key} was reported as a replay")
                done.append((key, sku, loc))
        finally:
            engine.db.dispose()
    except BaseException as exc:  # reported to the test instead of dying silently
        error = f"{type(exc).__name__}: {exc}"
    results.put((prefix, done, error))


def same_keys_worker(url: str, sku: str, location: str, keys: list[str], barrier: Any, results: Any) -> None:
    """Process body: reserve 1 unit under each of ``keys`` (the same keys in every process).

    Puts ``(fresh_keys, replayed_keys, error)`` on ``results``.
    """
    fresh: list[str] = []
    replayed: list[str] = []
    error = ""
    try:
        engine = Engine(Database(url))
        try:
            engine.config()
            barrier.wait(timeout=60)
            for key in keys:
                result = engine.move(Movement(MovementKind.RESERVE, sku, location, 1, key))
                (replayed if result.replayed else fresh).append(key)
        finally:
            engine.db.dispose()
    except BaseException as exc:  # reported to the test instead of dying silently
        error = f"{type(exc).__name__}: {exc}"
    results.put((fresh, replayed, error))
