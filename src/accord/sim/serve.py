"""Explore a finished run: Accord's API on the run's database and the marketplace sandbox with the state the run left
(listings, orders, webhook deliveries, recorded calls), both on 127.0.0.1, until Ctrl-C (or SIGTERM)."""

from __future__ import annotations

import signal
import threading
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from types import FrameType

from fastapi import FastAPI
from rich.console import Console

from accord.sandbox.server import running_server

LOOPBACK = "127.0.0.1"
DEFAULT_SANDBOX_PORT = 8765


def serve_run(
    database_url: str,
    sandbox_app: FastAPI,
    console: Console,
    *,
    api_port: int | None = None,
    sandbox_port: int = DEFAULT_SANDBOX_PORT,
    stop: threading.Event | None = None,
    ready: Callable[[str, str, str], None] | None = None,
) -> None:
    """Serve the API (on ``database_url``, with a fresh token) and ``sandbox_app``; print both URLs and the token;
    block until ``stop`` is set, Ctrl-C or SIGTERM. Port 0 picks a free port."""
    from accord.api.app import create_app
    from accord.app.tokens import create_token
    from accord.bootstrap import build_app

    stop = stop or threading.Event()
    app = build_app(database_url=database_url, sync=False)
    try:
        token = create_token(app.db, f"explore-{uuid.uuid4().hex[:8]}")
        port = app.settings.api_port if api_port is None else api_port
        with ExitStack() as stack:
            sandbox_url = stack.enter_context(running_server(sandbox_app, LOOPBACK, sandbox_port))
            api_url = stack.enter_context(running_server(create_app(app), LOOPBACK, port))
            console.print(f"Accord API: {api_url}  (database {database_url})", soft_wrap=True)
            console.print(f"API token:  {token}", soft_wrap=True)
            console.print(f"sandbox:    {sandbox_url}", soft_wrap=True)
            console.print(
                f"try: curl -H 'Authorization: Bearer {token}' {api_url}/v1/orders?limit=20\n"
                f"     curl {sandbox_url}/_control/state\n"
                "Ctrl-C stops both.",
                soft_wrap=True,
            )
            if ready is not None:
                ready(api_url, sandbox_url, token)
            _wait(stop)
    finally:
        app.close()


def _wait(stop: threading.Event) -> None:
    """Block until ``stop``; Ctrl-C and SIGTERM set it (signal handlers only exist in the main thread)."""
    previous = None
    if threading.current_thread() is threading.main_thread():

        def on_term(signum: int, frame: FrameType | None) -> None:
            stop.set()

        previous = signal.signal(signal.SIGTERM, on_term)
    try:
        while not stop.wait(0.2):
            pass
    except KeyboardInterrupt:
        stop.set()
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
