"""Pure availability rules: locations, channels, stock policies and ATS."""

from __future__ import annotations

import random

import pytest

from accord.domain.availability import (
    Channel,
    Location,
    LocationKind,
    StockPolicy,
    channel_ats,
    check_id,
    eligible_locations,
)
from accord.domain.errors import InvalidConfiguration, InvalidInput, NotFound

LOCS = {
    "WH": Location("WH", LocationKind.WAREHOUSE, "eu", "DE"),
    "ST": Location("ST", LocationKind.STORE, "eu", "DE"),
    "FBA": Location("FBA", LocationKind.PLATFORM_FC, "eu", "DE", owner_channel="amz"),
}


@pytest.mark.parametrize(
    ("policy", "pool", "expected"),
    [
        (StockPolicy(), 0, 0),
        (StockPolicy(), 9, 9),
        (StockPolicy(buffer_units=2), 9, 7),
        (StockPolicy(buffer_units=2), 2, 0),
        (StockPolicy(buffer_units=2), 1, 0),  # never negative
        (StockPolicy(max_qty=5), 9, 5),
        (StockPolicy(max_qty=5), 4, 4),
        (StockPolicy(max_qty=0), 9, 0),
        (StockPolicy(pool_pct=50), 9, 4),  # floored
        (StockPolicy(pool_pct=1), 99, 0),
        (StockPolicy(pool_pct=0), 100, 0),
        (StockPolicy(zero_at_or_below=3), 3, 0),
        (StockPolicy(zero_at_or_below=3), 4, 4),
        # order: pct → buffer → cap → zero threshold
        (StockPolicy(pool_pct=50, buffer_units=1, max_qty=10, zero_at_or_below=2), 40, 10),
        (StockPolicy(pool_pct=50, buffer_units=1, max_qty=10, zero_at_or_below=2), 7, 0),  # 3 - 1 = 2 → 0
        (StockPolicy(pool_pct=50, buffer_units=1, max_qty=10, zero_at_or_below=2), 8, 3),
        (StockPolicy(max_qty=3, zero_at_or_below=3), 50, 0),  # capped to 3, then at or below 3
    ],
)
def test_policy_apply(policy: StockPolicy, pool: int, expected: int) -> None:
    policy.check()
    assert policy.apply(pool) == expected


@pytest.mark.parametrize(
    ("policy", "text"),
    [
        (StockPolicy(buffer_units=-1), "buffer"),
        (StockPolicy(max_qty=-1), "max quantity"),
        (StockPolicy(pool_pct=-1), "pool percent"),
        (StockPolicy(pool_pct=101), "pool percent"),
        (StockPolicy(zero_at_or_below=-1), "threshold"),
    ],
)
def test_policy_check(policy: StockPolicy, text: str) -> None:
    with pytest.raises(InvalidInput, match=text):
        policy.check()


@pytest.mark.parametrize(
    ("loc", "error"),
    [
        (Location("", LocationKind.WAREHOUSE, "eu", "DE"), InvalidInput),
        (Location("a b", LocationKind.WAREHOUSE, "eu", "DE"), InvalidInput),
        (Location("x" * 65, LocationKind.WAREHOUSE, "eu", "DE"), InvalidInput),
        (Location("W", LocationKind.WAREHOUSE, "", "DE"), InvalidInput),
        (Location("W", LocationKind.WAREHOUSE, "eu", "de"), InvalidInput),
        (Location("W", LocationKind.WAREHOUSE, "eu", "DEU"), InvalidInput),
        (Location("W", LocationKind.WAREHOUSE, "eu", "D1"), InvalidInput),
        (Location("W", LocationKind.PLATFORM_FC, "eu", "DE"), InvalidConfiguration),
        (Location("W", LocationKind.STORE, "eu", "DE", owner_channel="amz"), InvalidConfiguration),
    ],
)
def test_location_check(loc: Location, error: type[Exception]) -> None:
    with pytest.raises(error):
        loc.check()


def test_valid_locations_pass() -> None:
    for loc in LOCS.values():
        loc.check()
    check_id("x" * 64, "id")


