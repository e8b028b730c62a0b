"""Request-scoped access to the wired application (set on ``FastAPI.state`` by ``create_app``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from accord.bootstrap import App


def get_app(request: Request) -> App:
    app = request.app.state.accord
    assert isinstance(app, App)
    return app


AppDep = Annotated[App, Depends(get_app)]
