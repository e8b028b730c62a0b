"""Ports the core needs from the outside world: time and identifiers (deterministic in tests and the simulator)."""

from __future__ import annotations

import itertools
import time
import uuid
from typing import Protocol


class Clock(Protocol):
    def now_ms(self) -> int: ...


class Ids(Protocol):
    def new(self, prefix: str) -> str: ...


class SystemClock:
    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000


class ManualClock:
    """A clock that only moves when told to (tests, simulator)."""

    def __init__(self, start_ms: int = 1_767_225_600_000) -> None:  # 2026-01-01T00:00:00Z
        self.ms = start_ms

    def now_ms(self) -> int:
        return self.ms

    def advance(self, ms: int) -> None:
        self.ms += ms


class RandomIds:
    def new(self, prefix: str) -> str:
        return f"{prefix}-{uuid.uuid4().hex[:20]}"


class SequentialIds:
    """Deterministic ids: prefix-000001, prefix-000002, ..."""

    def __init__(self) -> None:
        self._n = itertools.count(1)

    def new(self, prefix: str) -> str:
        return f"{prefix}-{next(self._n):06d}"
