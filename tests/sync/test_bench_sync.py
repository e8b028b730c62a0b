"""``accord bench sync``: the figures' arithmetic, the seeded sale, and the virtual-clock baseline (no timings)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from accord.sync.bench import (
    SaleConfig,
    calls_min,
    changed_keys,
    converge_bound_s,
    percentile,
    run_baseline,
    sale_schedule,
    sku_ids,
    stock_plan,
)
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
