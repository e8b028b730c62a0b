"""Relay subscriber, in the relay's transaction: ``ChannelAvailabilityChanged`` → desired quantity state;
``ReadinessChanged`` (PIM) → desired ``published`` state: a variant with readiness errors on a channel is not
published there (its quantity, price and content keys are held) until readiness turns ready; ``ProductUpdated``
(PIM, when a :class:`~accord.sync.content.ContentDeriver` is given) → desired ``content`` and ``price`` per channel,
coalesced (only the latest is sent) and held on channels where the variant is blocked; a PIM channel context change
(locales, rules dialect) → the channel's content derived again for every product."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any, Protocol

from accord.app.ports import Clock, SystemClock
from accord.app.relay import StoredEvent
from accord.domain import events as ev
from accord.store.db import Tx
from accord.sync.store import CONTENT, P_CONTENT, P_PRICE, PRICE, QUANTITY, SyncStore, quantity_priority

READINESS_CHANGED = "ReadinessChanged"  # accord.pim.service.READINESS_CHANGED (not imported: no PIM dependency)
PRODUCT_UPDATED = "ProductUpdated"  # accord.pim.service.PRODUCT_UPDATED
CHANNEL_CONTEXT_CHANGED = "ChannelContentContextChanged"  # accord.pim.service.CHANNEL_CONTEXT_CHANGED
CONTEXT_CHUNK = 200  # products derived at a time when a channel's locales or rules change


class ContentSource(Protocol):
    """Desired content and price per channel for the variants of some products (:mod:`accord.sync.content`)."""

    def for_products(
        self,
        tx: Tx,
        product_ids: Collection[str],
        variants: Collection[str] | None = None,
        channels: Collection[str] | None = None,
    ) -> Mapping[str, Sequence[VariantContentLike]]: ...

    def product_ids(self, tx: Tx) -> list[str]: ...


class VariantContentLike(Protocol):
    @property
    def channel(self) -> str: ...
    @property
    def content(self) -> Mapping[str, Any] | None: ...
    @property
    def price(self) -> Mapping[str, str] | None: ...


class SyncSubscriber:
    """Writes the latest ATS per (channel, SKU) as desired quantity; coalesces with anything not yet sent."""

    name = "channel-sync"
    types: frozenset[str] | None = frozenset(
        {ev.CHANNEL_AVAILABILITY_CHANGED, READINESS_CHANGED, PRODUCT_UPDATED, CHANNEL_CONTEXT_CHANGED}
    )
    transactional = True

    def __init__(self, store: SyncStore, clock: Clock | None = None, content: ContentSource | None = None) -> None:
        self.store = store
        self.clock: Clock = clock or SystemClock()
        self.content = content

    def handle(self, event: StoredEvent, tx: Tx | None) -> None:
        assert tx is not None, "channel-sync is transactional"
        if event.type == PRODUCT_UPDATED:
            self._content(event, tx)
            return
        if event.type == CHANNEL_CONTEXT_CHANGED:
            self._channel_content(event, tx)
            return
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

    def _content(self, event: StoredEvent, tx: Tx) -> None:
        """The product as the PIM stores it now (it may be newer than this event) → desired content and price of
        each of its variants on each synced channel. Unchanged values write nothing (the store compares)."""
        if self.content is None:
            return
        product = str(event.data.get("product") or event.key)
        desired = self.content.for_products(tx, [product])
        enqueue_content(self.store, tx, desired, event.created_at, self.clock.now_ms())

    def _channel_content(self, event: StoredEvent, tx: Tx) -> None:
        """A channel's locales or rules dialect changed: every variant's content and price on that channel is
        derived again (what is unchanged writes nothing). The whole catalogue is read for the one channel, in this
        transaction — a configuration change, rare, costing about what ``accord sync content`` does for it."""
        if self.content is None:
            return
        channel = str(event.data.get("channel") or event.key)
        ids = self.content.product_ids(tx)
        now = self.clock.now_ms()
        for i in range(0, len(ids), CONTEXT_CHUNK):
            desired = self.content.for_products(tx, ids[i : i + CONTEXT_CHUNK], channels=(channel,))
            enqueue_content(self.store, tx, desired, event.created_at, now)


def enqueue_content(
    store: SyncStore,
    tx: Tx,
    desired: Mapping[str, Sequence[VariantContentLike]],
    committed_at: int,
    now_ms: int,
    *,
    revive: bool = False,
) -> int:
    """Desired content and price per variant and channel → the sync store (coalesced; held on channels where the
    variant has readiness errors; ``revive``: parked keys are queued again). Returns how many keys are pending."""
    pending = 0
    for sku, per_channel in sorted(desired.items()):
        blocked = store.not_ready_channels(tx, sku)
        contents = [(v.channel, dict(v.content), P_CONTENT) for v in per_channel if v.content is not None]
        prices = [(v.channel, dict(v.price), P_PRICE) for v in per_channel if v.price is not None]
        if contents:
            pending += store.enqueue(tx, sku, CONTENT, contents, committed_at, now_ms, hold=blocked, revive=revive)
        if prices:
            pending += store.enqueue(tx, sku, PRICE, prices, committed_at, now_ms, hold=blocked, revive=revive)
    return pending
