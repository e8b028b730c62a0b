"""Domain events: past-tense facts written to the outbox in the same transaction as the change."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from accord.domain.ledger import MOVEMENT_EVENTS


class Event(NamedTuple):
    type: str  # past tense, e.g. "MovementsRecorded", "ChannelAvailabilityChanged"
    key: str  # the aggregate it is about (a SKU, a channel, ...), for ordering and partitioning
    data: dict[str, Any]


CHANNEL_AVAILABILITY_CHANGED = "ChannelAvailabilityChanged"
MOVEMENTS_RECORDED = "MovementsRecorded"
BATCH_KEY = "batch"  # the key of a MovementsRecorded event whose movements span several SKUs
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


# column order of each row in a MovementsRecorded event's "balances"
BALANCE_COLUMNS = ("sku", "location", "on_hand", "committed", "in_transit", "damaged", "quarantine")


def movements_recorded(key: str, movements: list[dict[str, Any]], balances: list[tuple[Any, ...]]) -> Event:
    """One transaction recorded these movements (in order; replays of earlier keys are not repeated).

    ``movements``: ``{"key", "kind", "sku", "location", "qty"}`` each, plus ``to_location``, ``transfer_id``,
    ``reason``, ``ref``, ``source_bucket`` when set. ``balances``: every SKU × location the transaction changed,
    after it, as rows in ``BALANCE_COLUMNS`` order. ``key``: the SKU, or ``BATCH_KEY`` when several SKUs moved."""
    return Event(MOVEMENTS_RECORDED, key, {"movements": movements, "balances": balances})


# before MovementsRecorded, each movement was its own event named by its kind (``StockReceived``, …; see
# ``accord.domain.ledger.MOVEMENT_EVENTS``): event type -> movement kind, for events still in an outbox
LEGACY_MOVEMENT_KINDS: dict[str, str] = {name: kind.value for kind, name in MOVEMENT_EVENTS.items()}


def recorded_movements(event_type: str, data: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The movements an event records, each as ``movements_recorded`` lists them: a MovementsRecorded event's
    movements, or the one movement of an event written before it (one per movement, named by its kind)."""
    if event_type == MOVEMENTS_RECORDED:
        return list(data.get("movements") or ())
    kind = LEGACY_MOVEMENT_KINDS.get(event_type)
    return [{**data, "kind": kind}] if kind is not None else []
