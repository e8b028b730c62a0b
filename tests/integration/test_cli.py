"""The `accord` command line against every backend: exit codes, --json output, one-line errors, no writes on error."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from accord.app.ports import ManualClock
from accord.app.relay import Relay, StoredEvent
from accord.cli import main
from accord.domain.availability import Channel, Location, LocationKind, StockPolicy
from accord.domain.catalog import Sku
from accord.store import schema as t
from accord.store.db import Database, Tx

from .helpers import dump, new_engine


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


Runner = Callable[..., Run]


def _runner(capsys: pytest.CaptureFixture[str], url: str | None) -> Runner:
    def run(*argv: str) -> Run:
        capsys.readouterr()
        args = ["--database-url", url, *argv] if url else list(argv)
        code = main(args)
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return run


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No accord.toml, no config file from the environment."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ACCORD_CONFIG", raising=False)
    monkeypatch.delenv("ACCORD_DATABASE_URL", raising=False)


@pytest.fixture
def run(backend: Any, cli_env: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Runner:
    """Runs `accord ARGS` with ACCORD_DATABASE_URL pointing at the test database."""
    monkeypatch.setenv("ACCORD_DATABASE_URL", backend.url)
    return _runner(capsys, None)


CONFIG_COMMANDS = [
    ["location", "add", "WH1", "--kind", "warehouse", "--region", "eu", "--country", "DE"],
    ["location", "add", "WH2", "--kind", "warehouse", "--region", "eu", "--country", "FR"],
    ["location", "add", "FBA", "--kind", "platform_fc", "--region", "eu", "--country", "DE", "--owner-channel", "amz"],
    ["channel", "add", "shop", "--dialect", "shopify", "--region", "eu", "--currency", "EUR", "--locations", "WH1,WH2",
     "--buffer", "1"],
    ["channel", "add", "amz", "--dialect", "amazon", "--region", "eu", "--currency", "EUR", "--locations", "WH1,FBA"],
    ["sku", "add", "A", "--title", "Shirt"],
    ["sku", "add", "B"],
]  # fmt: skip


@pytest.fixture
def world_cli(run: Runner, backend: Any) -> Runner:
    """What CONFIG_COMMANDS set up, written through the engine (faster); the commands have their own test."""
    engine = new_engine(backend.url)
    try:
        engine.add_location(Location("WH1", LocationKind.WAREHOUSE, "eu", "DE"))
        engine.add_location(Location("WH2", LocationKind.WAREHOUSE, "eu", "FR"))
        engine.add_location(Location("FBA", LocationKind.PLATFORM_FC, "eu", "DE", owner_channel="amz"))
        engine.add_channel(Channel("shop", "shopify", "eu", "EUR", ("WH1", "WH2"), StockPolicy(buffer_units=1)))
        engine.add_channel(Channel("amz", "amazon", "eu", "EUR", ("WH1", "FBA")))
        engine.add_skus([Sku("A", "Shirt"), Sku("B")])
    finally:
        engine.db.dispose()
    return run


def db_state(url: str) -> dict[str, list[tuple[Any, ...]]]:
    db = Database(url)
    try:
        return dump(db)
    finally:
        db.dispose()


def test_init_creates_the_schema_and_is_repeatable(
    empty_backend: Any, cli_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    run = _runner(capsys, empty_backend.url)  # --database-url before the subcommand
    r = run("init")
    assert r.code == 0, r.err
    assert "revision" in r.out
    assert run("location", "list", "--json").json() == []
    assert run("init").code == 0
    assert run("sku", "add", "A").code == 0
    assert run("sku", "list", "--json").json() == [{"id": "A", "title": ""}]


@pytest.mark.parametrize(
    "argv", [["stock", "show"], ["sku", "add", "A"], ["stock", "receive", "A", "WH1", "1"], ["verify"]]
)
def test_uninitialised_database_is_one_line_exit_2(
    empty_backend: Any, cli_env: None, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    r = _runner(capsys, empty_backend.url)(*argv)
    assert r.code == 2
    assert r.err.splitlines() == ["error: database not initialised: run `accord init` first"]


def test_configuration_commands(run: Runner) -> None:
    for argv in CONFIG_COMMANDS:
        r = run(*argv)
        assert r.code == 0, r.err
        assert r.out.startswith("added ")
    locs = run("location", "list", "--json").json()
    assert [(x["id"], x["kind"], x["owner_channel"]) for x in locs] == [
        ("FBA", "platform_fc", "amz"),
        ("WH1", "warehouse", None),
        ("WH2", "warehouse", None),
    ]
    chans = {c["id"]: c for c in run("channel", "list", "--json").json()}
    assert chans["shop"]["locations"] == ["WH1", "WH2"]
    assert chans["shop"]["policy"] == {"buffer_units": 1, "max_qty": None, "pool_pct": 100, "zero_at_or_below": 0}
    assert run("channel", "show", "amz", "--json").json()["locations"] == ["WH1", "FBA"]
    assert run("sku", "list", "--json").json() == [{"id": "A", "title": "Shirt"}, {"id": "B", "title": ""}]
    assert run("sku", "list", "--json", "--after", "A").json() == [{"id": "B", "title": ""}]
    again = run("sku", "add", "A", "--title", "Shirt")
    assert again.code == 0 and "already exists" in again.out
    r = run("channel", "update", "shop", "--max-qty", "5", "--zero-at", "1")
    assert r.code == 0, r.err
    assert run("channel", "show", "shop", "--json").json()["policy"] == {
        "buffer_units": 1, "max_qty": 5, "pool_pct": 100, "zero_at_or_below": 1,
    }  # fmt: skip


def test_stock_commands_with_json_and_keys(world_cli: Runner) -> None:
    run = world_cli
    r = run("stock", "receive", "A", "WH1", "10", "--key", "po-1", "--json")
    assert r.code == 0, r.err
    got = r.json()
    assert (got["kind"], got["qty"], got["replayed"]) == ("receive", 10, False)
    assert got["balances"]["WH1"]["on_hand"] == 10
    assert got["ats_changes"] == [
        {"channel": "amz", "old_ats": 0, "new_ats": 10},
        {"channel": "shop", "old_ats": 0, "new_ats": 9},
    ]
    replay = run("stock", "receive", "A", "WH1", "10", "--key", "po-1", "--json")
    assert replay.code == 0 and replay.json()["replayed"] is True
    text_replay = run("stock", "receive", "A", "WH1", "10", "--key", "po-1")
    assert text_replay.code == 0 and "nothing moved" in text_replay.out

    assert run("stock", "reserve", "A", "WH1", "4", "--key", "o-1", "--ref", "order-1").code == 0
    assert run("stock", "ship", "A", "WH1", "3", "--key", "s-1", "--json").json()["balances"]["WH1"] == {
        "on_hand": 7, "committed": 1, "in_transit": 0, "damaged": 0, "quarantine": 0, "available": 6,
    }  # fmt: skip
    t_out = run("stock", "transfer", "A", "WH1", "WH2", "5", "--key", "t-1", "--transfer-id", "T-1", "--json")
    assert t_out.code == 0, t_out.err
    assert t_out.json()["transfer_id"] == "T-1"
    transfers = run("stock", "transfers", "--open", "--json").json()
    assert [(x["id"], x["qty_shipped"], x["qty_received"]) for x in transfers] == [("T-1", 5, 0)]
    part = run("stock", "transfer-in", "T-1", "2", "--key", "ti-1", "--json")
    assert part.code == 0, part.err
    assert part.json()["balances"]["WH2"] == {
        "on_hand": 2, "committed": 0, "in_transit": 3, "damaged": 0, "quarantine": 0, "available": 2,
    }  # fmt: skip
    assert run("stock", "transfer-in", "T-1", "2", "--key", "ti-1", "--json").json()["replayed"] is True
    assert run("stock", "adjust", "A", "WH2", "--by", "-1", "--reason", "lost", "--key", "adj").code == 0
    assert run("stock", "count", "B", "WH1", "6", "--key", "cnt").code == 0

    shown = run("stock", "show", "--json").json()
    assert [(x["sku"], x["location"], x["on_hand"], x["committed"], x["in_transit"]) for x in shown] == [
        ("A", "WH1", 2, 1, 0),
        ("A", "WH2", 1, 0, 3),
        ("B", "WH1", 6, 0, 0),
    ]
    assert [x["location"] for x in run("stock", "show", "A", "--location", "WH2", "--json").json()] == ["WH2"]
    assert run("ats", "A", "--json").json() == {"sku": "A", "ats": {"amz": 1, "shop": 1}}
    assert run("ats", "B", "--channel", "shop", "--json").json() == {"sku": "B", "ats": {"shop": 5}}
    assert run("verify").code == 0


BAD_INPUT = [
    (["stock", "receive", "NOPE", "WH1", "5"], "unknown SKU 'NOPE'"),
    (["stock", "receive", "A", "WH9", "5"], "unknown location 'WH9'"),
    (["stock", "receive", "A", "WH1", "abc"], "integer"),
    (["stock", "receive", "A", "WH1", "0"], "quantity must be positive, got 0"),
    (["stock", "reserve", "A", "WH1", "11"], "only 10 available"),
    (["stock", "ship", "A", "WH1", "1"], "only 0 committed"),
    (["stock", "receive", "A", "WH1", "3", "--key", "po-1"], "idempotency key 'po-1' was already used"),
    (["stock", "transfer", "A", "WH1", "WH1", "1"], "same location"),
    (["stock", "transfer-in", "T-404", "1"], "unknown transfer 'T-404'"),
    (["stock", "scrap", "A", "WH1", "1", "--from", "committed"], "scrap source"),
    (["ats", "NOPE"], "unknown SKU 'NOPE'"),
    (["ats", "A", "--channel", "nope"], "unknown channel 'nope'"),
    (["location", "add", "WH1", "--kind", "warehouse", "--region", "eu", "--country", "DE"], "already exists"),
    (["location", "add", "X", "--kind", "castle", "--region", "eu", "--country", "DE"], "castle"),
    (["location", "add", "X", "--kind", "warehouse", "--region", "eu", "--country", "germany"], "country"),
    (["channel", "add", "ebay", "--dialect", "ebay", "--region", "eu", "--currency", "EUR", "--locations", "FBA"],
     "platform stock"),
    (["channel", "update", "shop", "--pool-pct", "150"], "pool percent"),
    (["sku", "add", "A", "--title", "Other"], "already exists"),
    (["sku", "add", "has space"], "SKU"),
    (["deadletters", "redrive", "nobody", "1"], "unknown subscriber 'nobody'"),
    (["no-such-command"], "no-such-command"),
]  # fmt: skip


@pytest.mark.parametrize(("argv", "text"), BAD_INPUT, ids=[" ".join(a[:3]) + f"-{i}" for i, (a, _) in
                                                         enumerate(BAD_INPUT)])  # fmt: skip
def test_bad_input_is_one_line_exit_2_and_writes_nothing(
    world_cli: Runner, backend: Any, argv: list[str], text: str
) -> None:
    assert world_cli("stock", "receive", "A", "WH1", "10", "--key", "po-1").code == 0
    before = db_state(backend.url)
    r = world_cli(*argv)
    assert r.code == 2
    lines = r.err.splitlines()
    assert len(lines) == 1, r.err
    assert lines[0].startswith("error")
    assert text in lines[0]
    assert r.out == ""
    assert db_state(backend.url) == before


def test_verify_exit_codes(world_cli: Runner, backend: Any) -> None:
    run = world_cli
    run("stock", "receive", "A", "WH1", "10", "--key", "k")
    ok = run("verify", "--json")
    assert ok.code == 0 and ok.json() == {"ok": True, "mismatches": []}
    engine = sa.create_engine(backend.url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            conn.execute(sa.update(t.balances).values(on_hand=t.balances.c.on_hand + 5))
    finally:
        engine.dispose()
    bad = run("verify")
    assert bad.code == 1
    assert "balance" in bad.out and "WH1" in bad.out and "on_hand=15" in bad.out
    as_json = run("verify", "--json")
    assert as_json.code == 1
    report = as_json.json()
    assert report["ok"] is False
    assert any("balance" in m and "'A'" in m and "'WH1'" in m for m in report["mismatches"])


def test_events_tail(world_cli: Runner) -> None:
    run = world_cli
    run("stock", "receive", "A", "WH1", "10", "--key", "k1")
    run("stock", "reserve", "A", "WH1", "2", "--key", "k2")
    everything = [json.loads(line) for line in run("events", "tail", "-n", "1000", "--json").out.splitlines()]
    assert [e["type"] for e in everything[:3]] == ["LocationAdded"] * 3
    ids = [e["id"] for e in everything]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    r = run("events", "tail", "-n", "3", "--json")
    assert r.code == 0, r.err
    assert [json.loads(line) for line in r.out.splitlines()] == everything[-3:]
    moved = [(e["key"], m["kind"], m["key"], m["qty"]) for e in everything if e["type"] == "MovementsRecorded"
             for m in e["data"]["movements"]]  # fmt: skip
    assert moved == [("A", "receive", "k1", 10), ("A", "reserve", "k2", 2)]
    assert everything[-1]["type"] == "ChannelAvailabilityChanged"
    recorded = [json.loads(x) for x in run("events", "tail", "--type", "MovementsRecorded", "--json").out.splitlines()]
    assert [[m["key"] for m in e["data"]["movements"]] for e in recorded] == [["k1"], ["k2"]]
    text = run("events", "tail", "-n", "1")
    assert text.code == 0 and "ChannelAvailabilityChanged" in text.out


class _Broken:
    name = "broken"
    types = frozenset({"MovementsRecorded"})
    transactional = True

    def handle(self, event: StoredEvent, tx: Tx | None) -> None:
        raise RuntimeError("downstream is down")


def test_deadletters(world_cli: Runner, backend: Any) -> None:
    run = world_cli
    none = run("deadletters")
    assert none.code == 0 and "no dead letters" in none.out
    assert run("deadletters", "--json").json() == []
    run("stock", "receive", "A", "WH1", "10", "--key", "k1")
    db = Database(backend.url)
    try:
        Relay(db, [_Broken()], ManualClock(), max_attempts=1, gap_timeout_ms=0).drain()
    finally:
        db.dispose()
    rows = run("deadletters", "--json").json()
    assert [(x["subscriber"], x["type"], x["key"], x["attempts"]) for x in rows] == [
        ("broken", "MovementsRecorded", "A", 1)
    ]
    assert "downstream is down" in rows[0]["last_error"]
    assert run("deadletters", "--subscriber", "other", "--json").json() == []
    table = run("deadletters")
    assert table.code == 0 and "broken" in table.out
