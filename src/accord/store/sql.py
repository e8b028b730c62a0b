"""Running SQLAlchemy Core statements on an open :class:`~accord.store.db.Tx` without paying for compilation each
time: one-off statements bound with their literal values (compiled SQL cached by statement shape) and named
hot-path statements compiled once per backend."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from accord.store.db import Compiled, Database, Tx

CACHE_SIZE = 2_000

# (backend, statement name) → compiled statement and its selected column names: the hot-path statements are built
# with ``bindparam``s and compiled once per backend for the whole process (the dialects are fixed per backend)
_PREPARED: dict[tuple[str, str], tuple[Compiled, tuple[str, ...]]] = {}


class StatementRunner:
    """Runs SQLAlchemy Core statements on an open ``Tx``: one-off statements with literal values (configuration-speed
    paths) and named statements compiled once per backend (hot paths)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        # statement shape (SQLAlchemy cache key) → compiled SQL: compiling is most of a small statement's cost
        self._cache: dict[Any, tuple[Compiled, Any]] = {}

    def bound(self, stmt: sa.ClauseElement) -> tuple[Compiled, tuple[Any, ...]]:
        ck = stmt._generate_cache_key()
        if ck is not None:
            hit = self._cache.get(ck.key)
            if hit is not None:
                comp, compiled = hit
                params = compiled.construct_params(extracted_parameters=ck.bindparams)
                return comp, tuple(params[n] for n in comp.names)
        kw: dict[str, Any] = {"cache_key": ck} if ck is not None else {}
        c = stmt.compile(dialect=self.db.dialect, compile_kwargs={"render_postcompile": True}, **kw)
        comp = Compiled(c.string, tuple(getattr(c, "positiontup", None) or ()))
        binds: dict[str, Any] = getattr(c, "binds", {})
        # IN lists (one placeholder per value) and literal-rendered values make the SQL depend on the values
        if ck is not None and not any(
            getattr(bp, "expanding", False) or getattr(bp, "literal_execute", False) for bp in binds.values()
        ):
            if len(self._cache) >= CACHE_SIZE:
                self._cache.clear()
            self._cache[ck.key] = (comp, c)
        return comp, tuple(c.params[n] for n in comp.names)

    def prepared(self, name: str, build: Callable[[], sa.ClauseElement]) -> tuple[Compiled, tuple[str, ...]]:
        """The statement ``build()`` makes (named ``name``, all values ``bindparam``s) compiled once per backend."""
        key = (self.db.backend, name)
        hit = _PREPARED.get(key)
        if hit is None:
            stmt = build()
            names = tuple(c.name for c in stmt.selected_columns) if isinstance(stmt, sa.Select) else ()
            hit = _PREPARED[key] = (self.db.compile(stmt), names)
        return hit

    def exec(self, tx: Tx, name: str, build: Callable[[], sa.ClauseElement], params: Mapping[str, Any]) -> None:
        comp = self.prepared(name, build)[0]
        tx.run(comp, comp.bind(params))

    def exec_many(
        self, tx: Tx, name: str, build: Callable[[], sa.ClauseElement], rows: Sequence[Mapping[str, Any]]
    ) -> None:
        comp = self.prepared(name, build)[0]
        tx.many(comp, [comp.bind(p) for p in rows])

    def fetch(
        self, tx: Tx, name: str, build: Callable[[], sa.ClauseElement], params: Mapping[str, Any]
    ) -> list[dict[str, Any]]:
        comp, names = self.prepared(name, build)
        return [dict(zip(names, r, strict=True)) for r in tx.all(comp, comp.bind(params))]

    def fetch_one(
        self, tx: Tx, name: str, build: Callable[[], sa.ClauseElement], params: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        found = self.fetch(tx, name, build, params)
        return found[0] if found else None

    def run(self, tx: Tx, stmt: sa.ClauseElement) -> None:
        tx.run(*self.bound(stmt))

    def rows(self, tx: Tx, stmt: sa.Select[Any]) -> list[dict[str, Any]]:
        names = [c.name for c in stmt.selected_columns]
        return [dict(zip(names, r, strict=True)) for r in tx.all(*self.bound(stmt))]

    def row(self, tx: Tx, stmt: sa.Select[Any]) -> dict[str, Any] | None:
        found = self.rows(tx, stmt)
        return found[0] if found else None
