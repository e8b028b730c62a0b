"""Domain events: past-tense facts written to the outbox in the same transaction as the change."""

from __future__ import annotations

from typing import Any, NamedTuple


class Event(NamedTuple):
    type: str  # past tense, e.g. "StockReserved", "ChannelAvailabilityChanged"
    key: str  # the aggregate it is about (a SKU, a channel, ...), for ordering and partitioning
    data: dict[str, Any]


CHANNEL_AVAILABILITY_CHANGED = "ChannelAvailabilityChanged"
LOCATION_ADDED = "LocationAdded"
CHANNEL_ADDED = "ChannelAdded"
CHANNEL_POLICY_CHANGED = "ChannelPolicyChanged"
SKU_ADDED = "SkuAdded"


def availability_changed(sku: str, changes: list[tuple[str, int, int]], cause: str) -> Event:
    """One SKU's ATS changed on one or more channels: ``changes`` is (channel, old_ats, new_ats) each."""
    return Event(
        CHANNEL_AVAILABILITY_CHANGED,
        sku,
        {
            "sku": sku,
            "cause": cause,
            "changes": [{"channel": ch, "old_ats": old, "new_ats": new} for ch, old, new in changes],
        },
    )
