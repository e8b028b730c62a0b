"""``accord sync status|run``, ``accord reconcile`` and ``accord sandbox serve`` (channel sync, issue 4)."""

from __future__ import annotations

import asyncio
from typing import Annotated

import httpx
import typer
from rich.table import Table

from accord.app.relay import Relay
from accord.bootstrap import App
from accord.cli import JsonOpt, _app, _print_json, bench_cli, cli, out
from accord.sync.orders import OrderIngestor
from accord.sync.store import SyncStore
from accord.sync.subscriber import SyncSubscriber
from accord.sync.worker import Drift, StepReport, SyncWorker, build_connectors

sync_cli = typer.Typer(help="Channel sync: desired state → marketplaces, within each channel's limits.")
sandbox_cli = typer.Typer(help="The local marketplace sandbox.")
cli.add_typer(sync_cli, name="sync", no_args_is_help=True)
cli.add_typer(sandbox_cli, name="sandbox", no_args_is_help=True)


def _ms(v: int | None) -> str:
    return "-" if v is None else str(v)


@sync_cli.command("status")
def sync_status(as_json: JsonOpt = False) -> None:
    """Per channel: queue depth, calls, 429s, p50/p99 propagation latency, drift, dead letters."""
    with _app() as app:
        rows = [s.as_dict() for s in SyncStore(app.db).status()]
    if as_json:
        _print_json({"channels": rows})
        return
    table = Table("channel", "queue", "calls", "429s", "p50 ms", "p99 ms", "drift", "dead letters")
    for r in rows:
        table.add_row(
            r["channel"],
            str(r["queue_depth"]),
            str(r["calls"]),
            str(r["http_429"]),
            _ms(r["latency_p50_ms"]),
            _ms(r["latency_p99_ms"]),
            str(r["drift"]),
            str(r["dead_letters"]),
        )
    out.print(table)


async def _with_worker(app: App, once: bool, steps: int) -> StepReport:
    store = SyncStore(app.db)
    relay = Relay(app.db, [SyncSubscriber(store, app.engine.clock)], app.engine.clock)
    async with httpx.AsyncClient() as client:
        conns = build_connectors(store.endpoints(), client, app.engine.clock)
        worker = SyncWorker(store, conns, app.engine.clock, orders=OrderIngestor(app.engine))
        total = StepReport()
        for _ in range(steps):
            await asyncio.to_thread(relay.drain)
            r = await worker.step()
            total.add(r)
            if once and r.sent == 0:
                break
            if r.sent == 0:
                await asyncio.sleep(0.05)
        return total


@sync_cli.command("run")
def sync_run(
    once: Annotated[bool, typer.Option("--once", help="Send what is due now, then exit.")] = False,
    max_steps: Annotated[int, typer.Option("--max-steps", help="Stop after this many steps.")] = 10_000_000,
) -> None:
    """Run the sync worker: relay availability changes into desired state and send them to every channel."""
    with _app() as app:
        try:
            r = asyncio.run(_with_worker(app, once, 100 if once else max_steps))
        except KeyboardInterrupt:
            return
    out.print(
        f"sent {r.sent}, acked {r.acked}, retried {r.retried}, conflicts {r.conflicts}, parked {r.parked}, "
        f"calls {r.calls}, 429s {r.http_429}, cancellations {r.cancels}"
    )


@cli.command("reconcile")
def reconcile(
    channel: Annotated[str | None, typer.Option("--channel", help="One channel; all when absent.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Pull channel quantities, report drift, re-enqueue the repair and count it."""

    async def go(app: App) -> list[Drift]:
        store = SyncStore(app.db)
        async with httpx.AsyncClient() as client:
            worker = SyncWorker(store, build_connectors(store.endpoints(), client, app.engine.clock), app.engine.clock)
            return await worker.reconcile(channel)

    with _app() as app:
        drifts = asyncio.run(go(app))
    if as_json:
        _print_json(
            {
                "drift": [
                    {"channel": d.channel, "sku": d.sku, "desired": d.desired, "observed": d.observed} for d in drifts
                ]
            }
        )
        return
    for d in drifts:
        out.print(f"{d.channel} {d.sku}: channel shows {d.observed}, Accord wants {d.desired} (re-enqueued)")
    out.print(f"{len(drifts)} drifted keys found and queued for repair")


@sandbox_cli.command("serve")
def sandbox_serve(port: Annotated[int, typer.Option("--port", help="Port on 127.0.0.1.")] = 8765) -> None:
    """Serve the marketplace sandbox on 127.0.0.1 (wall-clock time)."""
    from accord.sandbox.server import serve

    out.print(f"sandbox on http://127.0.0.1:{port} (Ctrl-C to stop)")
    serve(host="127.0.0.1", port=port)


@bench_cli.command("sync")
def bench_sync(
    as_json: JsonOpt = False,
    seconds: Annotated[float, typer.Option("--seconds", help="Length of the flash sale.", min=1, max=600)] = 60.0,
    skus: Annotated[int, typer.Option("--skus", help="SKUs in the catalogue.", min=10, max=20_000)] = 2_000,
    orders_per_s: Annotated[float, typer.Option("--orders-per-s", help="Buyer attempts per second.", min=1)] = 50.0,
    seed: Annotated[int, typer.Option("--seed", help="Seed of stock and sale (both runs).")] = 7,
) -> None:
    """A flash sale on 32 sandbox channels over loopback HTTP: real-time sync vs a 15-minute interval baseline."""
    from accord.sync.bench import SaleConfig, run_sync_bench

    cfg = SaleConfig(seconds=seconds, skus=skus, orders_per_s=orders_per_s, seed=seed)
    result = run_sync_bench(cfg, progress=not as_json)
    if as_json:
        _print_json(result)
        return
    table = Table(
        "channel", "dialect", "changes/s", "budget keys/s", "calls", "429s", "behind", "converged s", "bound s"
    )
    for ch, r in result["channels"].items():
        table.add_row(
            ch,
            r["dialect"],
            str(r["ats_changes_per_s"]),
            str(r["budget_keys_per_s"]),
            str(r["calls"]),
            str(r["http_429"]),
            str(r["behind_at_sale_end"]),
            "-" if r["converged_s"] is None else str(r["converged_s"]),
            str(r["bound_s"]),
        )
    out.print(table)
    keys = (
        "critical_p50_ms",
        "critical_p99_ms",
        "other_p99_ms",
        "calls",
        "calls_min",
        "http_429",
        "oversold_units",
        "baseline_15m_oversold_units",
        "converged_s",
        "orders_attempted",
        "orders_placed",
    )
    for k in keys:
        out.print(f"{k}: {result[k]}")
    out.print(f"goals: {result['goals']}")
    out.print(f"baseline_mode: {result['baseline_mode']}")
