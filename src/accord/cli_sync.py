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
from accord.domain.errors import NotFound
from accord.orders.service import channel_intake
from accord.sync.content import content_deriver
from accord.sync.sendback import send_back_counts
from accord.sync.store import SyncStore
from accord.sync.subscriber import SyncSubscriber, enqueue_content
from accord.sync.worker import Drift, StepReport, SyncWorker, build_connectors

CONTENT_CHUNK = 100  # products per transaction of ``accord sync content``
sync_cli = typer.Typer(help="Channel sync: desired state → marketplaces, within each channel's limits.")
sandbox_cli = typer.Typer(help="The local marketplace sandbox.")
cli.add_typer(sync_cli, name="sync", no_args_is_help=True)
cli.add_typer(sandbox_cli, name="sandbox", no_args_is_help=True)


def _ms(v: int | None) -> str:
    return "-" if v is None else str(v)


@sync_cli.command("status")
def sync_status(as_json: JsonOpt = False) -> None:
    """Per channel: queue depth, calls, 429s, p50/p99 propagation latency, drift, dead letters, and what goes back
    after orders (ship confirmations pending/sent/dead/covered, cancellations pending/sent/dead)."""
    with _app() as app:
        rows = [s.as_dict() for s in SyncStore(app.db).status()]
        back = send_back_counts(app.db)
    zero = {"pending": 0, "sent": 0, "dead": 0}
    for r in rows:  # ship confirmations and cancellations going back to the channel, by state
        r["shipments"] = {**zero, "covered": 0, **back.get(r["channel"], {}).get("shipments", {})}
        r["cancellations"] = {**zero, "submitted": 0, **back.get(r["channel"], {}).get("cancellations", {})}
    if as_json:
        _print_json({"channels": rows})
        return
    table = Table(
        "channel", "queue", "calls", "429s", "p50 ms", "p99 ms", "drift", "repaired", "dead letters",
        "ships p/s/d/c", "cancels p/s/d",
    )  # fmt: skip
    for r in rows:
        sh, cc = r["shipments"], r["cancellations"]
        table.add_row(
            r["channel"],
            str(r["queue_depth"]),
            str(r["calls"]),
            str(r["http_429"]),
            _ms(r["latency_p50_ms"]),
            _ms(r["latency_p99_ms"]),
            str(r["drift"]),
            str(r["drift_repaired"]),
            str(r["dead_letters"]),
            f"{sh['pending']}/{sh['sent']}/{sh['dead']}/{sh['covered']}",
            f"{cc['pending'] + cc['submitted']}/{cc['sent']}/{cc['dead']}",  # pending: or in a feed awaiting its report
        )
    out.print(table)


@sync_cli.command("content")
def sync_content(
    product: Annotated[str | None, typer.Option("--product", help="One PIM product; all when absent.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Queue each channel's desired price and content from the PIM (what differs from what was sent): after a
    channel endpoint is added, or to send parked price/content keys again once their cause is fixed (edits in the
    PIM queue what changed anyway)."""
    with _app() as app:
        deriver = content_deriver(app.db, app.engine)
        store = SyncStore(app.db)
        with app.db.read() as tx:
            ids = deriver.product_ids(tx)
        if product is not None:
            if product not in ids:
                raise NotFound("product", product)
            ids = [product]
        variants = pending = 0
        for i in range(0, len(ids), CONTENT_CHUNK):
            now = app.engine.clock.now_ms()
            with app.db.tx() as tx:
                desired = deriver.for_products(tx, ids[i : i + CONTENT_CHUNK])
                pending += enqueue_content(store, tx, desired, now, now, revive=True)
                variants += len(desired)
    if as_json:
        _print_json({"products": len(ids), "variants": variants, "pending": pending})
        return
    out.print(f"{len(ids)} products, {variants} variants: {pending} price/content keys pending")


@sync_cli.command("deadletters")
def sync_dead_letters(
    channel: Annotated[str | None, typer.Option("--channel", help="One channel; all when absent.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Parked sends (quantity, price, content): channel, SKU, field, reason and the marketplace's answer."""
    with _app() as app:
        rows = SyncStore(app.db).dead_letters(channel)
    if as_json:
        _print_json({"dead_letters": [d.as_dict() for d in rows]})
        return
    table = Table("id", "channel", "sku", "field", "attempts", "reason", "error")
    for d in rows:
        table.add_row(str(d.id), d.channel, d.sku, d.field, str(d.attempts), d.reason, d.error[:80])
    out.print(table)


async def _with_worker(app: App, once: bool, steps: int) -> StepReport:
    store = SyncStore(app.db)
    subscriber = SyncSubscriber(store, app.engine.clock, content_deriver(app.db, app.engine))
    relay = Relay(app.db, [subscriber], app.engine.clock)
    async with httpx.AsyncClient() as client:
        conns = build_connectors(store.endpoints(), client, app.engine.clock)
        worker = SyncWorker(store, conns, app.engine.clock, orders=channel_intake(app.engine))
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
    for o in result.get("oversold_detail") or []:  # the full timeline is in --json
        out.print(
            f"oversold: {o['channel']} ({o['dialect']}) {o['sku']} x{o['qty']} at {o['sold_at_ms']} ms: "
            f"the channel showed {o['channel_showed']}, true ATS {o['true_ats']}"
        )
    out.print(f"goals: {result['goals']}")
    out.print(f"baseline_mode: {result['baseline_mode']}")


from accord import cli_send_back as _cli_send_back  # noqa: E402, F401  (accord sync shipments | cancellations)
