"""``accord sim world``, ``accord simulate`` and ``accord bench sim`` (issue 6). Heavy imports stay inside commands."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

sim_cli = typer.Typer(help="The simulator: a reproducible brand on a virtual clock, sync policies compared.")
POLICY_NAMES = ("realtime", "15m", "6h")


def _bad(message: str) -> typer.Exit:
    Console(stderr=True, highlight=False).print(f"error: {message}", soft_wrap=True)
    return typer.Exit(2)


def _console() -> Console:
    return Console(highlight=False, width=None if sys.stdout.isatty() else 160)


@sim_cli.command("world")
def sim_world(
    seed: Annotated[int, typer.Option("--seed", help="World seed.")] = 7,
    db: Annotated[Path | None, typer.Option("--db", help="Write the world into this SQLite file (fresh).")] = None,
    products: Annotated[int, typer.Option("--products", help="Products (about 10 SKUs each).")] = 200,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Generate the brand for SEED (same seed → same world) and print its summary; --db writes it to SQLite."""
    if products <= 0:
        raise _bad(f"--products must be > 0, got {products}")
    from accord.sim.world import WorldParams, generate_world, install_world

    world = generate_world(seed, WorldParams(products=products))
    summary = world.summary()
    if db is not None:
        if db.exists():
            raise _bad(f"{db} exists; the world goes into a fresh file")
        from accord.app.ports import ManualClock, SequentialIds
        from accord.bootstrap import build_app

        app = build_app(database_url=f"sqlite:///{db}", clock=ManualClock(), ids=SequentialIds(), migrate=True)
        try:
            install_world(app.engine, world)
        finally:
            app.close()
        summary["database"] = str(db)
    if as_json:
        print(json.dumps(summary, sort_keys=True, indent=2))
        return
    out = _console()
    for key, value in summary.items():
        out.print(f"{key:>24}: {value}")


def simulate(
    days: Annotated[int, typer.Option("--days", help="Simulated days (one-minute steps).")] = 14,
    sync: Annotated[str, typer.Option("--sync", help="Sync policy: realtime, 15m or 6h.")] = "realtime",
    seed: Annotated[int, typer.Option("--seed", help="World and demand seed.")] = 7,
    json_path: Annotated[Path | None, typer.Option("--json", help="Write the metrics JSON here.")] = None,
    report: Annotated[Path | None, typer.Option("--report", help="Write the HTML report here.")] = None,
    compare: Annotated[bool, typer.Option("--compare", help="Run all three policies on the seed.")] = False,
    products: Annotated[int, typer.Option("--products", help="Products in the world (about 10 SKUs each).")] = 200,
    orders_per_day: Annotated[
        float | None,
        typer.Option("--orders-per-day", help="Buyer orders per day over all channels, before surges (default 250)."),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar.")] = False,
    folder: Annotated[
        Path | None, typer.Option("--dir", help="Keep the runs' SQLite databases here (default: a temporary folder).")
    ] = None,
    serve: Annotated[
        bool,
        typer.Option("--serve", help="Afterwards serve the API and the sandbox with the (real-time) run's state."),
    ] = False,
    port: Annotated[int | None, typer.Option("--port", help="API port for --serve (0: any free port).")] = None,
    sandbox_port: Annotated[int, typer.Option("--sandbox-port", help="Sandbox port for --serve (0: any free).")] = 8765,
) -> None:
    """Run the real engine, sync and sandbox on a virtual clock and measure what the sync policy costs."""
    for name, value in (("--port", port), ("--sandbox-port", sandbox_port)):
        if value is not None and not 0 <= value <= 65535:
            raise _bad(f"{name} must be 0-65535, got {value}")
    if sync not in POLICY_NAMES:
        raise _bad(f"--sync must be one of {', '.join(POLICY_NAMES)}, got {sync!r}")
    if days <= 0:
        raise _bad(f"--days must be > 0, got {days}")
    if products <= 0:
        raise _bad(f"--products must be > 0, got {products}")
    if orders_per_day is not None and not orders_per_day > 0:
        raise _bad(f"--orders-per-day must be > 0, got {orders_per_day}")
    import tempfile
    from contextlib import ExitStack
    from dataclasses import replace

    from accord.sim.compare import run_comparison, run_with_progress, write_outputs
    from accord.sim.report import rich_table
    from accord.sim.runner import InvariantViolation, SimConfig, Simulation
    from accord.sim.world import WorldParams

    out = _console()
    params = WorldParams(products=products)
    if orders_per_day is not None:
        params = replace(params, orders_per_day=orders_per_day)
    cfg = SimConfig(seed=seed, days=days, policy=sync, params=params)
    keep: dict[str, Simulation] = {}
    with ExitStack() as stack:
        where = folder
        if where is None and serve:  # the served database lives until the servers stop
            where = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="accord-sim-")))
        if where is not None:
            where.mkdir(parents=True, exist_ok=True)
        try:
            if compare:
                results = run_comparison(cfg, None if quiet else out, workdir=where, keep=keep)
            else:
                url = None
                if where is not None:
                    db = where / f"sim-{seed}-{sync}.db"
                    for suffix in ("", "-wal", "-shm"):
                        Path(f"{db}{suffix}").unlink(missing_ok=True)
                    url = f"sqlite:///{db}"
                results = [run_with_progress(cfg, None if quiet else out, url, keep)]
        except InvariantViolation as exc:
            Console(stderr=True, highlight=False).print(f"error: {exc}", soft_wrap=True)
            raise typer.Exit(1) from None
        write_outputs(results, json_path, report)
        out.print(rich_table(results))
        for label, path in (("metrics", json_path), ("report", report)):
            if path is not None:
                out.print(f"{label}: {path}")
        if serve:
            from accord.sim.serve import serve_run

            sim = keep["realtime" if compare else sync]
            serve_run(sim.database_url, sim.sandbox_app, out, api_port=port, sandbox_port=sandbox_port)


def bench_sim(
    days: Annotated[int, typer.Option("--days", help="Simulated days.")] = 14,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False,
) -> None:
    """Wall time of the real-time policy over DAYS virtual days; keys days, wall_s_realtime, events, peak_rss_mb."""
    if days <= 0:
        raise _bad(f"--days must be > 0, got {days}")
    from accord.sim.compare import run_sim_bench

    result: dict[str, Any] = run_sim_bench(days=days)
    if as_json:
        print(json.dumps(result, sort_keys=True))
        return
    out = _console()
    for key, value in sorted(result.items()):
        out.print(f"{key:>20}: {value}")


def register(cli: typer.Typer) -> None:
    """Attach the simulator commands to the root CLI (``accord sim``, ``accord simulate``, ``accord bench sim``)."""
    cli.add_typer(sim_cli, name="sim", no_args_is_help=True)
    cli.command("simulate")(simulate)
    for group in cli.registered_groups:
        if group.name == "bench" and group.typer_instance is not None:
            group.typer_instance.command("sim")(bench_sim)
            break
