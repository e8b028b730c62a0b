"""``accord bench sync``: the figures' arithmetic, the seeded sale, and the virtual-clock baseline (no timings)."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from pathlib import Path

import pytest

from accord.connectors.base import ItemResult, ItemStatus, QuantitySnapshot, QuantityUpdate
from accord.sync.bench import (
    OrderRecord,
    SaleConfig,
    SaleJournal,
    calls_min,
    changed_keys,
    converge_bound_s,
    percentile,
    run_baseline,
    sale_schedule,
    sku_ids,
    stock_plan,
    wall_ms,
)
from accord.sync.orders import CANCELLED
from accord.sync.world import demo_world


def test_calls_min_batches_changed_keys_by_dialect_batch_size() -> None:
    before = {"amz": {"A": 5, "B": 5, "C": 5}, "shop": {"A": 5, "B": 5, "C": 5}, "eb": {"A": 1}}
    after = {"amz": {"A": 4, "B": 5, "C": 0}, "shop": {"A": 4, "B": 0, "C": 0}, "eb": {"A": 1}}
    changed = changed_keys(before, after)
    assert changed == {"amz": 2, "eb": 0, "shop": 3}
    # amazon writes one SKU per call; shopify takes 250 per call; an unchanged channel needs none
    assert calls_min(changed, {"amz": 1, "shop": 250, "eb": 25}) == 2 + 1
    assert calls_min({"eb": 26}, {"eb": 25}) == 2
    assert calls_min({"x": 3}, {}) == 3  # unknown batch size: one per call


def test_changed_keys_treats_missing_as_zero() -> None:
    assert changed_keys({"c": {"A": 0}}, {"c": {"B": 0}}) == {"c": 0}
    assert changed_keys({}, {"c": {"A": 2}}) == {"c": 1}


def test_percentile_and_bound() -> None:
    assert percentile([], 0.99) is None
    assert percentile([5], 0.5) == 5
    values = list(range(1, 101))
    assert percentile(values, 0.5) == 50 and percentile(values, 0.99) == 99 and percentile(values, 1.0) == 100
    assert converge_bound_s(0, 1, 5.0) == 1.0  # nothing behind: only the slack
    assert converge_bound_s(50, 1, 5.0) == 11.0  # 50 calls at 5 per second
    assert converge_bound_s(300, 250, 10.0) == 1.2  # two batched calls
    assert math.isinf(converge_bound_s(1, 1, 0.0))


def test_sale_is_seeded_bounded_and_sorted() -> None:
    cfg = SaleConfig(seconds=5, skus=50, hot_skus=10, orders_per_s=40)
    channels = sorted(c.id for c in demo_world().channels)
    a, b = sale_schedule(cfg, channels), sale_schedule(cfg, channels)
    assert a == b and a
    assert [x.at_ms for x in a] == sorted(x.at_ms for x in a)
    assert all(0 <= x.at_ms < 5_000 and x.channel in channels and x.qty in (1, 2) for x in a)
    assert {x.sku for x in a} <= set(sku_ids(50))
    assert sale_schedule(SaleConfig(seconds=5, skus=50, seed=8), channels) != a
    plan = stock_plan(cfg, demo_world())
    assert plan == stock_plan(cfg, demo_world()) and all(m.qty > 0 for m in plan)


def test_bad_config_is_refused() -> None:
    with pytest.raises(ValueError):
        SaleConfig(seconds=0)
    with pytest.raises(ValueError):
        SaleConfig(skus=0)


def test_baseline_on_the_virtual_clock_is_deterministic(tmp_path: Path) -> None:
    cfg = SaleConfig(seconds=20, skus=12, hot_skus=6, hot_share=0.9, orders_per_s=20)
    schedule = sale_schedule(cfg, sorted(c.id for c in demo_world().channels))
    ticks: list[tuple[str, float]] = []
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    first = run_baseline(cfg, tmp_path / "one", schedule, lambda name, v: ticks.append((name, v)))
    second = run_baseline(cfg, tmp_path / "two", schedule, lambda name, v: None)
    assert first == second
    assert ticks[-1] == ("baseline", len(schedule))
    assert first["baseline_15m_oversold_units"] >= first["baseline_15m_oversold_orders"] >= 0
    placed = sum(first["baseline_15m_orders_by_status"].values())
    assert 0 < placed <= len(schedule)
    assert 0 <= first["baseline_sync_phase_s"] < cfg.baseline_interval_s


def test_oversold_detail_explains_each_cancelled_order() -> None:
    """Each order Accord had to cancel comes with what the channel showed vs the true ATS, the writes and
    read-backs for that (channel, SKU) and the orders on the SKU before it (ms since the sale started)."""

    class Conn:
        async def set_quantities(self, items: Sequence[QuantityUpdate]) -> list[ItemResult]:
            return [ItemResult(u.sku, ItemStatus.OK) for u in items]

        async def get_quantities(self, skus: Sequence[str]) -> list[QuantitySnapshot]:
            return [QuantitySnapshot(s, 1) for s in skus]

    journal = SaleJournal()
    conn = Conn()
    journal.wrap({"shop": conn})  # type: ignore[dict-item]
    asyncio.run(conn.set_quantities([QuantityUpdate("A", 0, expected_qty=2)]))
    asyncio.run(conn.get_quantities(["A"]))
    t0 = wall_ms()  # the sale starts after those calls
    journal.orders += [
        OrderRecord("eb", "o1", "A", 2, t0 + 100, 2, 0, t0 + 110, "reserved", {"shop": 2, "eb": 2}, {"shop": 0}),
        OrderRecord("shop", "o2", "A", 1, t0 + 300, 2, t0 + 50, t0 + 310, CANCELLED, {"shop": 0}, {"shop": 0}),
        OrderRecord("shop", "o3", "B", 1, t0 + 400, 5, 0, t0 + 410, "reserved", {"shop": 5}, {"shop": 4}),
    ]
    journal.relayed_ms["o1"] = t0 + 120
    (d,) = journal.oversold_detail(t0, {"shop": "shopify", "eb": "ebay"})
    assert {k: d[k] for k in ("channel", "dialect", "sku", "qty", "sold_at_ms", "channel_showed", "true_ats")} == {
        "channel": "shop",
        "dialect": "shopify",
        "sku": "A",
        "qty": 1,
        "sold_at_ms": 300,
        "channel_showed": 2,
        "true_ats": 0,
    }
    assert d["listing_written_at_ms"] == 50 and d["ingested_at_ms"] == 310
    assert d["ats_dropped_by"] == {"channel": "eb", "order_id": "o1", "sold_at_ms": 100}
    assert d["accord_knew_for_ms"] == 300 - 120  # the value the channel needed was written 180 ms before the sale
    assert [(p["kind"], p["qty"], p["expected_qty"], p["result"]) for p in d["last_pushes"]] == [
        ("write", 0, 2, "ok"),
        ("read", 1, None, "ok"),
    ]
    assert [(c["kind"], c["keys"]) for c in d["channel_calls_before_sale"]] == [("write", 1), ("read", 1)]
    (before,) = d["orders_on_sku_before"]
    assert before["channel"] == "eb" and before["desired_written_at_ms"] == 120
    assert (before["ats_here_before"], before["ats_here_after"]) == (2, 0)
    assert SaleJournal().oversold_detail(t0, {}) == []
