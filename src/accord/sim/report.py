"""The comparison report: one self-contained HTML file (inline SVG charts, inline CSS, no scripts, no CDN) and a
Rich table. Report sections are a registry too (:func:`report_section`), so later issues can add theirs."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from html import escape
from typing import Any

from rich.table import Table

from accord.domain.orders import AMAZON_BARS
from accord.sim.metrics import AMAZON_CANCEL_BAR_PCT

LATE_BAR_PCT = AMAZON_BARS["late_shipment_rate"].threshold_pct
TRACKING_BAR_PCT = AMAZON_BARS["valid_tracking_rate"].threshold_pct

Results = Sequence[Mapping[str, Any]]  # one run result per policy, in display order
COLOURS = ("#1b7f5b", "#d08c1a", "#b3261e", "#3366aa", "#7a4fa0")

ReportFn = Callable[[Results], str]
REPORT_SECTIONS: list[tuple[str, ReportFn]] = []


def report_section(title: str) -> Callable[[ReportFn], ReportFn]:
    def deco(fn: ReportFn) -> ReportFn:
        REPORT_SECTIONS.append((title, fn))
        return fn

    return deco


def _m(r: Mapping[str, Any], section: str, key: str) -> Any:
    return r["metrics"][section][key]


def _f(r: Mapping[str, Any], key: str) -> Any:
    """A fulfilment metric (0 for results written before orders were fulfilled in the run)."""
    return r["metrics"].get("fulfilment", {}).get(key, 0)


def summary_rows(results: Results) -> list[dict[str, Any]]:
    rows = []
    for r in results:
        rows.append(
            {
                "policy": r["policy"],
                "orders": _m(r, "sales", "orders"),
                "units_sold": _m(r, "sales", "units_sold"),
                "oversold_units": _m(r, "oversell", "oversold_units"),
                "cancellation_rate_pct": _m(r, "oversell", "cancellation_rate_pct"),
                "lost_revenue_usd": _m(r, "lost_sales", "lost_revenue_usd"),
                "false_oos_units": _m(r, "lost_sales", "falsely_out_of_stock_units"),
                "accuracy_pct": _m(r, "accuracy", "time_weighted_accuracy_pct"),
                "phantom_unit_hours": _m(r, "accuracy", "phantom_unit_hours"),
                "latency_p50_ms": _m(r, "latency", "p50_ms"),
                "latency_p99_ms": _m(r, "latency", "p99_ms"),
                "calls": _m(r, "api", "calls"),
                "http_429": _m(r, "api", "http_429"),
                "shipped_orders": _f(r, "shipped_orders"),
                "split_shipment_orders": _f(r, "split_shipment_orders"),
                "sla_hits": _f(r, "sla_hits"),
                "sla_misses": _f(r, "sla_misses"),
                "late_shipment_rate_pct": _f(r, "late_shipment_rate_pct"),
                "valid_tracking_rate_pct": _f(r, "valid_tracking_rate_pct"),
            }
        )
    return rows


def _ms(v: Any) -> str:
    if v is None:
        return "–"
    v = int(v)
    if v < 60_000:
        return f"{v / 1000:.1f} s"
    if v < 3_600_000:
        return f"{v / 60_000:.1f} min"
    return f"{v / 3_600_000:.1f} h"


def rich_table(results: Results) -> Table:
    table = Table(title="Accord simulator: real-time vs interval sync (same seed, same demand)")
    for col, justify in (
        ("sync", "left"),
        ("orders", "right"),
        ("oversold units", "right"),
        (f"cancel rate (bar {AMAZON_CANCEL_BAR_PCT} %)", "right"),
        ("lost revenue $", "right"),
        ("falsely OOS units", "right"),
        ("accuracy %", "right"),
        ("p50 / p99 latency", "right"),
        ("API calls / 429", "right"),
        ("split / SLA hit / miss", "right"),
        (f"late ship (bar {LATE_BAR_PCT:g} %)", "right"),
        (f"valid tracking (bar {TRACKING_BAR_PCT:g} %)", "right"),
    ):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for row in summary_rows(results):
        rate = float(row["cancellation_rate_pct"])
        mark = "[red]" if rate >= AMAZON_CANCEL_BAR_PCT else "[green]"
        table.add_row(
            str(row["policy"]),
            str(row["orders"]),
            str(row["oversold_units"]),
            f"{mark}{rate:.2f} %[/]",
            f"{float(row['lost_revenue_usd']):,.0f}",
            str(row["false_oos_units"]),
            f"{float(row['accuracy_pct']):.2f}",
            f"{_ms(row['latency_p50_ms'])} / {_ms(row['latency_p99_ms'])}",
            f"{row['calls']} / {row['http_429']}",
            f"{row['split_shipment_orders']} / {row['sla_hits']} / {row['sla_misses']}",
            _rate(float(row["late_shipment_rate_pct"]), float(row["late_shipment_rate_pct"]) < LATE_BAR_PCT),
            _rate(float(row["valid_tracking_rate_pct"]), float(row["valid_tracking_rate_pct"]) >= TRACKING_BAR_PCT),
        )
    return table


def _rate(value: float, ok: bool) -> str:
    return f"{'[green]' if ok else '[red]'}{value:.2f} %[/]"


# ---------------------------------------------------------------------------------------------- SVG


def bar_chart(
    title: str, labels: Sequence[str], values: Sequence[float], unit: str = "", line: float | None = None
) -> str:
    w, h, pad, top = 420, 220, 40, 30
    vmax = max([*values, line or 0.0, 1e-9])
    bw = (w - 2 * pad) / max(1, len(values))
    parts = [f'<svg width="{w}" height="{h}" role="img">']
    parts.append(f'<text x="{w / 2}" y="18" text-anchor="middle" class="t">{escape(title)}</text>')
    for i, (lab, v) in enumerate(zip(labels, values, strict=True)):
        bh = (h - top - pad) * (v / vmax)
        x = pad + i * bw + bw * 0.15
        y = h - pad - bh
        colour = COLOURS[i % len(COLOURS)]
        parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bw * 0.7:.1f}" height="{bh:.1f}" fill="{colour}"/>')
        parts.append(f'<text x="{x + bw * 0.35:.1f}" y="{y - 4:.1f}" text-anchor="middle">{v:,.2f}{unit}</text>')
        parts.append(f'<text x="{x + bw * 0.35:.1f}" y="{h - pad + 16}" text-anchor="middle">{escape(lab)}</text>')
    if line is not None:
        ly = h - pad - (h - top - pad) * (line / vmax)
        parts.append(
            f'<line x1="{pad}" x2="{w - pad}" y1="{ly:.1f}" y2="{ly:.1f}" stroke="#b3261e" stroke-dasharray="5,4"/>'
        )
        parts.append(f'<text x="{w - pad}" y="{ly - 4:.1f}" text-anchor="end" fill="#b3261e">bar {line}{unit}</text>')
    parts.append(f'<line x1="{pad}" x2="{w - pad}" y1="{h - pad}" y2="{h - pad}" stroke="#444"/>')
    parts.append("</svg>")
    return "".join(parts)


def line_chart(title: str, series: Mapping[str, Sequence[tuple[float, float]]], y_label: str) -> str:
    w, h, pad = 860, 260, 48
    xs = [x for pts in series.values() for x, _ in pts] or [0.0, 1.0]
    ys = [y for pts in series.values() for _, y in pts] or [0.0, 1.0]
    x0, x1 = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
    y0, y1 = min(ys), max(ys) if max(ys) > min(ys) else min(ys) + 1

    def px(x: float) -> float:
        return pad + (w - 2 * pad) * (x - x0) / (x1 - x0)

    def py(y: float) -> float:
        return h - pad - (h - 2 * pad) * (y - y0) / (y1 - y0)

    parts = [f'<svg width="{w}" height="{h}" role="img">']
    parts.append(f'<text x="{w / 2}" y="18" text-anchor="middle" class="t">{escape(title)}</text>')
    parts.append(f'<line x1="{pad}" x2="{w - pad}" y1="{h - pad}" y2="{h - pad}" stroke="#444"/>')
    parts.append(f'<line x1="{pad}" x2="{pad}" y1="{pad}" y2="{h - pad}" stroke="#444"/>')
    parts.append(f'<text x="{pad}" y="{pad - 6}">{escape(y_label)}: {y1:,.2f}</text>')
    parts.append(f'<text x="{pad}" y="{h - pad + 28}">{y0:,.2f} · hour {x0:.0f}</text>')
    parts.append(f'<text x="{w - pad}" y="{h - pad + 28}" text-anchor="end">hour {x1:.0f}</text>')
    for i, (name, pts) in enumerate(series.items()):
        colour = COLOURS[i % len(COLOURS)]
        path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in pts)
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.6" points="{path}"/>')
        parts.append(f'<text x="{w - pad - 150}" y="{pad + 14 * i}" fill="{colour}">— {escape(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


# ---------------------------------------------------------------------------------------------- sections


@report_section("Summary")
def _summary(results: Results) -> str:
    rows = summary_rows(results)
    if not rows:
        return "<p>No runs.</p>"
    cols = list(rows[0])
    head = "".join(f"<th>{escape(c)}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f"<td>{escape(str(r[c]))}</td>" for c in cols) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


@report_section("Oversells, cancellations and lost revenue")
def _bars(results: Results) -> str:
    labels = [str(r["policy"]) for r in results]
    rows = summary_rows(results)
    return "".join(
        [
            bar_chart("Oversold units", labels, [float(r["oversold_units"]) for r in rows]),
            bar_chart(
                "Cancellation rate vs Amazon's bar",
                labels,
                [float(r["cancellation_rate_pct"]) for r in rows],
                " %",
                line=AMAZON_CANCEL_BAR_PCT,
            ),
            bar_chart("Lost revenue (USD)", labels, [float(r["lost_revenue_usd"]) for r in rows]),
            bar_chart("Listing accuracy (time-weighted)", labels, [float(r["accuracy_pct"]) for r in rows], " %"),
        ]
    )


@report_section("Over time")
def _series(results: Results) -> str:
    def pts(r: Mapping[str, Any], key: str) -> list[tuple[float, float]]:
        return [(float(s["hour"]), float(s[key])) for s in r["metrics"]["timeseries"]["samples"]]

    acc = {str(r["policy"]): pts(r, "accuracy_pct") for r in results}
    phantom = {str(r["policy"]): pts(r, "phantom_units") for r in results}
    over = {str(r["policy"]): pts(r, "oversold_units") for r in results}
    return (
        line_chart("Share of listings showing the true ATS", acc, "%")
        + line_chart("Phantom units (shown sellable, not there)", phantom, "units")
        + line_chart("Cumulative oversold units", over, "units")
    )


@report_section("Cancellation rate per channel")
def _per_channel(results: Results) -> str:
    if not results:
        return ""
    channels = sorted(results[0]["metrics"]["channels"])
    head = "<th>channel</th>" + "".join(f"<th>{escape(str(r['policy']))}</th>" for r in results)
    rows = []
    for ch in channels:
        cells = []
        for r in results:
            c = r["metrics"]["channels"][ch]
            rate = float(c["cancellation_rate_pct"])
            cls = ' class="bad"' if rate >= AMAZON_CANCEL_BAR_PCT else ""
            cells.append(f"<td{cls}>{rate:.2f} % ({c['cancelled_orders']}/{c['orders']})</td>")
        rows.append(f"<tr><td>{escape(ch)}</td>{''.join(cells)}</tr>")
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


FULFILMENT_ROWS: tuple[tuple[str, str], ...] = (
    ("lifecycle_orders", "orders in the lifecycle"),
    ("shipped_orders", "orders shipped"),
    ("shipments", "parcels"),
    ("split_shipment_orders", "split shipments (orders in > 1 parcel)"),
    ("shipments_per_shipped_order", "parcels per shipped order"),
    ("sla_hits", "SLA hits (shipped in full by ship-by)"),
    ("sla_misses", "SLA misses (shipped late)"),
    ("sla_open_breached", "open past ship-by at the end"),
    ("late_shipment_rate_pct", f"late-shipment rate % (bar < {LATE_BAR_PCT:g})"),
    ("valid_tracking_rate_pct", f"valid-tracking rate % (bar ≥ {TRACKING_BAR_PCT:g})"),
    ("capacity_deferrals", "parcels held back by pick capacity"),
    ("pick_failures", "failed picks"),
    ("reroutes", "re-routed after a failed pick"),
    ("cancelled_after_pick_failure", "cancelled after a failed pick"),
    ("delivered_orders", "delivered"),
    ("delivery_hours_p50", "placed → delivered, p50 hours"),
    ("confirmations_sent", "ship confirmations sent to channels"),
    ("cancellations_sent", "cancellations sent to channels"),
)


@report_section("Fulfilment: shipments, SLA and tracking")
def _fulfilment(results: Results) -> str:
    if not results:
        return ""
    head = "<th>metric</th>" + "".join(f"<th>{escape(str(r['policy']))}</th>" for r in results)
    rows = []
    for key, label in FULFILMENT_ROWS:
        cells = "".join(f"<td>{escape(str(r['metrics'].get('fulfilment', {}).get(key, '–')))}</td>" for r in results)
        rows.append(f"<tr><td>{escape(label)}</td>{cells}</tr>")
    note = escape(str(results[0]["metrics"].get("fulfilment", {}).get("note", "")))
    return f"<table><tr>{head}</tr>{''.join(rows)}</table><p>{note}</p>"


@report_section("Channel health against Amazon's bars")
def _health(results: Results) -> str:
    if not results or "channel_health" not in results[0]["metrics"]:
        return ""
    metrics = (
        ("cancellation_rate_pct", "cancel", AMAZON_BARS["cancellation_rate"]),
        ("late_shipment_rate_pct", "late", AMAZON_BARS["late_shipment_rate"]),
        ("valid_tracking_rate_pct", "tracking", AMAZON_BARS["valid_tracking_rate"]),
    )
    head = "<th>channel</th>" + "".join(
        f"<th>{escape(str(r['policy']))}: {label} ({escape(bar.describe())})</th>"
        for r in results
        for _key, label, bar in metrics
    )
    rows = []
    for ch in sorted(results[0]["metrics"]["channel_health"]["channels"]):
        cells = []
        for r in results:
            c = r["metrics"]["channel_health"]["channels"].get(ch, {})
            for key, _label, bar in metrics:
                v = c.get(key)
                if v is None:
                    cells.append("<td>–</td>")
                    continue
                cls = "" if bar.passes(float(v)) else ' class="bad"'
                cells.append(f"<td{cls}>{float(v):.2f}</td>")
        rows.append(f"<tr><td>{escape(ch)}</td>{''.join(cells)}</tr>")
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#222;max-width:1100px}
h1{font-size:22px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}
th{background:#f4f4f4}td:first-child{text-align:left}td.bad{color:#b3261e;font-weight:600}
svg{margin:6px 10px 6px 0;font-size:11px}svg .t{font-size:13px;font-weight:600}
"""


def render_html(results: Results, title: str = "Accord simulator comparison") -> str:
    seed = results[0]["seed"] if results else "?"
    days = results[0]["days"] if results else "?"
    world = results[0]["world"] if results else {}
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f"<p>Seed {escape(str(seed))}, {escape(str(days))} simulated days, {world.get('skus', '?')} SKUs, "
        f"{world.get('channels', '?')} channels. The same buyers arrive in every run; only the sync policy differs. "
        "Amazon's cancellation-rate bar is "
        f"{AMAZON_CANCEL_BAR_PCT} %.</p>",
    ]
    for name, fn in REPORT_SECTIONS:
        parts.append(f"<h2>{escape(name)}</h2>{fn(results)}")
    parts.append("</body></html>\n")
    return "".join(parts)
