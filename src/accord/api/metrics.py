"""Prometheus metrics on a per-app registry (never the global one, so several apps can live in one process).

HTTP metrics are recorded by an ASGI middleware, labelled by route template (``/v1/channels/{channel_id}``),
not by raw path, so the label set stays bounded. Engine, relay and dead-letter figures are read at scrape time, and so
are the channel-sync figures (:class:`SyncCollector`: a handful of grouped queries on the sync tables per scrape).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Iterator

import sqlalchemy as sa
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from starlette.routing import BaseRoute, compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from accord.app.engine import Engine
from accord.app.relay import Relay
from accord.domain.ledger import MovementKind
from accord.store import schema as t
from accord.sync.sendback import send_back_counts
from accord.sync.store import LATENCY_BUCKETS_MS, LATENCY_SUM, ChannelStatus, SyncStore

UNMATCHED = "unmatched"


class HttpMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "accord_http_requests",
            "HTTP requests handled, by method, route template and status code.",
            ("method", "route", "status"),
            registry=registry,
        )
        self.latency = Histogram(
            "accord_http_request_duration_seconds",
            "Time to answer an HTTP request, by method and route template.",
            ("method", "route"),
            registry=registry,
        )


class EngineCollector:
    """Reads the engine's in-process counters and the relay's persistent state at each scrape."""

    def __init__(self, engine: Engine, relay: Relay) -> None:
        self.engine = engine
        self.relay = relay
        self.sync = SyncCollector(SyncStore(relay.db))

    def collect(self) -> Iterator[Metric]:
        stats = dict(self.engine.stats)  # one atomic copy; the engine keeps counting meanwhile
        moves = CounterMetricFamily(
            "accord_stock_movements",
            "Stock movements committed by this process, by kind (replays excluded).",
            labels=("kind",),
        )
        for kind in MovementKind:
            moves.add_metric((kind.value,), float(stats.get(f"movements.{kind.value}", 0)))
        yield moves
        yield CounterMetricFamily(
            "accord_ats_changes",
            "Channel available-to-sell values changed by stock movements in this process.",
            value=float(stats.get("ats.changes", 0)),
        )

        backlog = GaugeMetricFamily(
            "accord_outbox_backlog_events",
            "Outbox events each subscriber has not yet been handed.",
            labels=("subscriber",),
        )
        for name, n in self.relay.backlog().items():
            backlog.add_metric((name,), float(n))
        yield backlog

        dead: dict[str, int] = {}
        retrying: dict[str, int] = {}
        d = t.deliveries
        q = sa.select(d.c.subscriber, d.c.dead, sa.func.count()).group_by(d.c.subscriber, d.c.dead)
        with self.relay.db.engine.connect() as conn:
            for sub, is_dead, n in conn.execute(q):
                (dead if is_dead else retrying)[sub] = int(n)
            conn.rollback()
        names = sorted(set(self.relay.subscribers) | set(dead) | set(retrying))
        dl = GaugeMetricFamily(
            "accord_dead_letters", "Events parked as dead letters, by subscriber.", labels=("subscriber",)
        )
        rt = GaugeMetricFamily(
            "accord_relay_retrying_events",
            "Events whose delivery failed and is waiting for a retry, by subscriber.",
            labels=("subscriber",),
        )
        for name in names:
            dl.add_metric((name,), float(dead.get(name, 0)))
            rt.add_metric((name,), float(retrying.get(name, 0)))
        yield dl
        yield rt
        yield from self.sync.collect()


# counters of the sync worker exposed per channel: (counter name in sync_counters, metric, help)
SYNC_COUNTERS: tuple[tuple[str, str, str], ...] = (
    ("calls", "accord_sync_calls", "Marketplace calls made by the sync worker, by channel."),
    ("http_429", "accord_sync_http_429", "Marketplace answers 429 (rate limited), by channel."),
    ("drift", "accord_sync_drift", "Keys found by reconciliation to differ from the desired value, by channel."),
    ("drift_repaired", "accord_sync_drift_repaired", "Drifted keys whose repair the channel acknowledged."),
    ("reconciled", "accord_sync_reconcile_passes", "Completed reconciliation passes (scheduled or on demand)."),
    ("acked", "accord_sync_acked", "Desired values the channel acknowledged, by channel."),
    ("retries", "accord_sync_retries", "Sends scheduled for a retry, by channel."),
    ("conflicts", "accord_sync_conflicts", "Compare-and-set conflicts, by channel."),
)


class SyncCollector:
    """Channel-sync figures read from the sync store at scrape time (``SyncStore.status``: five grouped queries).

    Propagation latency (change committed → channel acknowledged it) is a histogram per channel and class
    (``critical``: drops to zero or to the channel's threshold; ``other``), in seconds, from the stored buckets."""

    def __init__(self, store: SyncStore) -> None:
        self.store = store

    def collect(self) -> Iterator[Metric]:
        rows: list[ChannelStatus] = self.store.status()
        latency = HistogramMetricFamily(
            "accord_sync_propagation_latency_seconds",
            "Time from a committed change to the channel acknowledging it, by channel and class.",
            labels=("channel", "class"),
        )
        for s in rows:
            for klass in sorted(s.latency):
                hist = s.latency[klass]
                buckets: list[tuple[str, float]] = []
                seen = 0
                for le in LATENCY_BUCKETS_MS[:-1]:
                    seen += hist.get(le, 0)
                    buckets.append((repr(le / 1000), float(seen)))
                buckets.append(("+Inf", float(sum(hist.values()))))
                latency.add_metric((s.channel, klass), buckets, s.counters.get(f"{LATENCY_SUM}{klass}", 0) / 1000)
        yield latency
        depth = GaugeMetricFamily(
            "accord_sync_queue_depth", "Desired values not yet acknowledged by the channel.", labels=("channel",)
        )
        dead = GaugeMetricFamily(
            "accord_sync_dead_letters", "Sends parked as dead letters, by channel.", labels=("channel",)
        )
        for s in rows:
            depth.add_metric((s.channel,), float(s.queue_depth))
            dead.add_metric((s.channel,), float(s.dead_letters))
        yield depth
        yield dead
        for counter, name, doc in SYNC_COUNTERS:
            fam = CounterMetricFamily(name, doc, labels=("channel",))
            for s in rows:
                fam.add_metric((s.channel,), float(s.counters.get(counter, 0)))
            yield fam
        yield self._send_back()

    def _send_back(self) -> Metric:
        """Ship confirmations and cancellations going back to the channels, by channel, kind and state."""
        fam = GaugeMetricFamily(
            "accord_sync_send_back",
            "Ship confirmations and order cancellations for the channels, by channel, kind and state "
            "(pending, sent, dead).",
            labels=("channel", "kind", "state"),
        )
        for ch, kinds in sorted(send_back_counts(self.store.db).items()):
            for kind, states in sorted(kinds.items()):
                for state, n in sorted(states.items()):
                    fam.add_metric((ch, kind, state), float(n))
        return fam


def route_table(groups: Iterable[tuple[str, Iterable[BaseRoute]]]) -> list[tuple[re.Pattern[str], str]]:
    """(path regex, full path template) for every route, given each group's mount prefix."""
    out: list[tuple[re.Pattern[str], str]] = []
    for prefix, routes in groups:
        for r in routes:
            path = getattr(r, "path", None)
            if isinstance(path, str):
                regex, template, _ = compile_path(prefix + path)
                out.append((regex, template))
    return out


def route_path(scope: Scope) -> str:
    """The request path relative to the app (without any ``root_path`` it is mounted under)."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


class MetricsMiddleware:
    """Counts and times every HTTP request (including ones refused by auth) by route template.

    The template is found by matching the path against ``routes`` (built by ``route_table``) rather than read
    from router internals, so requests refused before routing are labelled too; unknown paths share one label.
    """

    def __init__(self, app: ASGIApp, metrics: HttpMetrics, routes: list[tuple[re.Pattern[str], str]]) -> None:
        self.app = app
        self.metrics = metrics
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        start = time.perf_counter()

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            elapsed_s = time.perf_counter() - start
            route = self._route(route_path(scope))
            method = str(scope.get("method", ""))
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.latency.labels(method, route).observe(elapsed_s)

    def _route(self, path: str) -> str:
        for regex, template in self.routes:
            if regex.match(path):
                return template
        return UNMATCHED
