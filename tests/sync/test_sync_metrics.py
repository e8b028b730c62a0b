"""Sync series on the API's /metrics: latency histogram, queue depth, calls, 429s, drift, dead letters."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from accord.api.app import create_app
from accord.api.metrics import EngineCollector

from .harness import Harness


@pytest.fixture
def h(backend: Any) -> Iterator[Harness]:
    harness = Harness(backend.url, {"A": 3, "B": 5}, channels=(("amz", "amazon"), ("shop", "shopify")))
    try:
        yield harness
    finally:
        harness.close()


def exposition(h: Harness) -> str:
    registry = CollectorRegistry()
    registry.register(EngineCollector(h.engine, h.relay))
    return generate_latest(registry).decode()


def sample(text: str, prefix: str) -> float:
    for line in text.splitlines():
        if line.startswith(prefix + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{prefix} not in\n{text}")


def test_sync_series_are_exposed(h: Harness) -> None:
    h.relay.drain()
    text = exposition(h)
    assert sample(text, 'accord_sync_queue_depth{channel="amz"}') == 2  # both SKUs wait to be sent
    h.sandbox.set_faults("amz", script=["429"])
    # amz: its two calls go out together, one gets the 429; shop: both sent in one batched call
    h.run(lambda w: w.step())
    h.clock.advance(1_000)
    h.run(lambda w: w.drain())
    h.sandbox.listing("shop", "A").qty = 9
    h.run(lambda w: w.reconcile("shop"))  # one drifted key
    text = exposition(h)
    assert sample(text, 'accord_sync_queue_depth{channel="amz"}') == 0
    assert sample(text, 'accord_sync_http_429_total{channel="amz"}') == 1
    assert sample(text, 'accord_sync_calls_total{channel="amz"}') >= 2
    assert sample(text, 'accord_sync_calls_total{channel="shop"}') == 1
    assert sample(text, 'accord_sync_drift_total{channel="shop"}') == 1
    assert sample(text, 'accord_sync_dead_letters{channel="amz"}') == 0
    assert sample(text, 'accord_sync_reconcile_passes_total{channel="shop"}') == 1
    h.run(lambda w: w.drain())  # the repair goes out
    assert sample(exposition(h), 'accord_sync_drift_repaired_total{channel="shop"}') == 1
    # acknowledged values feed the histogram: per channel and class, cumulative buckets, count and sum
    assert sample(text, 'accord_sync_propagation_latency_seconds_count{channel="amz",class="other"}') == 2
    # one key acknowledged at once, the other after the 1 s Retry-After
    assert sample(text, 'accord_sync_propagation_latency_seconds_sum{channel="amz",class="other"}') == 1.0
    assert sample(text, 'accord_sync_propagation_latency_seconds_bucket{channel="amz",class="other",le="+Inf"}') == 2
    assert sample(text, 'accord_sync_propagation_latency_seconds_bucket{channel="amz",class="other",le="0.5"}') == 1
    assert sample(text, 'accord_sync_propagation_latency_seconds_bucket{channel="amz",class="other",le="1.0"}') == 2


def test_sync_dead_letters_are_exposed(h: Harness) -> None:
    h.relay.drain()
    h.sandbox.set_faults("amz", stock_lock_until_ms=h.clock.now_ms() + 10**9)
    h.run(lambda w: w.drain(), max_attempts=1)
    text = exposition(h)
    assert sample(text, 'accord_sync_dead_letters{channel="amz"}') >= 1


def test_the_api_registry_carries_the_sync_series(h: Harness) -> None:
    h.relay.drain()
    api = create_app(h.app)
    text = generate_latest(api.state.metrics_registry).decode()
    assert 'accord_sync_queue_depth{channel="shop"} 2.0' in text
    assert "# TYPE accord_sync_propagation_latency_seconds histogram" in text
