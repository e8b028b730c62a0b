"""`accord simulate --serve`: after the run, the API and the sandbox serve what the run left, on 127.0.0.1, until
Ctrl-C. A real subprocess, bounded in time."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

STARTUP_TIMEOUT_S = 240.0  # a one-day run of a tiny world, then both servers


def _reader(stream: object, lines: queue.Queue[str]) -> None:
    for line in iter(stream.readline, ""):  # type: ignore[attr-defined]
        lines.put(line)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_simulate_serve_exposes_the_runs_api_and_sandbox_until_interrupted(tmp_path: Path) -> None:
    accord = Path(sys.executable).with_name("accord")
    cmd = [
        str(accord),
        "simulate",
        "--days",
        "1",
        "--products",
        "2",
        "--orders-per-day",
        "40",
        "--seed",
        "4",
        "--quiet",
        "--dir",
        str(tmp_path),
        "--serve",
        "--port",
        "0",
        "--sandbox-port",
        "0",
    ]
    env = {**os.environ, "ACCORD_DATABASE_URL": f"sqlite:///{tmp_path / 'unused.db'}", "COLUMNS": "200"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=tmp_path)
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=_reader, args=(proc.stdout, lines), daemon=True)
    reader.start()
    seen: list[str] = []
    try:
        api = sandbox = token = None
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not (api and sandbox and token):
            remaining = deadline - time.monotonic()
            assert remaining > 0 and proc.poll() is None, "servers did not come up:\n" + "".join(seen)
            try:
                line = lines.get(timeout=min(1.0, remaining))
            except queue.Empty:
                continue
            seen.append(line)
            if m := re.search(r"Accord API: (http://127\.0\.0\.1:\d+)", line):
                api = m.group(1)
            elif m := re.search(r"sandbox:\s+(http://127\.0\.0\.1:\d+)", line):
                sandbox = m.group(1)
            elif m := re.search(r"API token:\s+(\S+)", line):
                token = m.group(1)
        with httpx.Client(timeout=10.0) as http:
            assert http.get(f"{api}/healthz").status_code == 200
            assert http.get(f"{api}/v1/orders").status_code == 401  # the token is needed
            orders = http.get(f"{api}/v1/orders", params={"limit": 5}, headers={"Authorization": f"Bearer {token}"})
            assert orders.status_code == 200, orders.text
            state = http.get(f"{sandbox}/_control/state")
            assert state.status_code == 200
            channels = state.json()["channels"]
            assert len(channels) == 32
            busiest = max(channels, key=lambda c: c.get("orders", 0))
            assert busiest.get("orders", 0) > 0  # the run's buyers are still there
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        reader.join(timeout=10)
        assert proc.stdout is not None
        proc.stdout.close()
