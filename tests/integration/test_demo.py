"""The main job's quick part: `accord demo --ledger` builds the walkthrough world and ends with a clean verify."""

from __future__ import annotations

from pathlib import Path

import pytest

from accord.cli import main


def test_demo_ledger_walkthrough_runs_and_verifies(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["demo", "--ledger", "--dir", str(tmp_path / "demo")])
    out = capsys.readouterr().out
    assert code == 0
    assert "Oversell refused" in out
    assert "replayed=True" in out
    assert "ledger replay matches balances" in out
    assert (tmp_path / "demo" / "ledger-walkthrough.db").is_file()


def test_demo_rejects_bad_days(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--days", "0", "--dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--days" in err[0]
