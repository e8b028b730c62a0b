from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from accord.app.engine import Engine
from accord.app.ports import ManualClock

from .helpers import build_world, new_engine


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def engine(backend: Any, clock: ManualClock) -> Iterator[Engine]:
    """An engine on an empty database of the current backend (deterministic clock and ids)."""
    eng = new_engine(backend.url, clock)
    try:
        yield eng
    finally:
        eng.db.dispose()


@pytest.fixture
def world(engine: Engine) -> Engine:
    """The engine with the standard world of ``helpers.build_world`` configured."""
    build_world(engine)
    return engine
