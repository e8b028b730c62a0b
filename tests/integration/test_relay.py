"""Relay: outbox → subscribers, exactly once in effect, retries with backoff, dead letters, redrive, webhooks."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest
import sqlalchemy as sa

from accord.app.engine import Engine
from accord.app.ports import ManualClock
from accord.app.relay import Relay, StoredEvent, WebhookSubscriber, dead_letters, fetch_events
from accord.domain.errors import NotFound
from accord.domain.events import recorded_movements
from accord.store.db import Tx
from accord.store.schema import outbox

from .helpers import WH1, A, B, mv, outbox_max

SEEN = "relay_test_seen"


class Recorder:
    """A subscriber that records every call; transactional ones also write the event id in the open transaction."""

    def __init__(
        self,
        name: str,
        *,
        transactional: bool = True,
        types: frozenset[str] | None = None,
        fail_on: frozenset[str] = frozenset(),
    ) -> None:
        self.name = name
        self.transactional = transactional
        self.types = types
        self.fail_on = set(fail_on)  # event types, or kinds of recorded movements, that make it raise
        self.calls: list[int] = []

    def handle(self, event: StoredEvent, tx: Tx | None) -> None:
        self.calls.append(event.id)
        if event.type in self.fail_on or self.fail_on & set(kinds_of(event)):
            raise RuntimeError(f"cannot handle {event.type}")
        if tx is not None:
            tx.cur.execute(
                f"INSERT INTO {SEEN} (subscriber, event_id) VALUES ({_ph(tx)}, {_ph(tx)})", (self.name, event.id)
            )


def kinds_of(event: StoredEvent) -> list[str]:
    return [str(m["kind"]) for m in recorded_movements(event.type, event.data)]


def keys_of(event: StoredEvent) -> list[str]:
    return [str(m["key"]) for m in recorded_movements(event.type, event.data)]


def _ph(tx: Tx) -> str:
    return "?" if tx.backend == "sqlite" else "%s"


@pytest.fixture
def seen(world: Engine) -> Iterator[None]:
    """A side table a transactional subscriber writes to: its rows are the committed effects."""
    with world.db.engine.begin() as conn:
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {SEEN}")
        conn.exec_driver_sql(f"CREATE TABLE {SEEN} (subscriber VARCHAR(64) NOT NULL, event_id BIGINT NOT NULL)")
    yield
    with world.db.engine.begin() as conn:
        conn.exec_driver_sql(f"DROP TABLE {SEEN}")


def effects(engine: Engine, subscriber: str) -> list[int]:
    with engine.db.engine.connect() as conn:
        rows = conn.execute(
            sa.text(f"SELECT event_id FROM {SEEN} WHERE subscriber = :s ORDER BY event_id"), {"s": subscriber}
        ).all()
        conn.rollback()
    return [int(r[0]) for r in rows]


def all_ids(engine: Engine) -> list[int]:
    with engine.db.engine.connect() as conn:
        ids = [int(r[0]) for r in conn.execute(sa.select(outbox.c.id).order_by(outbox.c.id))]
        conn.rollback()
    return ids


def relay(engine: Engine, clock: ManualClock, *subs: object, **kw: int) -> Relay:
    return Relay(engine.db, list(subs), clock, **kw)  # type: ignore[arg-type]


def test_each_event_is_handled_once_across_rounds_and_relays(world: Engine, clock: ManualClock, seen: None) -> None:
    first, second = Recorder("projection"), Recorder("projection")
    r1, r2 = relay(world, clock, first), relay(world, clock, second)
    world.move(mv("receive", A, WH1, 5, "a"))
    assert r1.run_once().delivered == len(all_ids(world))
    assert r1.run_once().delivered == 0
    assert r2.run_once().delivered == 0
    world.move(mv("reserve", A, WH1, 2, "b"))
    world.move(mv("receive", B, WH1, 1, "c"))
    r2.run_once()
    r1.run_once()
    r2.drain()
    assert effects(world, "projection") == all_ids(world)
    assert sorted(first.calls + second.calls) == all_ids(world)  # nobody was handed an event twice
    assert r1.backlog() == {"projection": 0}


def test_two_relays_racing_in_threads_apply_each_event_once(world: Engine, clock: ManualClock, seen: None) -> None:
    subs = [Recorder("projection"), Recorder("projection")]
    relays = [relay(world, clock, s) for s in subs]
    done = threading.Event()
    errors: list[BaseException] = []

    def pump(r: Relay) -> None:
        try:
            while not done.is_set():
                r.run_once()
        except BaseException as exc:  # surfaced in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=pump, args=(r,)) for r in relays]
    for th in threads:
        th.start()
    try:
        for i in range(25):
            world.move(mv("receive", A, WH1, 1, f"k{i}"))
    finally:
        done.set()
        for th in threads:
            th.join(timeout=60)
    assert errors == []
    relays[0].drain()
    relays[1].drain()
    assert effects(world, "projection") == all_ids(world)  # committed exactly once each


def test_failing_subscriber_backs_off_then_dead_letters_while_others_continue(
    world: Engine, clock: ManualClock, seen: None
) -> None:
    flaky = Recorder("flaky", fail_on=frozenset({"reserve"}))
    steady = Recorder("steady")
    r = relay(world, clock, flaky, steady, max_attempts=3, backoff_ms=1000)
    r.drain()
    start = outbox_max(world.db)
    world.move(mv("receive", A, WH1, 5, "a"))
    world.move(mv("reserve", A, WH1, 1, "b"))
    reserved = next(e.id for e in fetch_events(world.db, after=start) if kinds_of(e) == ["reserve"])
    world.move(mv("receive", B, WH1, 1, "c"))

    report = r.run_once()
    assert report.failed == 1
    assert "flaky" in report.waiting
    assert flaky.calls.count(reserved) == 1
    assert effects(world, "steady") == all_ids(world)  # the other subscriber is not held up
    assert max(effects(world, "flaky")) < reserved  # delivery is in order: flaky waits at the failing event

    # not due yet: no new attempt
    r.run_once()
    assert flaky.calls.count(reserved) == 1
    clock.advance(1000)
    assert r.run_once().failed == 1
    assert flaky.calls.count(reserved) == 2
    clock.advance(1999)  # backoff doubled to 2000 ms
    r.run_once()
    assert flaky.calls.count(reserved) == 2
    clock.advance(1)
    report = r.run_once()
    assert report.dead == 1
    assert flaky.calls.count(reserved) == 3

    dead = dead_letters(world.db)
    assert [(d.subscriber, d.event_id, d.event_type, d.attempts) for d in dead] == [
        ("flaky", reserved, "MovementsRecorded", 3)
    ]
    assert "cannot handle MovementsRecorded" in dead[0].last_error
    assert dead_letters(world.db, "steady") == []
    # past the dead letter, flaky got everything else
    assert effects(world, "flaky") == [i for i in all_ids(world) if i != reserved]
    assert r.backlog() == {"flaky": 0, "steady": 0}

    # redrive while still broken: stays dead, one more attempt counted
    assert r.redrive("flaky", reserved) is False
    assert dead_letters(world.db)[0].attempts == 4
    # fixed: redrive delivers it once and the dead letter is gone
    flaky.fail_on.clear()
    assert r.redrive("flaky", reserved) is True
    assert dead_letters(world.db) == []
    assert effects(world, "flaky") == all_ids(world)
    with pytest.raises(NotFound):
        r.redrive("flaky", reserved)
    with pytest.raises(NotFound):
        r.redrive("nobody", reserved)
    assert effects(world, "steady") == all_ids(world)


def test_a_recovered_subscriber_clears_its_failure(world: Engine, clock: ManualClock, seen: None) -> None:
    sub = Recorder("once-broken", fail_on=frozenset({"receive"}))
    r = relay(world, clock, sub, max_attempts=5, backoff_ms=10)
    world.move(mv("receive", A, WH1, 5, "a"))
    assert r.run_once().failed == 1
    sub.fail_on.clear()
    clock.advance(10)
    r.drain()
    assert effects(world, "once-broken") == all_ids(world)
    assert dead_letters(world.db) == []


def test_type_filters(world: Engine, clock: ManualClock, seen: None) -> None:
    only = Recorder("movements", types=frozenset({"MovementsRecorded"}))
    r = relay(world, clock, only)
    world.move(mv("receive", A, WH1, 5, "a"))
    world.move(mv("reserve", A, WH1, 2, "b"))
    world.move(mv("release", A, WH1, 1, "c"))
    report = r.drain()
    wanted = [e.id for e in fetch_events(world.db, limit=1000) if e.type == "MovementsRecorded"]
    assert [keys_of(e) for e in fetch_events(world.db, limit=1000) if e.id in wanted] == [["a"], ["b"], ["c"]]
    assert effects(world, "movements") == wanted
    assert only.calls == wanted
    assert report.skipped >= len(all_ids(world)) - 3  # the availability events (and the setup's) are not wanted
    assert r.backlog() == {"movements": 0}


def test_duplicate_subscriber_names_are_refused(world: Engine, clock: ManualClock) -> None:
    with pytest.raises(ValueError, match="unique"):
        relay(world, clock, Recorder("x"), Recorder("x"))


# ---------------------------------------------------------------------------------------------- webhooks


@pytest.fixture
def http() -> Iterator[tuple[list[httpx.Request], list[int], httpx.Client]]:
    """A client whose answers come from ``statuses`` (default 204) and whose requests land in ``sent``."""
    sent: list[httpx.Request] = []
    statuses: list[int] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(statuses.pop(0) if statuses else 204, text="nope" if statuses else "")

    client = httpx.Client(transport=httpx.MockTransport(answer))
    yield sent, statuses, client
    client.close()


def test_webhook_posts_signed_events(
    world: Engine, clock: ManualClock, http: tuple[list[httpx.Request], list[int], httpx.Client]
) -> None:
    sent, _, client = http
    hook = WebhookSubscriber(
        "erp", "https://erp.example/hook", "s3cret", types=frozenset({"MovementsRecorded"}), client=client
    )
    r = relay(world, clock, hook)
    world.move(mv("receive", A, WH1, 5, "a"))
    world.move(mv("reserve", A, WH1, 1, "b"))
    assert r.drain().delivered == 2  # the two movements' events, not their availability events
    assert len(sent) == 2
    req = sent[0]
    body = req.content
    expected_sig = hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert req.headers["x-accord-signature"] == f"sha256={expected_sig}"
    assert req.method == "POST"
    assert str(req.url) == "https://erp.example/hook"
    payload = json.loads(body)
    assert payload["type"] == "MovementsRecorded"
    assert [m["key"] for m in payload["data"]["movements"]] == ["a"]
    assert req.headers["x-accord-event-id"] == str(payload["id"])
    assert req.headers["x-accord-event-type"] == "MovementsRecorded"
    # a different secret would not verify
    assert hmac.new(b"other", body, hashlib.sha256).hexdigest() != expected_sig
    assert r.drain().delivered == 0  # not posted again


def test_webhook_error_answer_is_a_failure(
    world: Engine, clock: ManualClock, http: tuple[list[httpx.Request], list[int], httpx.Client]
) -> None:
    sent, statuses, client = http
    hook = WebhookSubscriber(
        "erp", "https://erp.example/hook", "k", types=frozenset({"MovementsRecorded"}), client=client
    )
    r = relay(world, clock, hook, max_attempts=2, backoff_ms=100)
    world.move(mv("receive", A, WH1, 5, "a"))
    statuses.extend([500, 500])
    assert r.run_once().failed == 1
    clock.advance(100)
    assert r.run_once().dead == 1
    dead = dead_letters(world.db, "erp")
    assert len(dead) == 1 and "HTTP 500" in dead[0].last_error
    assert len(sent) == 2
    # the receiver is back: redrive posts the same event id again
    assert r.redrive("erp", dead[0].event_id) is True
    assert len(sent) == 3
    assert sent[2].headers["x-accord-event-id"] == str(dead[0].event_id)
    assert Counter(q.headers["x-accord-event-id"] for q in sent) == {str(dead[0].event_id): 3}


def test_an_event_of_a_transaction_left_open_is_delivered_in_order_not_skipped(
    world: Engine, clock: ManualClock
) -> None:
    if world.db.backend != "postgresql":
        pytest.skip("SQLite serialises writers: no other transaction can commit while one is open")
    rec = Recorder("projection", transactional=False)
    r = relay(world, clock, rec)
    world.move(mv("receive", A, WH1, 5, "before"))
    r.drain()
    delivered_before = list(rec.calls)
    with world.db.tx() as tx:
        # the open transaction takes the smaller outbox ids ...
        world.move_batch_in(tx, [mv("receive", A, WH1, 1, "slow")])
        # ... while a later one commits larger ids
        world.move(mv("receive", B, WH1, 3, "fast"))
        clock.advance(3_600_000)  # an hour: no timeout ever passes an id that may still commit
        report = r.run_once()
        assert report.delivered == 0 and rec.calls == delivered_before
        assert "in flight" in report.waiting["projection"]
        # a reader paging the outbox by id (API, events tail) is held back the same way
        assert fetch_events(world.db, after=max(delivered_before)) == []
    r.drain()
    ids = all_ids(world)
    assert rec.calls == ids  # every event exactly once, in outbox order
    slow = [e.id for e in fetch_events(world.db) if "slow" in keys_of(e)]
    fast = [e.id for e in fetch_events(world.db) if "fast" in keys_of(e)]
    assert slow and fast and max(slow) < min(fast)
    assert rec.calls.index(slow[0]) < rec.calls.index(fast[0])


def test_a_rolled_back_transaction_leaves_no_hole_the_relay_waits_on(world: Engine, clock: ManualClock) -> None:
    rec = Recorder("projection", transactional=False)
    r = relay(world, clock, rec)
    with pytest.raises(RuntimeError), world.db.tx() as tx:
        world.move_batch_in(tx, [mv("receive", A, WH1, 1, "gone")])
        raise RuntimeError("caller fails after the movement")
    world.move(mv("receive", B, WH1, 3, "kept"))
    r.drain()
    assert rec.calls == all_ids(world)
    assert not [e for e in fetch_events(world.db) if "gone" in keys_of(e)]
    assert any("kept" in keys_of(e) for e in fetch_events(world.db))
