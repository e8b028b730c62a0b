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
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar.")] = False,
) -> None:
    """Run the real engine, sync and sandbox on a virtual clock and measure what the sync policy costs."""
    if sync not in POLICY_NAMES:
        raise _bad(f"--sync must be one of {', '.join(POLICY_NAMES)}, got {sync!r}")
    if days <= 0:
        raise _bad(f"--days must be > 0, got {days}")
    if products <= 0:
        raise _bad(f"--products must be > 0, got {products}")
    from accord.sim.compare import run_comparison, run_with_progress, write_outputs
    from accord.sim.report import rich_table
    from accord.sim.runner import InvariantViolation, SimConfig
    from accord.sim.world import WorldParams

    out = _console()
    cfg = SimConfig(seed=seed, days=days, policy=sync, params=WorldParams(products=products))
    try:
        if compare:
            results = run_comparison(cfg, None if quiet else out)
        else:
            results = [run_with_progress(cfg, None if quiet else out)]
    except InvariantViolation as exc:
        Console(stderr=True, highlight=False).print(f"error: {exc}", soft_wrap=True)
        raise typer.Exit(1) from None
    write_outputs(results, json_path, report)
    out.print(rich_table(results))
    for label, path in (("metrics", json_path), ("report", report)):
        if path is not None:
            out.print(f"{label}: {path}")


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
