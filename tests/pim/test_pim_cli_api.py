"""CLI exit codes and output, and the HTTP endpoints, over a stored catalogue."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from anyio.from_thread import start_blocking_portal

from accord.api.app import create_app
from accord.app.tokens import create_token
from accord.bootstrap import App
from accord.cli import main
from accord.pim import Pim

from .helpers import shirt
from .test_pim_io import HEADER, ROWS, _write


def _run(app: App, *args: str) -> int:
    return main(["--database-url", app.db.url, *args])


def test_cli_import_exit_codes_and_readiness(
    app: App, pim: Pim, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = _write(tmp_path / "good.csv", HEADER, ROWS)
    assert _run(app, "pim", "import", str(good)) == 0
    assert "3 rows: 3 ok, 0 failed" in capsys.readouterr().out
    bad = _write(tmp_path / "bad.csv", HEADER, [*ROWS, ["TEE-S", "TEE", "", "", "", "", "", "", "", "", "", "", "l",
                                                        "", "", "", "", ""]])  # fmt: skip
    errs = tmp_path / "errs.csv"
    assert _run(app, "pim", "import", str(bad), "--errors-out", str(errs)) == 1
    assert "1 failed" in capsys.readouterr().out and errs.exists()
    assert _run(app, "pim", "import", str(bad), "--allow-errors") == 0
    unknown = _write(tmp_path / "unknown.csv", ["sku", "colour"], [["X", "red"]])
    assert _run(app, "pim", "import", str(unknown)) == 2
    assert "unknown column 'colour'" in capsys.readouterr().err
    assert _run(app, "readiness", "TEE-S", "--channel", "amazon-us", "--json") == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["sku"], r["channel"], r["locale"]) for r in rows] == [("TEE-S", "amazon-us", "en_US")]
    assert _run(app, "readiness", "summary", "--json") == 0
    assert {s["channel"] for s in json.loads(capsys.readouterr().out)} == {
        "amazon-us", "amazon-de", "google-de", "shopify-dtc"
    }  # fmt: skip
    assert _run(app, "readiness", "NOPE") == 2
    assert _run(app, "product", "set", "TEE", "brand", "Other", "--actor", "dora") == 0
    capsys.readouterr()
    assert _run(app, "product", "history", "TEE-S", "--json") == 0
    hist = json.loads(capsys.readouterr().out)
    assert hist[-1]["actor"] == "dora" and hist[-1]["new"] == "Other" and hist[-1]["version"] == 2
    assert _run(app, "product", "revert", "TEE", "1") == 0
    assert (
        pim.get_product("TEE")[0].root.values[next(k for k in shirt().root.values if k.attribute == "brand")] == "Acme"
    )
    out = tmp_path / "out.xlsx"
    assert _run(app, "pim", "export", str(out)) == 0 and out.exists()


def test_api_product_readiness_history(app: App, pim: Pim) -> None:
    token = create_token(app.db, "pim-tests")
    asgi = create_app(app)
    headers = {"Authorization": f"Bearer {token}"}
    with start_blocking_portal() as portal:
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=asgi), base_url="http://t")

        def call(method: str, url: str, **kw: object) -> httpx.Response:
            return portal.call(lambda: client.request(method, url, headers=headers, **kw))  # type: ignore[arg-type,call-arg]

        pim.upsert_product(shirt())
        doc = call("GET", "/v1/products/SHIRT-S").json()
        assert doc["variants"] == ["SHIRT-S", "SHIRT-M"]
        gtin = next(v for v in doc["nodes"][0]["values"] if v["attribute"] == "gtin")
        gtin["value"] = "4006381333932"
        r = call("PUT", "/v1/products/SHIRT", json=doc)
        assert r.status_code == 200 and r.json()["version"] == 2
        rows = call("GET", "/v1/readiness/SHIRT-M", params={"channel": "amazon-us"}).json()
        assert rows[0]["ready"] is False
        assert call("GET", "/v1/readiness/summary").json()[0]["blocked"] == 2
        assert len(call("GET", "/v1/products/SHIRT/history").json()) > 1
        assert call("POST", "/v1/products/SHIRT/revert", params={"version": 1}).json()["version"] == 3
        nf = call("GET", "/v1/readiness/NOPE")
        assert nf.status_code == 404 and nf.headers["content-type"].startswith("application/problem+json")
        bad = call("PUT", "/v1/products/SHIRT", json={"family": "nope"})
        assert bad.status_code == 404
        assert portal.call(lambda: client.get("/v1/readiness/summary")).status_code == httpx.codes.UNAUTHORIZED
        # rule files: add a pack (US channels now block), a bad one names its line, remove it again
        pack = 'name = "us_extra"\nkind = "pack"\n[scope]\ncountries = ["US"]\n[[rules]]\ncheck = "required"\n'
        pack += 'attribute = "launch"\n'
        added = call("PUT", "/v1/pim/rules", json={"text": pack, "source": "us_extra.toml"})
        assert added.status_code == 200 and added.json()["readiness_changed"] > 0
        assert {r["channel"] for r in call("GET", "/v1/readiness/SHIRT-S").json() if not r["ready"]} == {
            "amazon-us", "shopify-dtc"
        }  # fmt: skip
        assert ("pack", "us_extra") in {(r["kind"], r["name"]) for r in call("GET", "/v1/pim/rules").json()}
        bad = call("PUT", "/v1/pim/rules", json={"text": 'name = "x"\nkind = "pack"\n[[rules]]\ncheck = "no"\n'})
        assert bad.status_code == 422 and "api:3 " in bad.json()["detail"]
        assert call("DELETE", "/v1/pim/rules/pack/us_extra").status_code == 200
        assert call("DELETE", "/v1/pim/rules/pack/us_extra").status_code == 404
        assert all(r["ready"] for r in call("GET", "/v1/readiness/SHIRT-S").json())
        portal.call(client.aclose)
