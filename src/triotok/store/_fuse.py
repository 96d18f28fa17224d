"""PostgreSQL: deferred ``INSERT``\\ s fused into one statement, one exchange with the server.

asyncpg sends each statement and waits for its answer (``executemany``
pipelines the rows of one statement only), and under trio-asyncio every
exchange also costs scheduler passes on both loops. A unit of work's
deferred inserts (a node, its translations and tags, the event, the audit
row) are therefore sent as one statement of data-modifying CTEs::

    WITH s1 AS (INSERT INTO a (x, y) VALUES ($1, $2)),
         s2 AS (INSERT INTO b (x, z) VALUES ($3, $4), ($5, $6))
    INSERT INTO c (x) VALUES ($7)

A statement is atomic, its parameter types come from the target columns as
they would alone, foreign keys between its inserts are checked at its end,
and a unique violation reports the table and key it would report alone.
When such a statement is all a unit of work sends, it needs no ``BEGIN`` and
``COMMIT`` either (a single statement is its own transaction); its
``NOTIFY`` becomes the main query, ``SELECT pg_notify(...)``, which the
server delivers only if the statement commits.

Only plain inserts are fused: ``INSERT INTO t (columns) VALUES (...)`` with
no ``ON CONFLICT``, ``RETURNING``, sub-query, literal or comment, and no
``expect``. Their rows cannot see each other within one statement, which
changes nothing for a plain insert's values. Anything else is sent alone, in
order, between the fused runs.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from ._deferred import Deferred

__all__ = ("fuse_all", "fuse_runs")

_INSERT = re.compile(
    r"\s*INSERT\s+INTO\s+(?P<target>\w+(?:\.\w+)?\s*\([\w\s,]*\))\s*VALUES\s*\((?P<row>.*)\)\s*",
    re.S | re.I,
)
# Plain inserts only: nothing whose meaning could depend on being alone.
_REFUSED = re.compile(r"\b(?:ON\s+CONFLICT|RETURNING|SELECT|WITH|DEFAULT)\b|['\";]|--|/\*", re.I)
_PLACEHOLDER = re.compile(r"\$(\d+)")
#: Fused statements stay well below PostgreSQL's 65,535 bind parameters.
MAX_PARAMS = 4_000


def _parts(statement: Deferred) -> tuple[str, str, list[tuple[Any, ...]]] | None:
    """``(target, row template, rows)`` of a fusable insert, else ``None``."""
    if statement.expect is not None:
        return None
    match = _INSERT.fullmatch(statement.sql)
    if match is None or _REFUSED.search(statement.sql):
        return None
    rows = list(statement.params) if statement.many else [tuple(statement.params)]
    return match["target"], match["row"], rows


def _renumbered(template: str, offset: int) -> str:
    return _PLACEHOLDER.sub(lambda m: f"${int(m[1]) + offset}", template)


def _insert(target: str, template: str, rows: list[tuple[Any, ...]], args: list[Any]) -> str:
    values = []
    for row in rows:
        values.append(f"({_renumbered(template, len(args))})")
        args.extend(row)
    return f"INSERT INTO {target} VALUES {', '.join(values)}"


def _statement(inserts: list[str], main: str | None) -> str:
    if main is None:
        *ctes, main = inserts
    else:
        ctes = inserts
    if not ctes:
        return main
    fused = ", ".join(f"s{i} AS ({sql})" for i, sql in enumerate(ctes, 1))
    return f"WITH {fused} {main}"


def fuse_all(statements: Sequence[Deferred], *, notify: str | None) -> Deferred | None:
    """All ``statements`` as one statement (``pg_notify(notify)`` last), or ``None``.

    ``None`` when any of them is not a plain insert, or there are too many
    parameters: the caller then sends them in a transaction.
    """
    inserts: list[str] = []
    args: list[Any] = []
    for statement in statements:
        parts = _parts(statement)
        if parts is None:
            return None
        inserts.append(_insert(*parts, args))
        if len(args) > MAX_PARAMS:
            return None
    if not inserts:
        return None
    main = None if notify is None else f"SELECT pg_notify('{notify}', '')"
    return Deferred(_statement(inserts, main), tuple(args))


def fuse_runs(statements: Sequence[Deferred]) -> list[Deferred]:
    """``statements`` with each run of consecutive plain inserts fused into one, in order."""
    out: list[Deferred] = []
    run: list[tuple[Deferred, tuple[str, str, list[tuple[Any, ...]]]]] = []

    def close_run() -> None:
        if len(run) == 1:
            out.append(run[0][0])
        elif run:
            args: list[Any] = []
            inserts = [_insert(*parts, args) for _, parts in run]
            out.append(Deferred(_statement(inserts, None), tuple(args)))
        run.clear()

    count = 0
    for statement in statements:
        parts = _parts(statement)
        size = 0 if parts is None else sum(len(row) for row in parts[2])
        if parts is None or size > MAX_PARAMS:
            close_run()
            count = 0
            out.append(statement)
            continue
        if count + size > MAX_PARAMS:
            close_run()
            count = 0
        run.append((statement, parts))
        count += size
    close_run()
    return out
