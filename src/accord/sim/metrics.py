"""Simulation metrics: a recorder the runner feeds, and a registry of metric sections that turn it into JSON.

Later issues (planning, media, insights) add their own sections with :func:`metric_section`; the report renders
every registered section it knows a renderer for and lists the rest as data. Output is deterministic: integers and
floats rounded to 4 places, built in sorted order, dumped with sorted keys.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from accord.domain.orders import AMAZON_BARS
from accord.sim.fulfilment import fulfilment_summary
from accord.sim.world import SimWorld

AMAZON_CANCEL_BAR_PCT = 2.5
HOUR_MS = 3_600_000
LATENCY_BUCKETS_MS: tuple[int, ...] = (
    1_000,
    2_000,
    5_000,
    10_000,
    30_000,
    60_000,
    300_000,
    900_000,
    1_800_000,
    3_600_000,
    7_200_000,
    21_600_000,
)


class _Listing(Protocol):
    qty: int


class _ChannelState(Protocol):
    listings: Any


@dataclass
class ChannelTally:
    demand_units: int = 0
    orders: int = 0
    units_sold: int = 0
    revenue_usd: float = 0.0
    cancelled_orders: int = 0
    oversold_units: int = 0
    oversold_revenue_usd: float = 0.0
    lost_true_units: int = 0  # demand while truly out of stock
    lost_false_units: int = 0  # demand while shown out of stock (or too low) but stock existed
    lost_true_revenue_usd: float = 0.0
    lost_false_revenue_usd: float = 0.0
    keys: int = 0
    # current counts over this channel's listings
    mismatched: int = 0
    phantom_units: int = 0
    zero_true: int = 0
    zero_false: int = 0
    # time integrals (ms × count)
    mismatch_ms: int = 0
    phantom_unit_ms: int = 0
    zero_true_ms: int = 0
    zero_false_ms: int = 0
    latencies_ms: list[int] = field(default_factory=list)
    critical_latencies_ms: list[int] = field(default_factory=list)


class Recorder:
    """Everything the runner observes. Listing state is tracked incrementally: only touched keys are re-read."""

    def __init__(self, world: SimWorld, start_ms: int) -> None:
        self.world = world
        self.start_ms = start_ms
        self.last_ms = start_ms
        self.ch: dict[str, ChannelTally] = {c.id: ChannelTally() for c in sorted(world.channels, key=lambda c: c.id)}
        self.state: dict[tuple[str, str], tuple[int, int]] = {}  # (channel, sku) -> (shown, true ATS)
        self.pending: set[tuple[str, str]] = set()
        self.calls = 0
        self.http_429 = 0
        self.worker_steps = 0
        self.inbound_units = 0
        self.webhooks = 0  # signed order webhooks posted to Accord's API
        self.order_polls = 0  # order polls through the connectors
        self.poll_errors = 0
        self.returns_units = 0
        self.held = 0
        self.checks = 0
        self.verifications = 0
        self.series: list[dict[str, float]] = []
        self.negative_shown: tuple[str, str, int] | None = None

    # ------------------------------------------------------------------ listing state

    def init_key(self, channel: str, sku: str, shown: int, ats: int) -> None:
        self.ch[channel].keys += 1
        self._apply(channel, sku, shown, ats, +1)
        self.state[channel, sku] = (shown, ats)

    def _apply(self, channel: str, sku: str, shown: int, ats: int, sign: int) -> None:
        c = self.ch[channel]
        c.mismatched += sign * (shown != ats)
        c.phantom_units += sign * max(0, shown - ats)
        c.zero_true += sign * (shown == 0 and ats == 0)
        c.zero_false += sign * (shown == 0 and ats > 0)

    def touch(self, channel: str, sku: str) -> None:
        self.pending.add((channel, sku))

    def refresh(self, ats: Mapping[tuple[str, str], int], channels: Mapping[str, _ChannelState]) -> None:
        for key in self.pending:
            ch, sku = key
            old = self.state[key]
            new = (int(channels[ch].listings[sku].qty), int(ats[key]))
            if new[0] < 0 and self.negative_shown is None:
                self.negative_shown = (ch, sku, new[0])
            if new != old:
                self._apply(ch, sku, old[0], old[1], -1)
                self._apply(ch, sku, new[0], new[1], +1)
                self.state[key] = new
        self.pending.clear()

    def integrate(self, to_ms: int) -> None:
        dt = to_ms - self.last_ms
        if dt <= 0:
            return
        for c in self.ch.values():
            c.mismatch_ms += c.mismatched * dt
            c.phantom_unit_ms += c.phantom_units * dt
            c.zero_true_ms += c.zero_true * dt
            c.zero_false_ms += c.zero_false * dt
        self.last_ms = to_ms

    def sample(self, now_ms: int) -> None:
        keys = sum(c.keys for c in self.ch.values()) or 1
        self.series.append(
            {
                "hour": round((now_ms - self.start_ms) / HOUR_MS, 4),
                "accuracy_pct": round(100 * (1 - sum(c.mismatched for c in self.ch.values()) / keys), 4),
                "phantom_units": sum(c.phantom_units for c in self.ch.values()),
                "false_zero_listings": sum(c.zero_false for c in self.ch.values()),
                "oversold_units": sum(c.oversold_units for c in self.ch.values()),
            }
        )

    # ------------------------------------------------------------------ events

    def demand(self, channel: str, wanted: int, sold: int, shown: int, true_ats: int, price: float) -> None:
        c = self.ch[channel]
        c.demand_units += wanted
        lost = wanted - sold
        if lost <= 0:
            return
        false_lost = max(0, min(lost, true_ats - shown))  # the channel could have sold these
        c.lost_false_units += false_lost
        c.lost_true_units += lost - false_lost
        c.lost_false_revenue_usd += false_lost * price
        c.lost_true_revenue_usd += (lost - false_lost) * price

    def sold(self, channel: str, units: int, price: float) -> None:
        c = self.ch[channel]
        c.orders += 1
        c.units_sold += units
        c.revenue_usd += units * price

    def oversold(self, channel: str, units: int, price: float) -> None:
        c = self.ch[channel]
        c.orders += 1
        c.cancelled_orders += 1
        c.oversold_units += units
        c.oversold_revenue_usd += units * price

    def latency(self, channel: str, klass: str, latency_ms: int) -> None:
        c = self.ch[channel]
        c.latencies_ms.append(latency_ms)
        if klass == "critical":
            c.critical_latencies_ms.append(latency_ms)

    def api(self, calls: int, http_429: int) -> None:
        self.worker_steps += 1
        self.calls += calls
        self.http_429 += http_429


# ---------------------------------------------------------------------------------------------- sections

SectionFn = Callable[[Recorder, Mapping[str, Any]], dict[str, Any]]
METRIC_SECTIONS: dict[str, SectionFn] = {}


def metric_section(name: str) -> Callable[[SectionFn], SectionFn]:
    """Register a metrics section (``fn(recorder, final_state) -> dict``); later issues add theirs."""

    def deco(fn: SectionFn) -> SectionFn:
        METRIC_SECTIONS[name] = fn
        return fn

    return deco


def r4(x: float) -> float:
    return round(float(x), 4)


def pct(part: float, whole: float) -> float:
    return r4(100 * part / whole) if whole else 0.0


def percentile(values: list[int], q: float) -> int | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(q * len(ordered) + 0.999999) - 1))]


def _sum(rec: Recorder, attr: str) -> Any:
    return sum(getattr(c, attr) for c in rec.ch.values())


@metric_section("sales")
def _sales(rec: Recorder, final: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "demand_units": _sum(rec, "demand_units"),
        "orders": _sum(rec, "orders"),
        "units_sold": _sum(rec, "units_sold"),
        "revenue_usd": r4(_sum(rec, "revenue_usd")),
        "held_orders": rec.held,
        "inbound_units_received": rec.inbound_units,
    }


@metric_section("oversell")
def _oversell(rec: Recorder, final: Mapping[str, Any]) -> dict[str, Any]:
    orders = _sum(rec, "orders")
    cancelled = _sum(rec, "cancelled_orders")
    per = {ch: pct(c.cancelled_orders, c.orders) for ch, c in rec.ch.items()}
    return {
        "oversold_units": _sum(rec, "oversold_units"),
        "cancelled_orders": cancelled,
        "cancellation_rate_pct": pct(cancelled, orders),
        "amazon_bar_pct": AMAZON_CANCEL_BAR_PCT,
        "channels_over_bar": sorted(ch for ch, v in per.items() if v >= AMAZON_CANCEL_BAR_PCT),
        "cancelled_revenue_usd": r4(_sum(rec, "oversold_revenue_usd")),
    }


@metric_section("lost_sales")
def _lost(rec: Recorder, final: Mapping[str, Any]) -> dict[str, Any]:
    false_rev = _sum(rec, "lost_false_revenue_usd")
    over_rev = _sum(rec, "oversold_revenue_usd")
    return {
        "truly_out_of_stock_units": _sum(rec, "lost_true_units"),
        "falsely_out_of_stock_units": _sum(rec, "lost_false_units"),
        "truly_out_of_stock_revenue_usd": r4(_sum(rec, "lost_true_revenue_usd")),
        "falsely_out_of_stock_revenue_usd": r4(false_rev),
        "lost_revenue_usd": r4(false_rev + over_rev),
        "note": "lost_revenue_usd = demand turned away while stock existed + cancelled oversold orders",
    }


@metric_section("stockouts")
def _stockouts(rec: Recorder, final: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "listing_hours_shown_zero_truly_out": r4(_sum(rec, "zero_true_ms") / HOUR_MS),
        "listing_hours_shown_zero_falsely": r4(_sum(rec, "zero_false_ms") / HOUR_MS),
    }


@metric_section("accuracy")
def _accuracy(rec: Recorder, final: Mapping[str, Any]) -> dict[str, Any]:
    span = max(1, rec.last_ms - rec.start_ms)
    keys = sum(c.keys for c in rec.ch.values()) or 1
    return {
        "listings": keys,
        "time_weighted_accuracy_pct": r4(100 * (1 - _sum(rec, "mismatch_ms") / (keys * span))),
        "phantom_unit_hours": r4(_sum(rec, "phantom_unit_ms") / HOUR_MS),
        "mean_phantom_units": r4(_sum(rec, "phantom_unit_ms") / span),
        "final_mismatched_listings": _sum(rec, "mismatched"),
        "note": "a listing is accurate when the channel shows exactly Accord's true ATS for it",
    }


def _hist(values: list[int]) -> dict[str, int]:
    out: dict[str, int] = {}
    for le in LATENCY_BUCKETS_MS:
        out[f"le_{le}"] = 0
    out["inf"] = 0
    for v in values:
        for le in LATENCY_BUCKETS_MS:
            if v <= le:
                out[f"le_{le}"] += 1
                break
        else:
            out["inf"] += 1
    return out


@metric_section("latency")
def _latency(rec: Recorder, final: Mapping[str, Any]) -> dict[str, Any]:
    every: list[int] = []
    critical: list[int] = []
    for c in rec.ch.values():
        every.extend(c.latencies_ms)
        critical.extend(c.critical_latencies_ms)
    return {
        "acked_updates": len(every),
        "p50_ms": percentile(every, 0.5),
        "p90_ms": percentile(every, 0.9),
        "p99_ms": percentile(every, 0.99),
        "max_ms": max(every) if every else None,
        "critical_p50_ms": percentile(critical, 0.5),
        "critical_p99_ms": percentile(critical, 0.99),
        "histogram": _hist(every),
    }


@metric_section("api")
def _api(rec: Recorder, final: Mapping[str, Any]) -> dict[str, Any]:
    status: Mapping[str, Any] = final.get("sync_status", {})
    return {
        "calls": rec.calls,
        "http_429": rec.http_429,
        "worker_steps": rec.worker_steps,
        "dead_letters": int(final.get("dead_letters", 0)),
        "queue_depth_at_end": int(final.get("queue_depth", 0)),
        "calls_by_channel": {ch: int(s.get("calls") or 0) for ch, s in sorted(status.items())},
    }


@metric_section("fulfilment")
def _fulfilment(rec: Recorder, final: Mapping[str, Any]) -> dict[str, Any]:
    out = fulfilment_summary(final.get("fulfilment") or {})
    out["returns_units"] = rec.returns_units
    out["note"] = (
        "orders as Accord recorded them: a split shipment is an order shipped in more than one parcel; an SLA hit is "
        "an order shipped in full by its ship-by; returns are counted, not yet restocked"
    )
    return out


@metric_section("channel_health")
def _channel_health(rec: Recorder, final: Mapping[str, Any]) -> dict[str, Any]:
    """Per channel, Accord's own health report (``OrderService.health``) against Amazon's bars."""
    health: Mapping[str, Any] = (final.get("fulfilment") or {}).get("health", {})
    channels: dict[str, Any] = {}
    failing: dict[str, list[str]] = {name: [] for name in AMAZON_BARS}
    for ch, h in sorted(health.items()):
        row: dict[str, Any] = {"orders": h["orders"], "ok": h["ok"]}
        for name, m in sorted(h["metrics"].items()):
            row[f"{name}_pct"] = m["value_pct"]
            if not m["ok"]:
                failing.setdefault(name, []).append(ch)
        channels[ch] = row
    return {
        "bars": {name: bar.describe() for name, bar in sorted(AMAZON_BARS.items())},
        "channels_failing": {name: sorted(chs) for name, chs in sorted(failing.items())},
        "channels": channels,
    }


@metric_section("intake")
def _intake(rec: Recorder, final: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "webhooks_posted": rec.webhooks,
        "order_polls": rec.order_polls,
        "poll_errors": rec.poll_errors,
        "note": "Shopify orders arrive as signed webhooks posted to Accord's API; the other dialects are polled",
    }


@metric_section("invariants")
def _invariants(rec: Recorder, final: Mapping[str, Any]) -> dict[str, Any]:
    return {"incremental_checks": rec.checks, "ledger_replays": rec.verifications, "violations": 0}


@metric_section("channels")
def _channels(rec: Recorder, final: Mapping[str, Any]) -> dict[str, Any]:
    span = max(1, rec.last_ms - rec.start_ms)
    ful: Mapping[str, Any] = (final.get("fulfilment") or {}).get("channels", {})
    out: dict[str, Any] = {}
    for ch, c in rec.ch.items():
        f = ful.get(ch) or {}
        shipped, shipments = int(f.get("shipped_orders", 0)), int(f.get("shipments", 0))
        hits, misses = int(f.get("sla_hits", 0)), int(f.get("sla_misses", 0))
        out[ch] = {
            "shipped_orders": shipped,
            "split_shipment_orders": int(f.get("split_orders", 0)),
            "sla_hits": hits,
            "sla_misses": misses,
            "late_shipment_rate_pct": pct(int(f.get("late_orders", 0)), shipped),
            "valid_tracking_rate_pct": pct(int(f.get("valid_tracking", 0)), shipments),
            "orders": c.orders,
            "units_sold": c.units_sold,
            "cancelled_orders": c.cancelled_orders,
            "cancellation_rate_pct": pct(c.cancelled_orders, c.orders),
            "oversold_units": c.oversold_units,
            "lost_true_units": c.lost_true_units,
            "lost_false_units": c.lost_false_units,
            "stockout_hours_true": r4(c.zero_true_ms / HOUR_MS),
            "stockout_hours_false": r4(c.zero_false_ms / HOUR_MS),
            "accuracy_pct": r4(100 * (1 - c.mismatch_ms / (max(1, c.keys) * span))),
            "latency_p50_ms": percentile(c.latencies_ms, 0.5),
            "latency_p99_ms": percentile(c.latencies_ms, 0.99),
        }
    return out


@metric_section("timeseries")
def _timeseries(rec: Recorder, final: Mapping[str, Any]) -> dict[str, Any]:
    return {"samples": list(rec.series)}


def build_metrics(rec: Recorder, final: Mapping[str, Any]) -> dict[str, Any]:
    return {name: fn(rec, final) for name, fn in sorted(METRIC_SECTIONS.items())}


def dumps(result: Mapping[str, Any]) -> str:
    """The canonical bytes of a result: sorted keys, fixed separators, trailing newline."""
    return json.dumps(result, sort_keys=True, indent=2, ensure_ascii=False) + "\n"
