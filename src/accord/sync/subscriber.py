"""Relay subscriber, in the relay's transaction: ``ChannelAvailabilityChanged`` → desired quantity state;
``ReadinessChanged`` (PIM) → desired ``published`` state: a variant with readiness errors on a channel is not
published there (its quantity key is held) until readiness turns ready."""

from __future__ import annotations

from accord.app.ports import Clock, SystemClock
from accord.app.relay import StoredEvent
from accord.domain import events as ev
from accord.store.db import Tx
from accord.sync.store import QUANTITY, SyncStore, quantity_priority

READINESS_CHANGED = "ReadinessChanged"  # accord.pim.service.READINESS_CHANGED (not imported: no PIM dependency)


class SyncSubscriber:
    """Writes the latest ATS per (channel, SKU) as desired quantity; coalesces with anything not yet sent."""

    name = "channel-sync"
    types: frozenset[str] | None = frozenset({ev.CHANNEL_AVAILABILITY_CHANGED, READINESS_CHANGED})
    transactional = True

    def __init__(self, store: SyncStore, clock: Clock | None = None) -> None:
        self.store = store
        self.clock: Clock = clock or SystemClock()

    def handle(self, event: StoredEvent, tx: Tx | None) -> None:
        assert tx is not None, "channel-sync is transactional"
        sku = str(event.data["sku"])
        changes = event.data.get("changes") or []
        if not changes:
            return
        if event.type == READINESS_CHANGED:
            # the stored readiness is the truth (every locale; it may be newer than this event): errors → blocked
            blocked = self.store.not_ready_channels(tx, sku)
            published = {str(c["channel"]): str(c["channel"]) not in blocked for c in changes}
            self.store.set_published(tx, sku, published, event.created_at, self.clock.now_ms())
            return
        thresholds = self.store.thresholds(tx)
        values: list[tuple[str, object, int]] = []
        for c in changes:
            channel, old, new = str(c["channel"]), int(c["old_ats"]), int(c["new_ats"])
            values.append((channel, new, quantity_priority(new, old, thresholds.get(channel, 0))))
        self.store.enqueue(tx, sku, QUANTITY, values, event.created_at, self.clock.now_ms(), thresholds)
