"""Inventory ledger rules: buckets, movements and how each movement changes them.

A movement is planned into one or more *legs*; each leg changes the five buckets of one
SKU × location by a delta. Replaying every leg reproduces the balances (invariant 1).
Nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from hashlib import blake2b as _blake2b
from typing import Any, NamedTuple

from accord.domain.errors import InsufficientStock, InvalidInput

BUCKETS: tuple[str, ...] = ("on_hand", "committed", "in_transit", "damaged", "quarantine")


class MovementKind(StrEnum):
    RECEIVE = "receive"
    ADJUST = "adjust"  # signed delta on on_hand, with a reason
    COUNT = "count"  # physical count: sets on_hand to the counted quantity, with a reason
    RESERVE = "reserve"
    RELEASE = "release"
    SHIP = "ship"  # from committed
    TRANSFER_OUT = "transfer_out"  # on_hand at source → in_transit at destination
    TRANSFER_IN = "transfer_in"  # in_transit → on_hand at destination
    DAMAGE = "damage"  # on_hand → damaged
    QUARANTINE = "quarantine"  # on_hand → quarantine
    UNQUARANTINE = "unquarantine"  # quarantine → on_hand
    SCRAP = "scrap"  # damaged / quarantine / on_hand → gone


# past-tense name of each movement kind: how causes name it (e.g. an order re-routed on "stock:StockReceived"), and
# the event type each movement had before one MovementsRecorded event per transaction (see domain.events)
MOVEMENT_EVENTS: dict[MovementKind, str] = {
    MovementKind.RECEIVE: "StockReceived",
    MovementKind.ADJUST: "StockAdjusted",
    MovementKind.COUNT: "StockCounted",
    MovementKind.RESERVE: "StockReserved",
    MovementKind.RELEASE: "StockReleased",
    MovementKind.SHIP: "StockShipped",
    MovementKind.TRANSFER_OUT: "TransferShipped",
    MovementKind.TRANSFER_IN: "TransferReceived",
    MovementKind.DAMAGE: "StockMarkedDamaged",
    MovementKind.QUARANTINE: "StockQuarantined",
    MovementKind.UNQUARANTINE: "StockReleasedFromQuarantine",
    MovementKind.SCRAP: "StockScrapped",
}

SCRAP_SOURCES = ("damaged", "quarantine", "on_hand")

# plain-str value of each kind: reading ``.value`` goes through an enum property, slow on hot paths
KIND_VALUE: dict[MovementKind, str] = {k: k.value for k in MovementKind}


@dataclass(slots=True)
class Balance:
    """The five buckets of one SKU at one location."""

    on_hand: int = 0
    committed: int = 0
    in_transit: int = 0
    damaged: int = 0
    quarantine: int = 0

    @property
    def available(self) -> int:
        return self.on_hand - self.committed

    def as_tuple(self) -> tuple[int, int, int, int, int]:
        return (self.on_hand, self.committed, self.in_transit, self.damaged, self.quarantine)

    def copy(self) -> Balance:
        return Balance(self.on_hand, self.committed, self.in_transit, self.damaged, self.quarantine)


@dataclass(frozen=True, slots=True)
class Movement:
    """A request to move stock. ``key`` is the idempotency key."""

    kind: MovementKind
    sku: str
    location: str
    qty: int
    key: str
    to_location: str | None = None  # transfer_out
    transfer_id: str | None = None  # transfer_in
    reason: str | None = None  # adjust, count, damage, quarantine, scrap
    ref: str | None = None  # order, RMA or document reference
    source_bucket: str | None = None  # scrap: which bucket units leave from

    def payload(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": KIND_VALUE[self.kind],
            "sku": self.sku,
            "location": self.location,
            "qty": self.qty,
        }
        for name in ("to_location", "transfer_id", "reason", "ref", "source_bucket"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out

    def fingerprint(self) -> str:
        """Hash of everything but the key: the same key with another fingerprint is a conflict.
        (The fields joined by U+001F; stored in the ledger, so the format never changes.)"""
        raw = (
            f"{KIND_VALUE[self.kind]}\x1f{self.sku}\x1f{self.location}\x1f{self.qty!s}\x1f{self.to_location or ''}"
            f"\x1f{self.transfer_id or ''}\x1f{self.reason or ''}\x1f{self.ref or ''}\x1f{self.source_bucket or ''}"
        )
        return _blake2b(raw.encode(), digest_size=16).hexdigest()


class Leg(NamedTuple):
    """The bucket deltas one movement applies at one location (index order = ``BUCKETS``)."""

    location: str
    deltas: tuple[int, int, int, int, int]


@dataclass(slots=True)
class Plan:
    legs: list[Leg] = field(default_factory=list)


# kinds whose only shape rules are a positive whole quantity and a key (the common case, checked first)
_PLAIN_KINDS = frozenset(
    {
        MovementKind.RECEIVE,
        MovementKind.RESERVE,
        MovementKind.RELEASE,
        MovementKind.SHIP,
        MovementKind.DAMAGE,
        MovementKind.QUARANTINE,
        MovementKind.UNQUARANTINE,
    }
)


def validate(m: Movement) -> None:
    """Shape checks that need no state."""
    q = m.qty
    if type(q) is int and q > 0 and m.kind in _PLAIN_KINDS and m.key and len(m.key) <= 200:
        return
    if not isinstance(m.qty, int) or isinstance(m.qty, bool):
        raise InvalidInput(f"quantity must be a whole number, got {m.qty!r}")
    if not m.key or len(m.key) > 200:
        raise InvalidInput("idempotency key must be 1-200 characters")
    if m.kind is MovementKind.ADJUST:
        if m.qty == 0:
            raise InvalidInput("adjust quantity must not be zero")
    elif m.kind is MovementKind.COUNT:
        if m.qty < 0:
            raise InvalidInput(f"counted quantity must be zero or more, got {m.qty}")
    elif m.qty <= 0:
        raise InvalidInput(f"quantity must be positive, got {m.qty}")
    if m.kind in (MovementKind.ADJUST, MovementKind.COUNT) and not m.reason:
        raise InvalidInput(f"{m.kind.value} needs a reason")
    if m.kind is MovementKind.TRANSFER_OUT:
        if not m.to_location:
            raise InvalidInput("transfer needs a destination location")
        if m.to_location == m.location:
            raise InvalidInput("transfer source and destination are the same location")
    if m.kind is MovementKind.TRANSFER_IN and not m.transfer_id:
        raise InvalidInput("transfer_in needs a transfer id")
    if m.kind is MovementKind.SCRAP and (m.source_bucket or "damaged") not in SCRAP_SOURCES:
        raise InvalidInput(f"scrap source must be one of {', '.join(SCRAP_SOURCES)}, got {m.source_bucket!r}")


def _need(have: int, want: int, what: str, m: Movement) -> None:
    if want > have:
        raise InsufficientStock(f"{m.kind.value} {want} of {m.sku} at {m.location}: only {have} {what}")


def plan(m: Movement, current: Balance) -> list[Leg]:
    """Turn a movement into legs, checking it against the source balance.

    ``current`` is the balance at ``m.location`` (for transfer_in: at the destination,
    which is ``m.location``). Raises InsufficientStock when a bucket would go negative
    or committed would exceed on_hand.
    """
    q = m.qty
    k = m.kind
    loc = m.location
    if k is MovementKind.RECEIVE:
        return [Leg(loc, (q, 0, 0, 0, 0))]
    if k is MovementKind.ADJUST:
        if q < 0:
            _need(current.available, -q, "available (on hand not committed)", m)
        return [Leg(loc, (q, 0, 0, 0, 0))]
    if k is MovementKind.COUNT:
        if q < current.committed:
            raise InsufficientStock(
                f"count {q} of {m.sku} at {loc} is below the {current.committed} committed; "
                "release or cancel reservations first"
            )
        return [Leg(loc, (q - current.on_hand, 0, 0, 0, 0))]
    if k is MovementKind.RESERVE:
        _need(current.available, q, "available", m)
        return [Leg(loc, (0, q, 0, 0, 0))]
    if k is MovementKind.RELEASE:
        _need(current.committed, q, "committed", m)
        return [Leg(loc, (0, -q, 0, 0, 0))]
    if k is MovementKind.SHIP:
        _need(current.committed, q, "committed", m)
        return [Leg(loc, (-q, -q, 0, 0, 0))]
    if k is MovementKind.TRANSFER_OUT:
        _need(current.available, q, "available", m)
        assert m.to_location is not None
        return [Leg(loc, (-q, 0, 0, 0, 0)), Leg(m.to_location, (0, 0, q, 0, 0))]
    if k is MovementKind.TRANSFER_IN:
        _need(current.in_transit, q, "in transit", m)
        return [Leg(loc, (q, 0, -q, 0, 0))]
    if k is MovementKind.DAMAGE:
        _need(current.available, q, "available", m)
        return [Leg(loc, (-q, 0, 0, q, 0))]
    if k is MovementKind.QUARANTINE:
        _need(current.available, q, "available", m)
        return [Leg(loc, (-q, 0, 0, 0, q))]
    if k is MovementKind.UNQUARANTINE:
        _need(current.quarantine, q, "in quarantine", m)
        return [Leg(loc, (q, 0, 0, 0, -q))]
    if k is MovementKind.SCRAP:
        src = m.source_bucket or "damaged"
        if src == "on_hand":
            _need(current.available, q, "available", m)
            return [Leg(loc, (-q, 0, 0, 0, 0))]
        if src == "quarantine":
            _need(current.quarantine, q, "in quarantine", m)
            return [Leg(loc, (0, 0, 0, 0, -q))]
        _need(current.damaged, q, "damaged", m)
        return [Leg(loc, (0, 0, 0, -q, 0))]
    raise InvalidInput(f"unknown movement kind {k!r}")  # pragma: no cover - enum is closed


def apply(balance: Balance, deltas: tuple[int, int, int, int, int]) -> None:
    """Add a leg's deltas to a balance in place."""
    balance.on_hand += deltas[0]
    balance.committed += deltas[1]
    balance.in_transit += deltas[2]
    balance.damaged += deltas[3]
    balance.quarantine += deltas[4]


def violations(b: Balance) -> list[str]:
    """Invariant 2: no bucket negative, committed never above on_hand."""
    out = [f"{name} is negative ({v})" for name, v in zip(BUCKETS, b.as_tuple(), strict=True) if v < 0]
    if b.committed > b.on_hand:
        out.append(f"committed {b.committed} exceeds on_hand {b.on_hand}")
    return out
