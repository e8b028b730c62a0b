"""Simulator: determinism, invariants, the policy ordering, the report and CLI bad input. Small worlds, few days."""

from __future__ import annotations

import json
import re
from collections.abc import Collection
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from accord.cli import cli
from accord.domain.availability import LocationKind
from accord.sim import fulfilment
from accord.sim.metrics import METRIC_SECTIONS, dumps
from accord.sim.report import render_html
from accord.sim.runner import InvariantViolation, SimConfig, run_scenario
from accord.sim.world import WorldParams, generate_world
from accord.sync.worker import StepReport, SyncWorker

SMALL = WorldParams(
    products=6, orders_per_day=200.0, flash_multiplier=20.0, viral_multiplier=4.0, viral_quick_multiplier=4.0
)


def small(policy: str = "realtime", seed: int = 3, days: int = 2, **kw: object) -> SimConfig:
    return SimConfig(seed=seed, days=days, policy=policy, params=SMALL, **kw)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def databases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return {policy: tmp_path_factory.mktemp(policy) / "sim.db" for policy in ("realtime", "15m", "6h")}


@pytest.fixture(scope="module")
def comparison(databases: dict[str, Path]) -> dict[str, dict[str, object]]:
    return {policy: run_scenario(small(policy), f"sqlite:///{db}") for policy, db in databases.items()}


def test_world_is_reproducible_and_shaped_as_specified() -> None:
    a, b = generate_world(11), generate_world(11)
    assert a.summary() == b.summary()
    assert [s.title for s in a.skus] == [s.title for s in b.skus]
    s = a.summary()
    assert 1_500 <= s["skus"] <= 2_500 and s["products"] == 200
    assert s["channels"] == 32 and len(s["dialects"]) >= 8 and len(s["regions"]) >= 6
    assert s["locations"] == {"regional_dc": 4, "warehouse": 4, "platform_fc": 4, "dark_store": 2}
    assert s["non_compliant_products"] > 0 and s["purchase_orders"] > 0
    assert {x["kind"] for x in s["surges"]} == {"flash_sale", "viral"}
    assert generate_world(12).summary() != s


def test_same_seed_and_policy_give_identical_json(tmp_path: Path, comparison: dict[str, dict[str, object]]) -> None:
    again = run_scenario(small("realtime"), f"sqlite:///{tmp_path / 'again.db'}")
    assert dumps(again) == dumps(comparison["realtime"])
    assert set(again["metrics"]) == set(METRIC_SECTIONS)


def test_realtime_oversells_less_than_6h_under_a_flash_sale(comparison: dict[str, dict[str, object]]) -> None:
    def oversold(p: str) -> int:
        return int(comparison[p]["metrics"]["oversell"]["oversold_units"])  # type: ignore[index]

    def sold_demand(p: str) -> int:
        return int(comparison[p]["metrics"]["sales"]["demand_units"])  # type: ignore[index]

    # the buyers are the same in every run: only the policy differs
    assert sold_demand("realtime") == sold_demand("15m") == sold_demand("6h")
    assert oversold("6h") > 0
    assert oversold("realtime") < oversold("6h")
    assert oversold("realtime") <= oversold("15m") <= oversold("6h")
    # concentrated demand on lean best sellers, the flash sale and the viral surge: every step of staleness costs
    assert oversold("realtime") < oversold("15m") < oversold("6h")

    def lost_usd(p: str) -> float:
        return float(comparison[p]["metrics"]["lost_sales"]["lost_revenue_usd"])  # type: ignore[index]

    assert lost_usd("realtime") < lost_usd("15m") < lost_usd("6h")
    acc = {p: float(comparison[p]["metrics"]["accuracy"]["time_weighted_accuracy_pct"]) for p in comparison}  # type: ignore[index]
    assert acc["realtime"] > acc["6h"]


def test_invariant_violation_names_seed_and_step(tmp_path: Path) -> None:
    with pytest.raises(InvariantViolation) as info:
        run_scenario(small(days=1, inject_violation_at_step=90), f"sqlite:///{tmp_path / 'bad.db'}")
    assert info.value.seed == 3 and info.value.step == 90
    assert "seed 3" in str(info.value) and "step 90" in str(info.value)


