"""Movement metrics count what committed: a movement inside a caller's transaction counts only once it commits."""

from __future__ import annotations

import pytest

from accord.app.engine import Engine

from .helpers import WH1, A, mv


def test_move_batch_in_counts_after_the_callers_commit(world: Engine) -> None:
    with world.db.tx() as tx:
        world.move_batch_in(tx, [mv("receive", A, WH1, 5, "k1"), mv("reserve", A, WH1, 2, "k2")])
        assert world.stats["movements.receive"] == 0  # not committed yet
    assert world.stats["movements.receive"] == 1
    assert world.stats["movements.reserve"] == 1


def test_move_batch_in_rolled_back_counts_nothing(world: Engine) -> None:
    with pytest.raises(RuntimeError), world.db.tx() as tx:
        world.move_batch_in(tx, [mv("receive", A, WH1, 5, "k1")])
        raise RuntimeError("the order intake failed after reserving")
    assert world.stats["movements.receive"] == 0
    assert world.stats["ats.changes"] == 0
    world.move(mv("receive", A, WH1, 5, "k1"))  # the key was never used: it moves now
    assert world.stats["movements.receive"] == 1
