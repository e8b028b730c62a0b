"""``WorkerOptions.critical_reserve``: while a backlog waits, a token of the burst stays for a change that turns
critical, so it goes out at once instead of after the next refill; the backlog keeps its throughput."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from accord.sync.worker import StepReport, SyncWorker

from .harness import Harness


@pytest.fixture
def h(backend: Any) -> Iterator[Harness]:
    harness = Harness(backend.url, {f"S{i:02d}": 3 for i in range(20)}, channels=(("amz", "amazon"),))
    try:
        yield harness
    finally:
        harness.close()


@pytest.mark.parametrize("reserve", [0, 1])
def test_a_sell_out_behind_a_backlog_goes_out_on_the_reserved_token(h: Harness, reserve: int) -> None:
    h.relay.drain()  # 20 increases queued on Amazon (5 calls/s, 4 usable tokens)

    async def go(w: SyncWorker) -> tuple[StepReport, StepReport, StepReport]:
        first = await w.step()
        h.reserve("S19", 3, "sold-out")  # S19 drops to zero behind the backlog
        h.relay.drain()
        critical = await w.step()
        total = StepReport()
        for _ in range(10):
            h.clock.advance(1_000)
            total.add(await w.step())
        return first, critical, total

    first, critical, rest = h.run(go, critical_reserve=reserve)
    assert first.acked == 4 - reserve and critical.acked == reserve  # without it, the sell-out waits for a token
    assert rest.http_429 == 0 and first.http_429 == 0 and critical.http_429 == 0
    assert h.shown("amz", "S19") == 0 and all(h.shown("amz", f"S{i:02d}") == 3 for i in range(19))
    assert first.acked + critical.acked + rest.acked == 20
