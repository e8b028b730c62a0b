"""Relay subscriber: ``ChannelAvailabilityChanged`` → desired quantity state, in the relay's transaction."""

from __future__ import annotations

from accord.app.ports import Clock, SystemClock
from accord.app.relay import StoredEvent
from accord.domain import events as ev
from accord.store.db import Tx
from accord.sync.store import QUANTITY, SyncStore, quantity_priority


class SyncSubscriber:
    """Writes the latest ATS per (channel, SKU) as desired quantity; coalesces with anything not yet sent."""

    name = "channel-sync"
    types: frozenset[str] | None = frozenset({ev.CHANNEL_AVAILABILITY_CHANGED})
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
        thresholds = self.store.thresholds(tx)
        values: list[tuple[str, object, int]] = []
        for c in changes:
            channel, old, new = str(c["channel"]), int(c["old_ats"]), int(c["new_ats"])
            values.append((channel, new, quantity_priority(new, old, thresholds.get(channel, 0))))
        self.store.enqueue(tx, sku, QUANTITY, values, event.created_at, self.clock.now_ms(), thresholds)
