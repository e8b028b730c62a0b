"""Available-to-sell per channel: which locations feed a channel and how its policy shapes the pool."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from accord.domain.errors import InvalidConfiguration, InvalidInput, NotFound


class LocationKind(StrEnum):
    WAREHOUSE = "warehouse"
    STORE = "store"
    DARK_STORE = "dark_store"
    REGIONAL_DC = "regional_dc"
    PLATFORM_FC = "platform_fc"  # stock held by a marketplace; sellable only on its owner channel


@dataclass(frozen=True, slots=True)
class Location:
    id: str
    kind: LocationKind
    region: str
    country: str
    timezone: str = "UTC"
    owner_channel: str | None = None  # required for platform_fc

    def check(self) -> None:
        check_id(self.id, "location id")
        if not self.region:
            raise InvalidInput("location needs a region")
        if len(self.country) != 2 or not self.country.isalpha() or not self.country.isupper():
            raise InvalidInput(f"country must be an ISO 3166 alpha-2 code like 'DE', got {self.country!r}")
        if self.kind is LocationKind.PLATFORM_FC and not self.owner_channel:
            raise InvalidConfiguration(f"platform_fc location {self.id} needs the channel that holds its stock")
        if self.kind is not LocationKind.PLATFORM_FC and self.owner_channel:
            raise InvalidConfiguration(f"only platform_fc locations have an owner channel ({self.id})")


@dataclass(frozen=True, slots=True)
class StockPolicy:
    """How a channel's pool becomes the quantity it shows.

    pool → × pool_pct/100 (floored) → − buffer_units → capped at max_qty →
    0 when at or below zero_at_or_below → never negative.
    """

    buffer_units: int = 0
    max_qty: int | None = None
    pool_pct: int = 100
    zero_at_or_below: int = 0

    def check(self) -> None:
        if self.buffer_units < 0:
            raise InvalidInput(f"buffer must be zero or more, got {self.buffer_units}")
        if self.max_qty is not None and self.max_qty < 0:
            raise InvalidInput(f"max quantity must be zero or more, got {self.max_qty}")
        if not 0 <= self.pool_pct <= 100:
            raise InvalidInput(f"pool percent must be 0-100, got {self.pool_pct}")
        if self.zero_at_or_below < 0:
            raise InvalidInput(f"send-zero threshold must be zero or more, got {self.zero_at_or_below}")

    def apply(self, pool: int) -> int:
        qty = pool * self.pool_pct // 100 if self.pool_pct != 100 else pool
        qty -= self.buffer_units
        if self.max_qty is not None and qty > self.max_qty:
            qty = self.max_qty
        if qty <= self.zero_at_or_below:
            return 0
        return qty


@dataclass(frozen=True, slots=True)
class Channel:
    id: str
    dialect: str
    region: str
    currency: str
    locations: tuple[str, ...]  # fulfilling locations in priority order
    policy: StockPolicy = field(default_factory=StockPolicy)

    def check(self, known_locations: Mapping[str, Location]) -> None:
        check_id(self.id, "channel id")
        if not self.dialect:
            raise InvalidInput("channel needs a dialect")
        if len(self.currency) != 3 or not self.currency.isalpha() or not self.currency.isupper():
            raise InvalidInput(f"currency must be an ISO 4217 code like 'EUR', got {self.currency!r}")
        if len(set(self.locations)) != len(self.locations):
            raise InvalidInput(f"channel {self.id} lists a fulfilling location twice")
        for loc_id in self.locations:
            loc = known_locations.get(loc_id)
            if loc is None:
                raise NotFound("location", loc_id)
            if loc.kind is LocationKind.PLATFORM_FC and loc.owner_channel != self.id:
                raise InvalidConfiguration(
                    f"location {loc_id} is platform stock of channel {loc.owner_channel}; it cannot fulfil {self.id}"
                )
        self.policy.check()


def eligible_locations(channel: Channel, locations: Mapping[str, Location]) -> tuple[str, ...]:
    """The channel's fulfilling locations whose stock may count for it."""
    out = []
    for loc_id in channel.locations:
        loc = locations.get(loc_id)
        if loc is None:
            continue
        if loc.kind is LocationKind.PLATFORM_FC and loc.owner_channel != channel.id:
            continue
        out.append(loc_id)
    return tuple(out)


