"""``build_app`` wires channel sync when endpoints are configured; the worker loop sends over real HTTP."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from accord.bootstrap import build_app, run_sync_worker
from accord.sandbox.app import channel_config
from accord.sandbox.server import running_server

from .harness import Harness


@pytest.fixture
def h(backend: Any) -> Iterator[Harness]:
    harness = Harness(backend.url, {"A": 4, "B": 2}, channels=(("amz", "amazon"), ("eb", "ebay")), shown={"B": 3})
    try:
        yield harness
    finally:
        harness.close()


def test_sync_is_off_without_endpoints(backend: Any) -> None:
    app = build_app(database_url=backend.url)
    try:
        assert app.sync is None
        assert "channel-sync" not in app.relay.subscribers
        assert app.start_sync_worker(threading.Event()) is None
    finally:
        app.close()


def test_sync_is_wired_when_endpoints_exist_and_can_be_turned_off(h: Harness) -> None:
    on = build_app(database_url=_url(h), clock=h.clock)
    off = build_app(database_url=_url(h), clock=h.clock, sync=False)
    try:
        assert on.sync is not None and "channel-sync" in on.relay.subscribers
        assert off.sync is None and "channel-sync" not in off.relay.subscribers
    finally:
        on.close()
        off.close()


def test_the_wired_relay_and_worker_bring_channels_to_ats(h: Harness) -> None:
    """``start_sync_worker`` (what ``accord serve`` runs): per-channel serve loops in a thread, stopped by a flag."""
    want = [4, 0, 4, 0]
    with running_server(h.sandbox_app) as base:
        for ch in ("amz", "eb"):
            h.store.set_endpoint(channel_config(h.sandbox, ch, base), h.clock.now_ms())
        app = build_app(database_url=_url(h), clock=h.clock)
        h.reserve("B", 2, "sold-out")  # B drops to zero
        stop = threading.Event()
        thread: threading.Thread | None = None
        try:
            app.relay.drain()  # availability changes → desired state, through the wired subscriber
            thread = app.start_sync_worker(stop, idle_s=0.01)
            assert thread is not None
            deadline = time.monotonic() + 30  # a bound on waiting, not a timing assertion
            while _shown(h) != want and time.monotonic() < deadline:
                time.sleep(0.02)
        finally:
            stop.set()
            if thread is not None:
                thread.join(timeout=30)  # before the database closes under it
            alive = thread is not None and thread.is_alive()
            app.close()
        assert not alive  # the stop flag ends every channel loop
    assert _shown(h) == want


def test_a_stopped_worker_does_not_step(h: Harness) -> None:
    app = build_app(database_url=_url(h), clock=h.clock)
    stop = threading.Event()
    stop.set()
    try:
        report = asyncio.run(run_sync_worker(app, stop))
        assert report.sent == 0 and report.calls == 0
    finally:
        app.close()


def test_run_sync_worker_serves_until_stopped_and_reports(h: Harness) -> None:
    with running_server(h.sandbox_app) as base:
        for ch in ("amz", "eb"):
            h.store.set_endpoint(channel_config(h.sandbox, ch, base), h.clock.now_ms())
        app = build_app(database_url=_url(h), clock=h.clock)
        h.reserve("B", 2, "sold-out")  # B: shown 3, now 0; A: shown 0, ATS 4
        stop = threading.Event()

        async def main() -> Any:
            task = asyncio.create_task(run_sync_worker(app, stop, idle_s=0.01))
            deadline = time.monotonic() + 30  # a bound on waiting, not a timing assertion
            while _shown(h) != [4, 0, 4, 0] and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            stop.set()
            return await task

        try:
            app.relay.drain()
            report = asyncio.run(main())
        finally:
            app.close()
    assert _shown(h) == [4, 0, 4, 0]
    assert report.acked >= 4 and report.calls >= 3  # amazon: one SKU per call; ebay: one batch


def _shown(h: Harness) -> list[int]:
    return [h.shown(ch, s) for ch in ("amz", "eb") for s in ("A", "B")]


def _url(h: Harness) -> str:
    return h.app.db.engine.url.render_as_string(hide_password=False)