def test_report_is_self_contained(comparison: dict[str, dict[str, object]]) -> None:
    html = render_html(list(comparison.values()))
    assert "<svg" in html and "realtime" in html and "6h" in html
    assert not re.search(r"<(script|link)\b", html, re.I)
    assert not re.search(r"https?://", html)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["simulate", "--sync", "hourly"], "--sync"),
        (["simulate", "--days", "0"], "--days"),
        (["simulate", "--days", "-3"], "--days"),
        (["bench", "sim", "--days", "0"], "--days"),
    ],
)
def test_cli_bad_input_exits_2_with_one_line(args: list[str], needle: str) -> None:
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and needle in lines[0]


def test_cli_simulate_writes_json_and_report(tmp_path: Path) -> None:
    out, rep = tmp_path / "m.json", tmp_path / "r.html"
    args = [
        "simulate",
        "--days",
        "1",
        "--seed",
        "5",
        "--products",
        "3",
        "--orders-per-day",
        "40",
        "--quiet",
        "--json",
        str(out),
        "--report",
        str(rep),
    ]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert out.read_text().startswith("{") and "<svg" in rep.read_text()


def test_direct_transport_gives_the_same_run_as_the_full_sandbox_app(tmp_path: Path) -> None:
    direct = run_scenario(small(days=1), f"sqlite:///{tmp_path / 'direct.db'}")
    full = run_scenario(small(days=1, direct_transport=False), f"sqlite:///{tmp_path / 'full.db'}")
    assert int(direct["metrics"]["api"]["calls"]) > 0
    assert dumps(direct) == dumps(full)


def test_stepping_only_channels_with_due_work_changes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    due_only = run_scenario(small("15m", days=1), f"sqlite:///{tmp_path / 'due.db'}")
    step = SyncWorker.step

    async def every_channel(self: SyncWorker, channels: Collection[str] | None = None) -> StepReport:
        return await step(self, None)

    monkeypatch.setattr(SyncWorker, "step", every_channel)
    every = run_scenario(small("15m", days=1), f"sqlite:///{tmp_path / 'every.db'}")
    assert dumps(due_only) == dumps(every)


def test_demand_is_concentrated_and_best_sellers_are_stocked_lean() -> None:
    w = generate_world(42)
    ranked = sorted(w.skus, key=lambda s: -s.base_per_day)
    total = sum(s.base_per_day for s in ranked)
    top = ranked[: len(ranked) // 20]
    assert sum(s.base_per_day for s in top) / total > 0.5  # the top 5 % of SKUs carry most of the units
    head = {s.id for s in ranked[: max(4, int(len(ranked) * w.params.head_pct))]}
    for surge in w.surges:
        assert set(surge.skus) <= head
    dark = {loc.id for loc in w.locations if loc.kind.value == "dark_store"}
    assert {sku for sku, loc, _ in w.stock if loc in dark} <= head
    restocks = [po for po in w.purchase_orders if po.location in dark]
    assert restocks and {po.sku for po in restocks} <= head
    # starting cover in days of expected demand: lean for the best sellers, more for the rest
    units: dict[str, int] = {}
    for sku, _loc, qty in w.stock:
        units[sku] = units.get(sku, 0) + qty
    per_day = {s.id: s.base_per_day / total * w.params.orders_per_day for s in ranked}
    best = ranked[0].id
    assert units[best] / per_day[best] < w.params.stock_days


# ---------------------------------------------------------------------------------------------- orders


def _rows(db: Path, query: str) -> list[tuple[object, ...]]:
    engine = sa.create_engine(f"sqlite:///{db}")
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(query))]
    finally:
        engine.dispose()


def test_sandbox_orders_reach_accord_by_webhook_or_poll_and_become_lifecycle_orders(
    comparison: dict[str, dict[str, object]], databases: dict[str, Path]
) -> None:
    m = comparison["realtime"]["metrics"]
    db = databases["realtime"]
    dialect = {c.id: c.dialect for c in generate_world(3, SMALL).channels}
    sources = _rows(db, "SELECT channel_id, source, count(*) FROM channel_orders GROUP BY channel_id, source")
    assert sources
    for channel, source, _n in sources:
        assert source == ("webhook" if dialect[str(channel)] == "shopify" else "poll"), (channel, source)
    assert m["intake"]["webhooks_posted"] > 0 and m["intake"]["order_polls"] > 0  # type: ignore[index]
    # every order the buyers placed and Accord settled is one channel order and one lifecycle order
    ((channel_orders,),) = _rows(db, "SELECT count(*) FROM channel_orders")
    ((lifecycle,),) = _rows(db, "SELECT count(*) FROM orders")
    settled = int(m["sales"]["orders"]) + int(m["sales"]["held_orders"])  # type: ignore[index]
    assert channel_orders == lifecycle == settled == m["fulfilment"]["lifecycle_orders"]  # type: ignore[index]
    assert m["fulfilment"]["orders_without_lifecycle"] == 0  # type: ignore[index]


