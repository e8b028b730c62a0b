"""The one place that wires Accord together: database, engine, relay and subscribers."""

from __future__ import annotations

from dataclasses import dataclass, field

from accord.app.engine import Engine
from accord.app.ports import Clock, Ids
from accord.app.relay import Relay, Subscriber, WebhookSubscriber
from accord.settings import Settings, load_settings
from accord.store.db import Database
from accord.store.migrate import upgrade


@dataclass
class App:
    settings: Settings
    db: Database
    engine: Engine
    relay: Relay
    subscribers: list[Subscriber] = field(default_factory=list)

    def close(self) -> None:
        self.db.dispose()


def build_app(
    settings: Settings | None = None,
    *,
    database_url: str | None = None,
    clock: Clock | None = None,
    ids: Ids | None = None,
    subscribers: list[Subscriber] | None = None,
    migrate: bool = False,
) -> App:
    settings = settings or load_settings()
    db = Database(database_url or settings.database_url)
    if migrate:
        upgrade(db)
    engine = Engine(db, clock, ids)
    subs: list[Subscriber] = list(subscribers or [])
    for h in settings.webhooks:
        subs.append(WebhookSubscriber(h.name, h.url, h.secret, types=frozenset(h.types) if h.types else None))
    relay = Relay(
        db,
        subs,
        engine.clock,
        max_attempts=settings.relay_max_attempts,
        backoff_ms=settings.relay_backoff_ms,
        gap_timeout_ms=settings.relay_gap_timeout_ms if db.backend == "postgresql" else 0,
    )
    return App(settings, db, engine, relay, subs)
