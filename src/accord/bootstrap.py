"""The one place that wires Accord together: database, engine, relay and subscribers.

Channel sync (issue 4) is wired when asked (``build_app(sync=True)``) or, by default, when at least one channel
endpoint is configured (a row in ``sync_endpoints``): the relay then carries the sync subscriber (availability
changes → desired state) and :meth:`App.start_sync_worker` runs the worker that sends that state to the channels
(``accord serve`` starts both).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass, field

import httpx
import sqlalchemy as sa

from accord.app.engine import Engine
from accord.app.ports import Clock, Ids
from accord.app.relay import Relay, Subscriber, WebhookSubscriber
from accord.orders.reoptimise import ReoptimiseSubscriber
from accord.orders.service import OrderService, channel_intake
from accord.settings import Settings, load_settings
from accord.store.db import Database
from accord.store.migrate import upgrade
from accord.sync.content import content_deriver
from accord.sync.store import SyncStore
from accord.sync.subscriber import SyncSubscriber
from accord.sync.worker import StepReport, SyncWorker, WorkerOptions, build_connectors

log = logging.getLogger("accord.sync")

SYNC_HTTP_TIMEOUT_S = 30.0
SYNC_STOP_POLL_S = 0.05  # how often the worker's event loop looks at the thread-safe stop flag


@dataclass
class App:
    settings: Settings
    db: Database
    engine: Engine
    relay: Relay
    subscribers: list[Subscriber] = field(default_factory=list)
    sync: SyncStore | None = None  # set when channel sync is wired (its subscriber is on the relay)

    def close(self) -> None:
        self.db.dispose()

    def start_sync_worker(self, stop: threading.Event, idle_s: float = 0.05) -> threading.Thread | None:
        """Run the channel-sync worker on its own event loop in a daemon thread until ``stop`` is set.

        None when sync is not wired. Every channel runs on its own loop (:meth:`SyncWorker.serve`); a failed step
        is logged and retried after a pause (nothing is dropped: the desired state stays pending in the database)."""
        if self.sync is None:
            return None
        thread = threading.Thread(
            target=lambda: asyncio.run(run_sync_worker(self, stop, idle_s)), name="sync-worker", daemon=True
        )
        thread.start()
        return thread


async def run_sync_worker(app: App, stop: threading.Event, idle_s: float = 0.05) -> StepReport:
    """The sync worker over every configured endpoint until ``stop``: one loop per channel (a slow or rate-limited
    channel never holds the others back), woken by this process's enqueues. Returns what it did."""
    store = app.sync or SyncStore(app.db)
    total = StepReport()
    if stop.is_set():
        return total
    async with httpx.AsyncClient(timeout=SYNC_HTTP_TIMEOUT_S) as client:
        worker = SyncWorker(
            store,
            build_connectors(store.endpoints(), client, app.engine.clock),
            app.engine.clock,
            WorkerOptions(reconcile_every_ms=app.settings.sync_reconcile_every_s * 1000 or None),
            orders=channel_intake(app.engine),  # orders become lifecycle orders (issue 5)
        )
        done = asyncio.Event()

        async def watch() -> None:  # the thread-safe stop flag → the loops' asyncio event
            while not stop.is_set():
                await asyncio.sleep(SYNC_STOP_POLL_S)
            done.set()

        watcher = asyncio.create_task(watch())
        try:
            await worker.serve(done, idle_s=idle_s, total=total)
        finally:
            watcher.cancel()
    return total


def sync_configured(db: Database) -> bool:
    """True when the sync tables exist and at least one channel endpoint is configured."""
    if not sa.inspect(db.engine).has_table("sync_endpoints"):
        return False
    return bool(SyncStore(db).endpoints())


def build_app(
    settings: Settings | None = None,
    *,
    database_url: str | None = None,
    clock: Clock | None = None,
    ids: Ids | None = None,
    subscribers: list[Subscriber] | None = None,
    migrate: bool = False,
    sync: bool | None = None,
) -> App:
    """Wire an App. ``sync``: True wires channel sync, False never, None (default) when endpoints are configured."""
    settings = settings or load_settings()
    db = Database(database_url or settings.database_url)
    if migrate:
        upgrade(db)
    engine = Engine(db, clock, ids)
    subs: list[Subscriber] = list(subscribers or [])
    for h in settings.webhooks:
        subs.append(WebhookSubscriber(h.name, h.url, h.secret, types=frozenset(h.types) if h.types else None))
    subs.append(ReoptimiseSubscriber(OrderService(engine)))  # orders: re-route when stock goes up (issue 5)
    sync_store: SyncStore | None = None
    if sync if sync is not None else sync_configured(db):
        sync_store = SyncStore(db)
        # PIM edits → desired price and content per channel (H6, issue 4)
        subs.append(SyncSubscriber(sync_store, engine.clock, content_deriver(db, engine)))
    relay = Relay(
        db,
        subs,
        engine.clock,
        max_attempts=settings.relay_max_attempts,
        backoff_ms=settings.relay_backoff_ms,
        gap_timeout_ms=settings.relay_gap_timeout_ms if db.backend == "postgresql" else 0,
    )
    return App(settings, db, engine, relay, subs, sync_store)
