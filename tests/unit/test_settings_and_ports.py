"""Settings precedence (environment over file over defaults) and the deterministic ports."""

from __future__ import annotations

from pathlib import Path

import pytest

from accord.app.ports import ManualClock, SequentialIds
from accord.domain.errors import InvalidInput
from accord.settings import DEFAULT_DATABASE_URL, load_settings


def test_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    s = load_settings(env={})
    assert s.database_url == DEFAULT_DATABASE_URL
    assert (s.api_host, s.api_port, s.relay_max_attempts, s.webhooks, s.source) == (
        "127.0.0.1",
        8400,
        8,
        (),
        "defaults",
    )


def test_file_then_environment(tmp_path: Path) -> None:
    cfg = tmp_path / "accord.toml"
    cfg.write_text(
        'database_url = "sqlite:///from-file.db"\n'
        "[api]\nport = 9000\n"
        "[relay]\nmax_attempts = 3\nbackoff_ms = 10\n"
        '[[webhooks]]\nname = "erp"\nurl = "https://erp.example/h"\nsecret = "s"\ntypes = ["StockReceived"]\n',
        encoding="utf-8",
    )
    s = load_settings(env={}, config_path=cfg)
    assert (s.database_url, s.api_port, s.relay_max_attempts, s.relay_backoff_ms) == ("sqlite:///from-file.db", 9000,
                                                                                    3, 10)  # fmt: skip
    assert [(h.name, h.url, h.secret, h.types) for h in s.webhooks] == [
        ("erp", "https://erp.example/h", "s", ("StockReceived",))
    ]
    assert s.source == str(cfg)
    env = {"ACCORD_DATABASE_URL": "sqlite:///from-env.db", "ACCORD_API_PORT": "9100", "ACCORD_CONFIG": str(cfg)}
    s2 = load_settings(env=env)
    assert (s2.database_url, s2.api_port, s2.relay_max_attempts) == ("sqlite:///from-env.db", 9100, 3)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[api\n", "config file"),
        ("api = 3\n", "[api] must be a table"),
        ("[relay]\nmax_attempts = 'many'\n", "whole number"),
        ("[relay]\nmax_attempts = -1\n", "zero or more"),
        ('[[webhooks]]\nname = "x"\n', "webhooks[0]"),
    ],
)
def test_bad_config_file(tmp_path: Path, text: str, message: str) -> None:
    cfg = tmp_path / "accord.toml"
    cfg.write_text(text, encoding="utf-8")
    with pytest.raises(InvalidInput, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_settings(env={}, config_path=cfg)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="not found"):
        load_settings(env={"ACCORD_CONFIG": str(tmp_path / "nope.toml")})


def test_bad_port_in_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InvalidInput, match="api port"):
        load_settings(env={"ACCORD_API_PORT": "eighty"})


def test_manual_clock_and_sequential_ids() -> None:
    clock = ManualClock(1_000)
    assert clock.now_ms() == 1_000
    clock.advance(250)
    assert clock.now_ms() == 1_250
    ids = SequentialIds()
    assert [ids.new("tr"), ids.new("tr"), ids.new("ord")] == ["tr-000001", "tr-000002", "ord-000003"]