@pytest.mark.parametrize(
    ("channel", "error", "text"),
    [
        (Channel("amz", "amazon", "eu", "EUR", ("WH", "FBA")), None, ""),
        (Channel("shop", "shopify", "eu", "EUR", ("WH", "FBA")), InvalidConfiguration, "platform stock of channel amz"),
        (Channel("shop", "shopify", "eu", "EUR", ("WH", "XX")), NotFound, "XX"),
        (Channel("shop", "shopify", "eu", "EUR", ("WH", "WH")), InvalidInput, "twice"),
        (Channel("shop", "shopify", "eu", "eur", ("WH",)), InvalidInput, "currency"),
        (Channel("shop", "shopify", "eu", "EURO", ("WH",)), InvalidInput, "currency"),
        (Channel("shop", "", "eu", "EUR", ("WH",)), InvalidInput, "dialect"),
        (Channel("sh op", "shopify", "eu", "EUR", ("WH",)), InvalidInput, "channel id"),
        (Channel("shop", "shopify", "eu", "EUR", ("WH",), StockPolicy(pool_pct=200)), InvalidInput, "pool"),
    ],
)
def test_channel_check(channel: Channel, error: type[Exception] | None, text: str) -> None:
    if error is None:
        channel.check(LOCS)
        return
    with pytest.raises(error, match=text):
        channel.check(LOCS)


def test_platform_stock_is_eligible_only_for_its_owner() -> None:
    amz = Channel("amz", "amazon", "eu", "EUR", ("FBA", "WH"))
    other = Channel("shop", "shopify", "eu", "EUR", ("WH", "FBA", "GONE"))  # as stored before a rule tightened
    assert eligible_locations(amz, LOCS) == ("FBA", "WH")
    assert eligible_locations(other, LOCS) == ("WH",)


def test_channel_ats_sums_positive_available_of_its_locations() -> None:
    available = {"WH": 5, "ST": -2, "FBA": 3, "ELSEWHERE": 100}
    assert channel_ats(("WH", "ST", "FBA"), StockPolicy(), available) == 8  # a negative location does not subtract
    assert channel_ats(("WH", "ST"), StockPolicy(buffer_units=1), available) == 4
    assert channel_ats((), StockPolicy(), available) == 0
    assert channel_ats(("NOWHERE",), StockPolicy(), available) == 0


def test_ats_plan_agrees_with_channel_ats() -> None:
    """The batched evaluator (one pool per set of locations) gives exactly what channel_ats gives per channel."""
    from accord.domain import availability

    plan_cls = getattr(availability, "AtsPlan", None)
    if plan_cls is None:
        pytest.skip("no batched ATS evaluator in this version")
    rng = random.Random(5)
    loc_ids = ["L0", "L1", "L2", "L3", "FBA"]
    locations = {i: Location(i, LocationKind.WAREHOUSE, "eu", "DE") for i in loc_ids[:-1]}
    locations["FBA"] = Location("FBA", LocationKind.PLATFORM_FC, "eu", "DE", owner_channel="c0")
    for _ in range(50):
        channels = {}
        for n in range(rng.randint(1, 6)):
            ch_id = f"c{n}"
            locs = tuple(rng.sample(loc_ids, rng.randint(0, len(loc_ids))))
            policy = StockPolicy(
                buffer_units=rng.randint(0, 3),
                max_qty=rng.choice([None, 0, 5, 20]),
                pool_pct=rng.choice([0, 33, 50, 100]),
                zero_at_or_below=rng.randint(0, 3),
            )
            channels[ch_id] = Channel(ch_id, "x", "eu", "EUR", locs, policy)
        available = {loc: rng.randint(-3, 30) for loc in loc_ids}
        plan = plan_cls(channels, locations)
        got = dict(plan.evaluate(plan.all_groups(), available))
        want = {
            ch_id: channel_ats(eligible_locations(ch, locations), ch.policy, available)
            for ch_id, ch in channels.items()
        }
        assert got == want
        changed = rng.choice(loc_ids)
        touched = {ch for ch, _ in plan.evaluate(plan.affected([changed]), available)}
        assert touched == {ch_id for ch_id, ch in channels.items() if changed in eligible_locations(ch, locations)}
        stored = {ch_id: rng.choice([want[ch_id], want[ch_id] + 1, 0]) for ch_id in channels if rng.random() < 0.7}
        diff = plan.changes(plan.affected([changed]), available, stored)
        assert diff == sorted(
            (ch_id, stored.get(ch_id, 0), want[ch_id]) for ch_id in touched if stored.get(ch_id, 0) != want[ch_id]
        )
