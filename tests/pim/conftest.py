"""A stored PIM on each backend (the ``backend`` fixture from tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from accord.bootstrap import App, build_app
from accord.pim import Pim

from .helpers import setup_catalog


@pytest.fixture
def app(backend: Any) -> Iterator[App]:
    a = build_app(database_url=backend.url)
    try:
        yield a
    finally:
        a.close()


@pytest.fixture
def pim(app: App) -> Pim:
    p = Pim(app.db, app.engine)
    setup_catalog(app, p)
    return p
