"""Domain events: past-tense facts written to the outbox in the same transaction as the change."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Event:
    type: str  # past tense, e.g. "StockReserved", "ChannelAvailabilityChanged"
    key: str  # the aggregate it is about (a SKU, a channel, ...), for ordering and partitioning
    data: dict[str, Any]


CHANNEL_AVAILABILITY_CHANGED = "ChannelAvailabilityChanged"
LOCATION_ADDED = "LocationAdded"
CHANNEL_ADDED = "ChannelAdded"
CHANNEL_POLICY_CHANGED = "ChannelPolicyChanged"
SKU_ADDED = "SkuAdded"


def availability_changed(sku: str, channel: str, old: int, new: int, cause: str) -> Event:
    return Event(
        CHANNEL_AVAILABILITY_CHANGED,
        sku,
        {"sku": sku, "channel": channel, "old_ats": old, "new_ats": new, "cause": cause},
    )
