"""The cached catalogue state never outlives a rolled-back definition change (its version number is reused)."""

from __future__ import annotations

from typing import Any

import pytest

from accord.bootstrap import App
from accord.domain.pim import Locale
from accord.pim import Pim


def test_rolled_back_definition_change_leaves_no_stale_state(app: App, pim: Pim, monkeypatch: Any) -> None:
    other = Pim(app.db, app.engine)  # a second process working on the same database
    assert "fr_FR" not in pim.state().catalog.locales

    def fail(*_: Any) -> None:
        raise RuntimeError("crash after the version was bumped")

    monkeypatch.setattr(pim, "_emit", fail)
    with pytest.raises(RuntimeError):
        pim.set_locales([Locale("fr_FR")])
    monkeypatch.undo()

    other.set_locales([Locale("it_IT")])  # commits the version number the rolled-back change had used
    locales = pim.state().catalog.locales
    assert "it_IT" in locales
    assert "fr_FR" not in locales
