"""Rule files users add (dialects and packs) are stored in the database: they apply in every process, a change
recomputes exactly the readiness rows it affects in the same transaction, and a bad file names its line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from accord.bootstrap import App
from accord.cli import main
from accord.domain.errors import InvalidInput, NotFound
from accord.pim import Pim
from accord.store import pim_tables as pt
from accord.store import schema as t

from .helpers import shirt

ECO_PACK = """name = "eco_claims"
kind = "pack"
description = "EU green claims: an organic flag must be declared."

[scope]
countries = ["@EU"]

[[rules]]
id = "organic-declared"
check = "required"
attribute = "organic"
severity = "{severity}"
"""

BAD_PACK = """name = "eco_claims"
kind = "pack"

[[rules]]
id = "ok"
check = "required"
attribute = "brand"

[[rules]]
id = "bad"
check = "sparkle"
attribute = "brand"
"""


def _events(app: App, after: int = 0) -> list[dict[str, Any]]:
    with app.db.engine.connect() as conn:
        rows = conn.execute(
            sa.select(t.outbox.c.data)
            .where(t.outbox.c.type == "ReadinessChanged", t.outbox.c.id > after)
            .order_by(t.outbox.c.id)
        )
        return [orjson.loads(r[0]) for r in rows]


def _last_id(app: App) -> int:
    with app.db.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.coalesce(sa.func.max(t.outbox.c.id), 0))).scalar_one())


def _blocked(pim: Pim) -> set[tuple[str, str, str]]:
    return {(r["sku"], r["channel"], r["locale"]) for r in pim.readiness("SHIRT") if not r["ready"]}


def _stored(app: App) -> int:
    with app.db.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(pt.pim_rulesets)).scalar_one())


def test_a_stored_pack_applies_in_every_process_and_updates_exactly_the_affected_rows(
    app: App, pim: Pim, tmp_path: Path
) -> None:
    pim.upsert_product(shirt())
    assert not _blocked(pim)
    mark = _last_id(app)
    path = tmp_path / "eco.toml"
    path.write_text(ECO_PACK.format(severity="error"), encoding="utf-8")
    res = pim.add_ruleset_file(path, "erin")
    # EU channels only: amazon-de (de_DE, en_GB) and google-de (de_DE), for both variants
    eu_keys = {(v, c, loc) for v in ("SHIRT-S", "SHIRT-M") for c, loc in
               (("amazon-de", "de_DE"), ("amazon-de", "en_GB"), ("google-de", "de_DE"))}  # fmt: skip
    assert _blocked(pim) == eu_keys
    assert (res["changed"], res["readiness_written"], res["readiness_changed"]) == (True, 6, 6)
    events = _events(app, mark)
    assert sorted(e["sku"] for e in events) == ["SHIRT-M", "SHIRT-S"]
    assert {(e["sku"], c["channel"], c["locale"]) for e in events for c in e["changes"]} == eu_keys
    assert all(c["was_ready"] is True and c["errors"] == ["required"] for e in events for c in e["changes"])

    # another process (a fresh service on the same database) applies the stored pack to new products
    other = Pim(app.db, app.engine)
    assert other.library.packs["eco_claims"].source == str(path)
    other.upsert_product(shirt("OTHER"))
    assert {r["channel"] for r in other.readiness("OTHER") if not r["ready"]} == {"amazon-de", "google-de"}
    rows = {(r["kind"], r["name"]): r for r in other.rulesets()}
    assert rows[("pack", "eco_claims")]["origin"] == "stored"
    assert rows[("pack", "eu_gpsr")]["origin"] == "builtin"

    # adding the same file again changes nothing; a changed file (warning) unblocks, and says so
    assert pim.add_ruleset_file(path)["changed"] is False
    mark = _last_id(app)
    path.write_text(ECO_PACK.format(severity="warning"), encoding="utf-8")
    res = pim.add_ruleset_file(path)
    assert not _blocked(pim) and res["readiness_changed"] == 6 + 6  # SHIRT and OTHER, two variants each
    warned = [r for r in pim.readiness("SHIRT-S", "amazon-de")]
    assert all(r["ready"] and r["issues"][0]["rule"] == "eco_claims:organic-declared" for r in warned)
    assert {e["sku"] for e in _events(app, mark)} == {"SHIRT-S", "SHIRT-M", "OTHER-S", "OTHER-M"}

    # removing it restores the built-in rules: the warning rows go
    pim.remove_ruleset("pack", "eco_claims")
    assert all(r["issues"] == [] for r in pim.readiness("SHIRT")) and _stored(app) == 0
    assert pim.recompute()["written"] == 0
    with pytest.raises(NotFound):
        pim.remove_ruleset("pack", "eco_claims")


def test_a_stored_dialect_replaces_a_builtin_one_and_cannot_be_pulled_from_under_a_channel(app: App, pim: Pim) -> None:
    pim.upsert_product(shirt())
    text = 'name = "shopify"\nkind = "dialect"\n\n[[rules]]\nid = "brand-short"\ncheck = "max_len_chars"\n'
    text += 'attribute = "brand"\nmax = 2\n'
    mark = _last_id(app)
    pim.add_ruleset(text, "shopify.toml")
    assert {c for _, c, _ in _blocked(pim)} == {"shopify-dtc"}
    assert {e["sku"] for e in _events(app, mark)} == {"SHIRT-S", "SHIRT-M"}
    # a new dialect nobody uses yet can be added; a channel then uses it; removing it is refused
    pim.add_ruleset('name = "kaufland"\nkind = "dialect"\n', "kaufland.toml")
    pim.set_channel_context("google-de", country="DE", locales=["de_DE"], vat_inclusive=True, rules_dialect="kaufland")
    with pytest.raises(InvalidInput, match="channel google-de uses dialect kaufland"):
        pim.remove_ruleset("dialect", "kaufland")
    assert _stored(app) == 2
    # the stored shopify dialect can go: the built-in one applies again
    pim.remove_ruleset("dialect", "shopify")
    assert not _blocked(pim)


def test_a_bad_rule_file_names_file_and_line_and_writes_nothing(app: App, pim: Pim, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(BAD_PACK, encoding="utf-8")
    with pytest.raises(InvalidInput, match=rf"{bad}:9 .*unknown check 'sparkle'"):
        pim.add_ruleset_file(bad)
    broken = tmp_path / "broken.json"
    broken.write_text('{"name": "x",\n "kind": "pack",\n "rules": [\n  {"check": "required" "attribute": 1}]}\n')
    with pytest.raises(InvalidInput, match=rf"{broken}:4: cannot parse json"):
        pim.add_ruleset_file(broken)
    rule_in_json = tmp_path / "rule.json"
    rule_in_json.write_text(
        '{"name": "x", "kind": "pack",\n "rules": [\n  {"check": "required", "attribute": "brand"},\n'
        '  {"check": "max_items", "attribute": "brand", "max": -1}\n ]}\n'
    )
    with pytest.raises(InvalidInput, match=rf"{rule_in_json}:4 .*non-negative"):
        pim.add_ruleset_file(rule_in_json)
    assert _stored(app) == 0


def test_cli_rules_add_list_remove(app: App, pim: Pim, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def run(*args: str) -> int:
        return main(["--database-url", app.db.url, *args])

    pim.upsert_product(shirt())
    good = tmp_path / "eco.toml"
    good.write_text(ECO_PACK.format(severity="error"), encoding="utf-8")
    assert run("pim", "rules", "add", str(good)) == 0
    assert "pack eco_claims saved (1 rules); 6 readiness rows changed" in capsys.readouterr().out
    bad = tmp_path / "bad.toml"
    bad.write_text(BAD_PACK, encoding="utf-8")
    assert run("pim", "rules", "add", str(bad)) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {bad}:9 ") and "unknown check 'sparkle'" in err and "\n" not in err
    assert run("pim", "rules", "add", str(tmp_path / "missing.toml")) == 2
    assert "cannot read" in capsys.readouterr().err
    assert run("pim", "rules", "list", "--json") == 0
    listed = {(r["kind"], r["name"]): r["origin"] for r in json.loads(capsys.readouterr().out)}
    assert listed[("pack", "eco_claims")] == "stored" and listed[("dialect", "amazon")] == "builtin"
    assert run("pim", "rules", "remove", "pack", "eco_claims") == 0
    assert run("pim", "rules", "remove", "pack", "eco_claims") == 2
    assert run("pim", "rules", "remove", "sparkle", "x") == 2
    capsys.readouterr()
    assert not _blocked(pim)
