"""Run the three sync policies on one seed, write the HTML report, print the table; plus the sim bench."""

from __future__ import annotations

import resource
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from accord.sim.metrics import dumps
from accord.sim.report import render_html, rich_table
from accord.sim.runner import POLICIES, SimConfig, Simulation, run_scenario
from accord.sim.world import WorldParams

DEMO_DAYS = 14
DEMO_SEED = 42


def _sqlite_url(directory: Path, name: str) -> str:
    return f"sqlite:///{directory / name}"


def run_with_progress(
    cfg: SimConfig,
    console: Console | None,
    database_url: str | None = None,
    keep: dict[str, Simulation] | None = None,
) -> dict[str, Any]:
    """One scenario with a Rich progress bar (quiet when ``console`` is None)."""
    if console is None:
        return run_scenario(cfg, database_url, keep=keep)
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("virtual min"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as bar:
        task = bar.add_task(f"{cfg.policy:>8} sync, seed {cfg.seed}", total=cfg.days * 1440)

        def tick(done: int, total: int) -> None:
            if done % 60 == 0 or done == total:
                bar.update(task, completed=done)

        return run_scenario(cfg, database_url, progress=tick, keep=keep)


def run_comparison(
    base: SimConfig,
    console: Console | None,
    *,
    policies: Sequence[str] = tuple(POLICIES),
    workdir: Path | None = None,
    keep: dict[str, Simulation] | None = None,
) -> list[dict[str, Any]]:
    """The same seed and demand under each policy, each in a fresh SQLite file."""
    results = []
    with tempfile.TemporaryDirectory(prefix="accord-sim-") as tmp:
        where = workdir or Path(tmp)
        where.mkdir(parents=True, exist_ok=True)
        for policy in policies:
            db = where / f"sim-{base.seed}-{policy}.db"
            for suffix in ("", "-wal", "-shm"):
                Path(f"{db}{suffix}").unlink(missing_ok=True)
            url = _sqlite_url(where, db.name)
            results.append(run_with_progress(replace(base, policy=policy), console, url, keep))
    return results


def write_outputs(results: list[dict[str, Any]], json_path: Path | None, report_path: Path | None) -> None:
    if json_path is not None:
        payload: Any = results[0] if len(results) == 1 else {"runs": results}
        json_path.write_text(dumps(payload), encoding="utf-8")
    if report_path is not None:
        report_path.write_text(render_html(results), encoding="utf-8")


def run_demo_comparison(
    path: Path | str,
    console: Console,
    days: int = DEMO_DAYS,
    seed: int = DEMO_SEED,
    params: WorldParams | None = None,
    keep: dict[str, Simulation] | None = None,
) -> Path:
    """The main job: the demo world in fresh SQLite files under ``path`` (a directory), all three policies with
    progress shown, the table printed, and the report written to ``path/sim-report.html`` (returned)."""
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    cfg = SimConfig(seed=seed, days=days, params=params or WorldParams())
    console.print(
        f"[bold]Simulating {days} days of the demo brand (seed {seed}) under real-time, 15-minute and 6-hour sync"
    )
    results = run_comparison(cfg, console, workdir=out, keep=keep)
    report = out / "sim-report.html"
    write_outputs(results, out / "sim-results.json", report)
    console.print(rich_table(results))
    console.print(f"report: {report}")
    return report


def run_sim_bench(days: int = 14, seed: int = 7, progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """``accord bench sim``: wall time of the real-time policy over ``days`` virtual days (goal: 14 days ≤ 60 s)."""
    started = time.perf_counter()
    result = run_scenario(SimConfig(seed=seed, days=days, policy="realtime"), progress=progress)
    wall = time.perf_counter() - started
    m = result["metrics"]
    events = (
        int(m["sales"]["demand_units"])
        + int(m["latency"]["acked_updates"])
        + int(m["api"]["calls"])
        + int(m["fulfilment"]["shipments"])
    )
    return {
        "days": days,
        "seed": seed,
        "wall_s_realtime": round(wall, 2),
        "events": events,
        "orders": m["sales"]["orders"],
        "shipments": m["fulfilment"]["shipments"],
        "order_polls": m["intake"]["order_polls"],
        "webhooks_posted": m["intake"]["webhooks_posted"],
        "api_calls": m["api"]["calls"],
        "skus": result["world"]["skus"],
        "channels": result["world"]["channels"],
        "oversold_units": m["oversell"]["oversold_units"],
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "goal_wall_s_14_days": 60,
    }
