"""Settings from the environment and an optional TOML file.

Precedence: environment (``ACCORD_*``) over the file over defaults. The file is ``$ACCORD_CONFIG`` or
``./accord.toml`` when present. Example::

    database_url = "postgresql+psycopg://accord@db/accord"
    [api]
    host = "127.0.0.1"
    port = 8400
    [relay]
    max_attempts = 8
    [[webhooks]]
    name = "erp"
    url = "https://erp.example.com/accord-events"
    secret = "..."
    types = ["ChannelAvailabilityChanged"]
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from accord.domain.errors import InvalidInput

DEFAULT_DATABASE_URL = "sqlite:///accord.db"


@dataclass(frozen=True)
class WebhookSettings:
    name: str
    url: str
    secret: str
    types: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    api_host: str = "127.0.0.1"
    api_port: int = 8400
    relay_max_attempts: int = 8
    relay_backoff_ms: int = 500
    relay_gap_timeout_ms: int = 10_000
    # channel sync: scheduled reconciliation of every channel (0: only ``accord reconcile``)
    sync_reconcile_every_s: int = 900
    webhooks: tuple[WebhookSettings, ...] = field(default_factory=tuple)
    source: str = "defaults"


def load_settings(env: dict[str, str] | None = None, config_path: str | Path | None = None) -> Settings:
    env = dict(os.environ) if env is None else env
    path = Path(config_path) if config_path else None
    if path is None and env.get("ACCORD_CONFIG"):
        path = Path(env["ACCORD_CONFIG"])
    if path is None and Path("accord.toml").is_file():
        path = Path("accord.toml")
    data: dict[str, Any] = {}
    source = "defaults"
    if path is not None:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InvalidInput(f"config file {path} not found") from None
        except tomllib.TOMLDecodeError as exc:
            raise InvalidInput(f"config file {path}: {exc}") from None
        source = str(path)
    api = _table(data, "api", path)
    relay = _table(data, "relay", path)
    sync = _table(data, "sync", path)
    hooks = []
    for i, h in enumerate(data.get("webhooks", [])):
        if not isinstance(h, dict) or not all(isinstance(h.get(k), str) for k in ("name", "url", "secret")):
            raise InvalidInput(f"config file {path}: webhooks[{i}] needs string name, url and secret")
        types = h.get("types")
        hooks.append(WebhookSettings(h["name"], h["url"], h["secret"], tuple(types) if types else None))
    return Settings(
        database_url=env.get("ACCORD_DATABASE_URL") or str(data.get("database_url", DEFAULT_DATABASE_URL)),
        api_host=env.get("ACCORD_API_HOST") or str(api.get("host", "127.0.0.1")),
        api_port=_int(env.get("ACCORD_API_PORT") or api.get("port", 8400), "api port"),
        relay_max_attempts=_int(relay.get("max_attempts", 8), "relay.max_attempts"),
        relay_backoff_ms=_int(relay.get("backoff_ms", 500), "relay.backoff_ms"),
        relay_gap_timeout_ms=_int(relay.get("gap_timeout_ms", 10_000), "relay.gap_timeout_ms"),
        sync_reconcile_every_s=_reconcile_every(
            env.get("ACCORD_RECONCILE_EVERY_S") or sync.get("reconcile_every_s", 900)
        ),
        webhooks=tuple(hooks),
        source=source,
    )


def _reconcile_every(value: object) -> int:
    every = _int(value, "ACCORD_RECONCILE_EVERY_S (sync.reconcile_every_s)")
    if every < 0:
        raise InvalidInput(f"ACCORD_RECONCILE_EVERY_S must be 0 (off) or a number of seconds, got {every}")
    return every


def _table(data: dict[str, Any], name: str, path: Path | None) -> dict[str, Any]:
    value = data.get(name, {})
    if not isinstance(value, dict):
        raise InvalidInput(f"config file {path}: [{name}] must be a table")
    return value


def _int(value: object, what: str) -> int:
    try:
        out = int(str(value))
    except ValueError:
        raise InvalidInput(f"{what} must be a whole number, got {value!r}") from None
    if out < 0:
        raise InvalidInput(f"{what} must be zero or more, got {out}")
    return out
