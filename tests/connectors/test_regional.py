from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from accord.app.ports import ManualClock
from accord.connectors.base import ChannelConfig, ContentUpdate, ItemStatus, QuantityUpdate, UnsupportedOperation
from accord.connectors.filefeed import FileFeedConnector
from accord.sandbox.core import ChannelSpec

from .conftest import Env, listings


def ref(env: Env, channel: str, sku: str) -> str:
    return env.sandbox.listing(channel, sku).ref


@pytest.mark.parametrize("dialect", ["walmart", "mercadolibre", "shopee", "lazada", "allegro"])
def test_round_trip(make_env: Callable[..., Env], dialect: str) -> None:
    env = make_env([ChannelSpec("ch", dialect, listings("K1", "K2", qty=5))])
    env.clock.advance(86_400_000)
    order = env.sandbox.place_order("ch", "K1", 2)
    assert order is not None

    async def go(client: httpx.AsyncClient) -> None:
        conn = env.connector("ch", client)
        results = await conn.set_quantities(
            [QuantityUpdate("K1", 9, ref(env, "ch", "K1")), QuantityUpdate("K2", 0, ref(env, "ch", "K2"))]
        )
        assert [r.status for r in results] == [ItemStatus.OK, ItemStatus.OK], results
        snaps = await conn.get_quantities(["K1", "K2", "NOPE"])
        assert [(s.sku, s.qty) for s in snaps] == [("K1", 9), ("K2", 0), ("NOPE", None)]
        page = await conn.fetch_orders(None)
        assert [(o.channel_order_id, o.lines[0].sku, o.lines[0].qty) for o in page.orders] == [
            (order.order_id, "K1", 2)
        ]
        assert page.orders[0].lines[0].unit_price == Decimal("10.00")
        (c,) = await conn.update_content([ContentUpdate("K2", ref(env, "ch", "K2"), price=Decimal("12.00"))])
        assert c.ok, c

    env.run(go)
    assert env.sandbox.listing("ch", "K1").qty == 9
    assert env.sandbox.listing("ch", "K2").price == Decimal("12.00")


@pytest.mark.parametrize("dialect", ["mercadolibre", "shopee", "lazada", "allegro"])
def test_unknown_listing_is_rejected(make_env: Callable[..., Env], dialect: str) -> None:
    env = make_env([ChannelSpec("ch", dialect, listings("K1"))])

    async def go(client: httpx.AsyncClient) -> None:
        conn = env.connector("ch", client)
        (r,) = await conn.set_quantities([QuantityUpdate("K1", 1, "999999999")])
        assert r.status is ItemStatus.REJECTED

    env.run(go)


@pytest.mark.parametrize("dialect", ["lazada", "shopee"])
def test_campaign_stock_lock(make_env: Callable[..., Env], dialect: str) -> None:
    env = make_env([ChannelSpec("ch", dialect, listings("L1", "L2"))])
    env.sandbox.set_faults("ch", stock_lock_until_ms=env.clock.now_ms() + 3_600_000, locked_skus=["L1"])

    async def go(client: httpx.AsyncClient) -> None:
        conn = env.connector("ch", client)
        locked, free = await conn.set_quantities(
            [QuantityUpdate("L1", 0, ref(env, "ch", "L1")), QuantityUpdate("L2", 0, ref(env, "ch", "L2"))]
        )
        assert (locked.status, locked.reason) == (ItemStatus.RETRYABLE, "stock_locked")
        if dialect == "lazada":
            assert locked.retry_after_s == pytest.approx(3600)
        assert free.ok
        env.clock.advance(3_600_000)
        (after,) = await conn.set_quantities([QuantityUpdate("L1", 0, ref(env, "ch", "L1"))])
        assert after.ok

    env.run(go)
    assert env.sandbox.listing("ch", "L1").qty == 0


def test_bad_signature_is_rejected(make_env: Callable[..., Env]) -> None:
    env = make_env([ChannelSpec("ch", "shopee", listings("K1")), ChannelSpec("lz", "lazada", listings("K1"))])

    async def go(client: httpx.AsyncClient) -> None:
        for channel, key in (("ch", "partner_key"), ("lz", "app_secret")):
            creds = dict(env.sandbox.channel(channel).credentials, **{key: "forged"})
            conn = env.connector(channel, client, credentials=creds)
            (r,) = await conn.set_quantities([QuantityUpdate("K1", 1, ref(env, channel, "K1"))])
            assert r.status is ItemStatus.REJECTED, r

    env.run(go)
    assert env.sandbox.listing("ch", "K1").qty == 10


def test_walmart_bulk_feed(make_env: Callable[..., Env]) -> None:
    env = make_env([ChannelSpec("wm", "walmart", listings("W1", "W2"))])

    async def go(client: httpx.AsyncClient) -> None:
        from accord.connectors.walmart import WalmartConnector

        conn: WalmartConnector = env.connector("wm", client)
        feed_id = await conn.submit_inventory_feed([QuantityUpdate("W1", 1), QuantityUpdate("W9", 4)])
        assert (await conn.get_feed_status(feed_id)).status == "RECEIVED"
        env.sandbox.tick(60_000)
        status = await conn.get_feed_status(feed_id)
        assert (status.status, status.items_succeeded, status.items_failed) == ("PROCESSED", 1, 1)

    env.run(go)
    assert env.sandbox.listing("wm", "W1").qty == 1


def test_walmart_orders_next_cursor(make_env: Callable[..., Env]) -> None:
    env = make_env([ChannelSpec("wm", "walmart", listings("W1", qty=100))], enforce_limits=False)
    for _ in range(60):
        env.clock.advance(5)
        env.sandbox.place_order("wm", "W1", 1)

    async def go(client: httpx.AsyncClient) -> None:
        conn = env.connector("wm", client)
        first = await conn.fetch_orders(None)
        assert len(first.orders) == 50 and first.next_cursor.startswith("next:")
        second = await conn.fetch_orders(first.next_cursor)
        assert len(second.orders) == 10
        assert len({o.channel_order_id for o in first.orders + second.orders}) == 60

    env.run(go)


def test_file_feed_writes_atomic_csv_and_reads_inbox(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "001.csv").write_text(
        "order_id,created_at,status,sku,qty,unit_price,currency\n"
        "O1,2026-01-01T00:00:00Z,new,F1,2,9.99,EUR\nO1,2026-01-01T00:00:00Z,new,F2,1,5.00,EUR\n"
    )
    cfg = ChannelConfig(
        "bol-files", "filefeed", "file:///drop", options={"drop_dir": str(tmp_path / "drop"), "inbox_dir": str(inbox)}
    )
    conn = FileFeedConnector(cfg, clock=ManualClock())

    async def go() -> None:
        results = await conn.set_quantities([QuantityUpdate("F1", 3), QuantityUpdate("F2", -1)])
        assert [r.status for r in results] == [ItemStatus.OK, ItemStatus.REJECTED]
        page = await conn.fetch_orders(None)
        assert [(line.sku, line.qty) for line in page.orders[0].lines] == [("F1", 2), ("F2", 1)]
        assert (await conn.fetch_orders(page.next_cursor)).orders == []
        with pytest.raises(UnsupportedOperation):
            await conn.get_quantities(["F1"])

    asyncio.run(go())
    files = list((tmp_path / "drop").iterdir())
    assert [f.name for f in files] == ["bol-files-inventory-1767225600000-000001.csv"]
    assert files[0].read_text() == "sku,quantity\nF1,3\n"
