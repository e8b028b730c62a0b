"""Variants blocked by readiness errors are not published: the PIM readiness tables say which variant × channel has
errors; the sync engine records ``published`` false, holds the quantity key (never sent, never due) and releases it
when ``ReadinessChanged`` says the variant turned ready."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from accord.app.relay import StoredEvent
from accord.pim import service as pim_service
from accord.store import pim_tables as pt
from accord.store import sync_tables as st
from accord.sync.store import HELD_AT, PUBLISHED, QUANTITY
from accord.sync.subscriber import READINESS_CHANGED, SyncSubscriber

from .harness import Harness

CHANNELS = (("amz", "amazon"), ("eb", "ebay"))


@pytest.fixture
def h(backend: Any) -> Iterator[Harness]:
    harness = Harness(backend.url, {"A": 5, "B": 5}, channels=CHANNELS)
    try:
        yield harness
    finally:
        harness.close()


def _set_readiness(h: Harness, sku: str, ready: dict[str, bool]) -> None:
    """Readiness rows as the PIM stores them (one locale per channel), then its ``ReadinessChanged`` event."""
    r = pt.pim_readiness
    now = h.clock.now_ms()
    with h.app.db.engine.begin() as conn:
        for ch, ok in ready.items():
            conn.execute(sa.delete(r).where(r.c.variant_id == sku, r.c.channel_id == ch))
            issues = "[]" if ok else '[{"code":"required","severity":"error"}]'
            conn.execute(
                sa.insert(r).values(
                    variant_id=sku,
                    channel_id=ch,
                    locale="en_US",
                    product_id=sku,
                    ready=ok,
                    score=100 if ok else 40,
                    issues=issues,
                    updated_at=now,
                )
            )
    changes = [{"channel": ch, "locale": "en_US", "ready": ok, "was_ready": None} for ch, ok in ready.items()]
    event = StoredEvent(0, READINESS_CHANGED, sku, {"sku": sku, "product": sku, "changes": changes}, now)
    with h.app.db.tx() as tx:
        SyncSubscriber(h.store, h.clock).handle(event, tx)


def _row(h: Harness, ch: str, sku: str, field: str) -> Any:
    d = st.sync_desired
    with h.app.db.engine.connect() as conn:
        return conn.execute(
            sa.select(d.c.value, d.c.version, d.c.acked_version, d.c.next_attempt_at).where(
                d.c.channel_id == ch, d.c.sku_id == sku, d.c.field == field
            )
        ).one_or_none()


def test_the_subscriber_listens_to_the_pims_event() -> None:
    assert READINESS_CHANGED == pim_service.READINESS_CHANGED
    assert SyncSubscriber.types is not None and READINESS_CHANGED in SyncSubscriber.types


def test_a_blocked_variant_is_not_published_until_it_turns_ready(h: Harness) -> None:
    _set_readiness(h, "A", {"amz": False, "eb": True})
    h.relay.drain()  # the receipts: desired quantity 5 for A and B on both channels
    h.run(lambda w: w.drain())
    assert [h.shown("amz", "A"), h.shown("amz", "B"), h.shown("eb", "A"), h.shown("eb", "B")] == [0, 5, 5, 5]
    published = _row(h, "amz", "A", PUBLISHED)
    assert published is not None and published[0] == "false" and published[1] == published[2]  # recorded
    held = _row(h, "amz", "A", QUANTITY)
    assert held is not None and held[0] == "5" and held[1] > held[2] and held[3] == HELD_AT  # pending, held
    assert _row(h, "eb", "A", PUBLISHED)[0] == "true"

    # more changes while blocked stay held, and a held key is no wake-up for a virtual-clock driver
    h.reserve("A", 2, "r1")
    h.relay.drain()
    h.run(lambda w: w.drain())
    assert h.shown("amz", "A") == 0 and h.shown("eb", "A") == 3
    assert h.store.next_due_ms("amz") is None

    _set_readiness(h, "A", {"amz": True})  # ready: released, due at once with the latest value
    assert _row(h, "amz", "A", PUBLISHED)[0] == "true"
    h.run(lambda w: w.drain())
    assert h.shown("amz", "A") == 3
    row = _row(h, "amz", "A", QUANTITY)
    assert row[1] == row[2] and row[3] == 0


def test_blocking_after_the_change_was_queued_holds_it(h: Harness) -> None:
    h.relay.drain()  # quantity keys pending on both channels
    _set_readiness(h, "B", {"amz": False, "eb": False})
    h.run(lambda w: w.drain())
    assert [h.shown("amz", "A"), h.shown("amz", "B"), h.shown("eb", "A"), h.shown("eb", "B")] == [5, 0, 5, 0]
    _set_readiness(h, "B", {"amz": False, "eb": True})  # one channel at a time
    h.run(lambda w: w.drain())
    assert [h.shown("amz", "B"), h.shown("eb", "B")] == [0, 5]


def test_any_locale_with_errors_blocks_the_channel(h: Harness) -> None:
    h.relay.drain()
    r = pt.pim_readiness
    now = h.clock.now_ms()
    with h.app.db.engine.begin() as conn:
        for locale, ok in (("en_US", True), ("de_DE", False)):
            conn.execute(
                sa.insert(r).values(
                    variant_id="A",
                    channel_id="amz",
                    locale=locale,
                    product_id="A",
                    ready=ok,
                    score=50,
                    issues="[]",
                    updated_at=now,
                )
            )
    changes = [{"channel": "amz", "locale": "en_US", "ready": True, "was_ready": None}]
    with h.app.db.tx() as tx:
        SyncSubscriber(h.store, h.clock).handle(
            StoredEvent(0, READINESS_CHANGED, "A", {"sku": "A", "changes": changes}, now), tx
        )
    h.run(lambda w: w.drain())
    assert h.shown("amz", "A") == 0 and h.shown("amz", "B") == 5