def channel_ats(channel_locations: tuple[str, ...], policy: StockPolicy, available: Mapping[str, int]) -> int:
    """ATS of one SKU on one channel, from the per-location available quantities."""
    pool = 0
    for loc_id in channel_locations:
        a = available.get(loc_id, 0)
        if a > 0:
            pool += a
    return policy.apply(pool)


def check_id(value: str, what: str) -> None:
    if not value or len(value) > 64 or any(c.isspace() for c in value):
        raise InvalidInput(f"{what} must be 1-64 characters without spaces, got {value!r}")


class AtsPlan:
    """Evaluates ATS for many channels at once.

    Channels that draw on the same set of locations share one pool sum (many channels of a region usually
    do), and channels of such a set with the same policy share one evaluation of it. Built once per
    configuration version.
    """

    __slots__ = ("_by_location", "_groups")

    def __init__(self, channels: Mapping[str, Channel], locations: Mapping[str, Location]) -> None:
        groups: dict[tuple[str, ...], dict[tuple[int, int, int | None, int], list[str]]] = {}
        for ch_id in sorted(channels):
            ch = channels[ch_id]
            locs = tuple(sorted(eligible_locations(ch, locations)))
            p = ch.policy
            key = (p.pool_pct, p.buffer_units, p.max_qty, p.zero_at_or_below)
            groups.setdefault(locs, {}).setdefault(key, []).append(ch_id)
        # (locations, ((pool_pct, buffer, max_qty, zero_at_or_below, channels), ...)) per set of locations
        self._groups: list[tuple[tuple[str, ...], tuple[tuple[int, int, int | None, int, tuple[str, ...]], ...]]] = [
            (locs, tuple((*key, tuple(chs)) for key, chs in by_policy.items())) for locs, by_policy in groups.items()
        ]
        by_loc: dict[str, list[int]] = {}
        for i, (locs, _) in enumerate(self._groups):
            for loc in locs:
                by_loc.setdefault(loc, []).append(i)
        self._by_location = {loc: tuple(ix) for loc, ix in by_loc.items()}

    def affected(self, changed_locations: Collection[str]) -> Sequence[int]:
        """Indexes of the channel groups whose pool includes any of these locations (ascending)."""
        if len(changed_locations) == 1:
            for loc in changed_locations:
                return self._by_location.get(loc, ())
        out: set[int] = set()
        for loc in changed_locations:
            out.update(self._by_location.get(loc, ()))
        return sorted(out)

    def all_groups(self) -> range:
        return range(len(self._groups))

    def evaluate(self, groups: Iterable[int], available: Mapping[str, int]) -> list[tuple[str, int]]:
        """(channel, ATS) for every channel in the given groups, from per-location available quantities.

        Same result as ``channel_ats`` for each channel (a test holds them equal)."""
        out: list[tuple[str, int]] = []
        get = available.get
        for gi in groups:
            locs, policies = self._groups[gi]
            pool = 0
            for loc in locs:
                a = get(loc, 0)
                if a > 0:
                    pool += a
            for pct, buffer, max_qty, zero_at, chans in policies:
                q = (pool if pct == 100 else pool * pct // 100) - buffer
                if max_qty is not None and q > max_qty:
                    q = max_qty
                if q <= zero_at:
                    q = 0
                for ch_id in chans:
                    out.append((ch_id, q))
        return out

    def changes(
        self, groups: Iterable[int], available: Mapping[str, int], stored: Mapping[str, int]
    ) -> list[tuple[str, int, int]]:
        """(channel, old, new) for every channel in the given groups whose ATS differs from ``stored`` (missing
        = 0), sorted by channel: ``evaluate`` and the comparison in one pass (the hot path of every movement)."""
        out: list[tuple[str, int, int]] = []
        get = available.get
        old_get = stored.get
        for gi in groups:
            locs, policies = self._groups[gi]
            pool = 0
            for loc in locs:
                a = get(loc, 0)
                if a > 0:
                    pool += a
            for pct, buffer, max_qty, zero_at, chans in policies:
                q = (pool if pct == 100 else pool * pct // 100) - buffer
                if max_qty is not None and q > max_qty:
                    q = max_qty
                if q <= zero_at:
                    q = 0
                for ch_id in chans:
                    old = old_get(ch_id, 0)
                    if old != q:
                        out.append((ch_id, old, q))
        out.sort()
        return out