def test_warehouses_ship_and_deliver_and_the_metrics_match_what_accord_recorded(
    comparison: dict[str, dict[str, object]], databases: dict[str, Path]
) -> None:
    f = comparison["realtime"]["metrics"]["fulfilment"]  # type: ignore[index]
    db = databases["realtime"]
    parcels = _rows(db, "SELECT order_id, carrier, tracking, lines FROM shipments")
    assert f["shipments"] == len(parcels) > 0
    assert all(str(carrier).strip() and str(tracking).strip() for _o, carrier, tracking, _l in parcels)
    per_order: dict[str, int] = {}
    for order_id, *_ in parcels:
        per_order[str(order_id)] = per_order.get(str(order_id), 0) + 1
    assert f["shipped_orders"] == len(per_order)
    assert f["split_shipment_orders"] == sum(1 for n in per_order.values() if n > 1)
    # every parcel is a SHIP movement in the ledger, unit for unit
    shipped_units = sum(sum(json.loads(str(lines)).values()) for *_x, lines in parcels)
    ((ledger_units,),) = _rows(
        db, "SELECT coalesce(sum(q), 0) FROM (SELECT max(qty) AS q FROM ledger WHERE kind = 'ship' GROUP BY idem_key)"
    )
    assert ledger_units == shipped_units
    ((delivered,),) = _rows(db, "SELECT count(*) FROM orders WHERE status = 'delivered'")
    assert f["delivered_orders"] == delivered > 0
    assert f["sla_hits"] > 0 and f["sla_hits"] + f["sla_misses"] <= f["shipped_orders"]
    assert 90.0 <= f["valid_tracking_rate_pct"] <= 100.0
    health = comparison["realtime"]["metrics"]["channel_health"]  # type: ignore[index]
    assert set(health["bars"]) == {"cancellation_rate", "late_shipment_rate", "valid_tracking_rate"}
    assert set(health["channels"]) == {c.id for c in generate_world(3, SMALL).channels}


def test_pick_capacity_makes_parcels_late(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, comparison: dict[str, dict[str, object]]
) -> None:
    base = comparison["realtime"]["metrics"]["fulfilment"]  # type: ignore[index]
    monkeypatch.setattr(fulfilment, "PICK_CAPACITY_FACTOR", 0.1)
    monkeypatch.setattr(fulfilment, "MIN_PICK_CAPACITY", 1)
    f = run_scenario(small(), f"sqlite:///{tmp_path / 'cap.db'}")["metrics"]["fulfilment"]
    assert f["capacity_deferrals"] > base["capacity_deferrals"]
    # the same orders, fewer parcels a day: more of them leave after their ship-by, or have not left by the end
    assert f["sla_misses"] + f["sla_open_breached"] > base["sla_misses"] + base["sla_open_breached"]
    assert f["sla_hits"] < base["sla_hits"]


def test_accord_is_told_each_warehouse_pick_capacity(
    databases: dict[str, Path], comparison: dict[str, dict[str, object]]
) -> None:
    # routing knows what the floor manager knows: the very figure the simulated warehouses ship by
    told = dict(_rows(databases["realtime"], "SELECT location_id, parcels_per_day FROM routing_capacities"))
    assert told == fulfilment.pick_capacity(generate_world(3, SMALL)) and told


def test_a_failed_pick_reroutes_the_order_or_cancels_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fulfilment, "PICK_FAILURE", dict.fromkeys(LocationKind, 1.0))
    db = tmp_path / "fail.db"
    f = run_scenario(small(days=1), f"sqlite:///{db}")["metrics"]["fulfilment"]  # invariants are checked in the run
    assert f["pick_failures"] > 0
    assert f["reroutes"] + f["cancelled_after_pick_failure"] == f["pick_failures"]
    assert f["reroutes"] > 0
    ((routes,),) = _rows(db, "SELECT count(*) FROM order_routes WHERE cause LIKE 'reroute:%'")
    assert routes == f["reroutes"]
