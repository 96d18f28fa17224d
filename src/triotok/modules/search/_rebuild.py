"""Rebuilding the read models from the write tables: batched, parallel, checkpointed, resumable.

A rebuild is a row of ``search_rebuilds`` and, per kind (``product``,
``content``), 16 partitions of the id space (``search_rebuild_parts``: ids
from ``lo`` to before ``hi``, by their first hex digit). Workers take
partitions one at a time and walk each in keyset batches of
``(tenant_id, id)``; a batch is read, then applied in one transaction that
also moves the partition's checkpoint and the rebuild's counters. When every
partition is done, a sweep removes index rows the write tables no longer
have (content nodes become tombstones) and the rebuild is ``done``.

Invariants and reasons:

* A batch's rows and its checkpoint commit together: a rebuild killed at
  any point (even ``SIGKILL``) resumes after the last committed batch, and
  the batch it was in the middle of is simply done again, which changes
  nothing twice (rebuild writes are guarded by version, ``<=``).
* Live events keep flowing meanwhile and are never reverted: a rebuild
  writes a row only if its version is at least the index's, so an event
  applied between the read and the write of a batch wins.
* One process works on a rebuild at a time: ``owner`` names it
  (``host:pid``); another run takes a ``running`` rebuild over only once its
  owner is gone (a dead pid on this host, or no batch for :data:`LEASE`
  seconds from another host), and a batch of a run that lost its rebuild
  commits nothing.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import trio

from ..._exceptions import Conflict, InvalidInput
from ...store import Row, Store, UnitOfWork, parse_timestamp
from ._documents import Change, node_from_rows, product_from_row
from ._projection import MAX_BATCH, Projector

__all__ = (
    "KINDS",
    "LEASE",
    "RebuildOptions",
    "RebuildProgress",
    "RebuildRunning",
    "Rebuilder",
    "bar",
    "default_owner",
    "describe_progress",
    "latest_rebuilds",
    "progress_of",
)

KINDS = ("product", "content")
#: Seconds without a batch after which another host may take a rebuild over.
LEASE = 60.0
_HEX = "0123456789abcdef"
_PARTS = tuple(("" if k == 0 else _HEX[k], _HEX[k + 1] if k < 15 else None) for k in range(16))


class RebuildRunning(Conflict):
    """Another process is working on this rebuild (or one of the same scope)."""

    code = "rebuild_running"


class RebuildTakenOver(Conflict):
    """Another process took this rebuild over; this run stops without writing."""

    code = "rebuild_taken_over"


def default_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True, slots=True)
class RebuildOptions:
    """What to rebuild (``tenant_id=None``: every tenant) and how."""

    tenant_id: str | None = None
    types: tuple[str, ...] = KINDS
    workers: int = 1
    batch_size: int = 500
    #: Seconds to rest after each batch (spares a busy database; 0: none).
    pause: float = 0.0

    def __post_init__(self) -> None:
        if not self.types or any(t not in KINDS for t in self.types):
            raise InvalidInput(f"type must be one of {', '.join(KINDS)}", field="type")
        if not 1 <= self.workers <= 16:
            raise InvalidInput("workers must be from 1 to 16", field="workers")
        if not 1 <= self.batch_size <= MAX_BATCH:
            raise InvalidInput(f"batch_size must be from 1 to {MAX_BATCH}", field="batch_size")
        if not 0 <= self.pause <= 60:
            raise InvalidInput("pause must be from 0 to 60 seconds", field="pause")


@dataclass(frozen=True, slots=True)
class RebuildProgress:
    """A rebuild as operators see it: rows done of the total, rate and ETA of this run."""

    id: int
    tenant_id: str | None
    types: tuple[str, ...]
    status: str
    rows_done: int
    rows_total: int
    rows_per_s: float
    eta_s: float | None
    workers: int
    batch_size: int
    owner: str
    started_at: str
    finished_at: str | None
    error: str | None = None

    @property
    def fraction(self) -> float:
        if self.status == "done" or self.rows_total <= 0:
            return 1.0
        return min(1.0, self.rows_done / self.rows_total)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["types"] = list(self.types)
        data["percent"] = round(self.fraction * 100, 1)
        return data


def progress_of(row: Row, *, now: datetime | None = None) -> RebuildProgress:
    """A ``search_rebuilds`` row as progress (rate over the current session)."""
    now = now or datetime.now(UTC)
    done, total = int(row["rows_done"]), int(row["rows_total"])
    status = str(row["status"])
    session = parse_timestamp(row["session_started_at"]) or now
    heartbeat = parse_timestamp(row["heartbeat_at"]) or now
    end = now if status == "running" else heartbeat
    elapsed = max((end - session).total_seconds(), 1e-6)
    rate = max(0, done - int(row["session_rows"])) / elapsed
    eta = None
    if status == "running" and rate > 0:
        eta = round(max(0, total - done) / rate, 1)
    finished = parse_timestamp(row["finished_at"])
    started = parse_timestamp(row["started_at"])
    return RebuildProgress(
        id=int(row["id"]),
        tenant_id=row["tenant_id"],
        types=tuple(str(row["types"]).split(",")),
        status=status,
        rows_done=done,
        rows_total=total,
        rows_per_s=round(rate, 1),
        eta_s=eta,
        workers=int(row["workers"]),
        batch_size=int(row["batch_size"]),
        owner=str(row["owner"]),
        started_at=started.isoformat() if started else "",
        finished_at=finished.isoformat() if finished else None,
        error=row["error"],
    )


async def latest_rebuilds(store: Store, limit: int = 5) -> list[RebuildProgress]:
    """The running rebuilds and the most recent others, newest first."""
    rows = await store.fetch(
        "SELECT * FROM search_rebuilds WHERE status = 'running'"
        " OR id IN (SELECT id FROM search_rebuilds ORDER BY id DESC LIMIT $1)"
        " ORDER BY id DESC",
        limit,
    )
    return [progress_of(r) for r in rows]


def _alive(owner: str, heartbeat: datetime | None) -> bool:
    host, _, pid = owner.rpartition(":")
    if host == socket.gethostname() and pid.isdigit():
        if int(pid) == os.getpid():
            return True
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    if heartbeat is None:
        return False
    return (datetime.now(UTC) - heartbeat).total_seconds() < LEASE


@dataclass(slots=True)
class _Part:
    kind: str
    part: int
    lo: str
    hi: str | None
    after_tenant: str
    after_id: str


@dataclass(slots=True)
class _Run:
    id: int
    total: int
    done: int
    parts: list[_Part] = field(default_factory=list)


_PRODUCT_COLUMNS = (
    "tenant_id, id, sku, title, description, price, currency, status, attributes,"
    " on_hand, reserved, created_at, updated_at, version"
)
_NODE_COLUMNS = (
    "tenant_id, id, kind, status, parent_id, position, created_at, updated_at, published_at,"
    " version"
)
_TABLES = {
    "product": ("commerce_products", _PRODUCT_COLUMNS),
    "content": ("content_nodes", _NODE_COLUMNS),
}


class Rebuilder:
    """Runs rebuilds on ``store`` with ``projector`` (see the module docstring).

    ``on_batch(progress)`` is called after every committed batch.
    """

    def __init__(
        self,
        store: Store,
        projector: Projector,
        *,
        owner: str | None = None,
        on_batch: Callable[[RebuildProgress], None] | None = None,
    ) -> None:
        self.store = store
        self.projector = projector
        self.owner = owner or default_owner()
        self.on_batch = on_batch
        self.batches = 0

    # ------------------------------------------------------------------ start or resume

    async def _count(self, tx: UnitOfWork, kind: str, tenant_id: str | None) -> int:
        table, _ = _TABLES[kind]
        if tenant_id is None:
            return int(await tx.fetchval(f"SELECT count(*) FROM {table}"))
        return int(
            await tx.fetchval(f"SELECT count(*) FROM {table} WHERE tenant_id = $1", tenant_id)
        )

    async def start(self, options: RebuildOptions) -> int:
        """Create the rebuild of ``options`` or take over an abandoned one; its id."""
        types = ",".join(options.types)
        now = datetime.now(UTC)
        async with self.store.transaction() as tx:
            rows = await tx.fetch(
                "SELECT * FROM search_rebuilds WHERE status = 'running' ORDER BY id"
            )
            for row in rows:
                same = row["tenant_id"] == options.tenant_id and row["types"] == types
                overlaps = (
                    row["tenant_id"] is None
                    or options.tenant_id is None
                    or row["tenant_id"] == options.tenant_id
                ) and set(str(row["types"]).split(",")) & set(options.types)
                owner = str(row["owner"])
                if _alive(owner, parse_timestamp(row["heartbeat_at"])):
                    if same or overlaps:
                        raise RebuildRunning(
                            f"rebuild {row['id']} is running in {owner}", rebuild_id=int(row["id"])
                        )
                    continue
                if same:
                    await tx.execute(
                        "UPDATE search_rebuilds SET owner = $1, heartbeat_at = $2,"
                        " session_rows = rows_done, session_started_at = $2, workers = $3,"
                        " batch_size = $4, error = NULL WHERE id = $5",
                        self.owner,
                        now,
                        options.workers,
                        options.batch_size,
                        int(row["id"]),
                    )
                    return int(row["id"])
            total = 0
            for kind in options.types:
                total += await self._count(tx, kind, options.tenant_id)
            rebuild_id = int(
                await tx.fetchval(
                    "INSERT INTO search_rebuilds (tenant_id, types, status, owner, heartbeat_at,"
                    " rows_total, rows_done, session_rows, session_started_at, batch_size,"
                    " workers, started_at) VALUES ($1, $2, 'running', $3, $4, $5, 0, 0, $4, $6,"
                    " $7, $4) RETURNING id",
                    options.tenant_id,
                    types,
                    self.owner,
                    now,
                    total,
                    options.batch_size,
                    options.workers,
                )
            )
            for kind in options.types:
                for part, (lo, hi) in enumerate(_PARTS):
                    await tx.execute(
                        "INSERT INTO search_rebuild_parts (rebuild_id, kind, part, lo, hi,"
                        " after_tenant, after_id, done, rows_done)"
                        " VALUES ($1, $2, $3, $4, $5, '', '', 0, 0)",
                        rebuild_id,
                        kind,
                        part,
                        lo,
                        hi,
                    )
        return rebuild_id

    async def progress(self, rebuild_id: int) -> RebuildProgress:
        row = await self.store.fetchrow("SELECT * FROM search_rebuilds WHERE id = $1", rebuild_id)
        if row is None:
            raise LookupError(f"no rebuild {rebuild_id}")
        return progress_of(row)

    # ------------------------------------------------------------------ the work

    async def run(self, options: RebuildOptions, rebuild_id: int | None = None) -> RebuildProgress:
        """Start (or resume) and finish a rebuild; its final progress."""
        if rebuild_id is None:
            rebuild_id = await self.start(options)
        rows = await self.store.fetch(
            "SELECT * FROM search_rebuild_parts WHERE rebuild_id = $1 AND done = 0"
            " ORDER BY kind DESC, part",
            rebuild_id,
        )
        order = {kind: i for i, kind in enumerate(options.types)}
        parts = sorted(
            (
                _Part(
                    str(r["kind"]),
                    int(r["part"]),
                    str(r["lo"]),
                    r["hi"],
                    str(r["after_tenant"]),
                    str(r["after_id"]),
                )
                for r in rows
            ),
            key=lambda p: (order.get(p.kind, 99), p.part),
        )
        queue = list(reversed(parts))

        async def worker() -> None:
            while queue:
                part = queue.pop()
                await self._walk(rebuild_id, part, options)

        async with trio.open_nursery() as nursery:
            for _ in range(min(options.workers, max(1, len(queue)))):
                nursery.start_soon(worker)
        await self._finish(rebuild_id, options)
        return await self.progress(rebuild_id)

    async def _read(
        self, kind: str, part: _Part, tenant_id: str | None, limit: int
    ) -> list[Change]:
        table, columns = _TABLES[kind]
        args: list[Any] = [part.after_tenant, part.after_id]
        where = ["(tenant_id, id) > ($1, $2)"]
        if tenant_id is not None:
            args.append(tenant_id)
            where.append(f"tenant_id = ${len(args)}")
        if part.lo:
            args.append(part.lo)
            where.append(f"id >= ${len(args)}")
        if part.hi is not None:
            args.append(part.hi)
            where.append(f"id < ${len(args)}")
        args.append(limit)
        rows = await self.store.fetch(
            f"SELECT {columns} FROM {table} WHERE {' AND '.join(where)}"
            f" ORDER BY tenant_id, id LIMIT ${len(args)}",
            *args,
        )
        if kind == "product":
            return [product_from_row(r) for r in rows]
        if not rows:
            return []
        keys: list[Any] = []
        for r in rows:
            keys += [r["tenant_id"], r["id"]]
        values = ", ".join(f"(${i}, ${i + 1})" for i in range(1, len(keys), 2))
        translations = await self.store.fetch(
            "SELECT tenant_id, node_id, locale, title, slug, excerpt, body, body_format"
            f" FROM content_translations WHERE (tenant_id, node_id) IN (VALUES {values})",
            *keys,
        )
        tags = await self.store.fetch(
            "SELECT tenant_id, node_id, tag FROM content_tags"
            f" WHERE (tenant_id, node_id) IN (VALUES {values})",
            *keys,
        )
        by_node: dict[tuple[str, str], tuple[list[Row], list[Row]]] = {
            (str(r["tenant_id"]), str(r["id"])): ([], []) for r in rows
        }
        for t in translations:
            by_node[str(t["tenant_id"]), str(t["node_id"])][0].append(t)
        for g in tags:
            by_node[str(g["tenant_id"]), str(g["node_id"])][1].append(g)
        return [node_from_rows(r, *by_node[str(r["tenant_id"]), str(r["id"])]) for r in rows]

    async def _walk(self, rebuild_id: int, part: _Part, options: RebuildOptions) -> None:
        while True:
            docs = await self._read(part.kind, part, options.tenant_id, options.batch_size)
            last = _key(docs[-1]) if docs else (part.after_tenant, part.after_id)
            done = len(docs) < options.batch_size
            now = datetime.now(UTC)
            async with self.store.transaction() as tx:
                owned = await tx.execute(
                    "UPDATE search_rebuilds SET rows_done = rows_done + $1, heartbeat_at = $2"
                    " WHERE id = $3 AND owner = $4 AND status = 'running'",
                    len(docs),
                    now,
                    rebuild_id,
                    self.owner,
                )
                if owned != 1:
                    raise RebuildTakenOver(f"rebuild {rebuild_id} is no longer this run's")
                if docs:
                    await self.projector.apply(tx, docs, rebuild=True)
                await tx.execute(
                    "UPDATE search_rebuild_parts SET after_tenant = $1, after_id = $2,"
                    " done = $3, rows_done = rows_done + $4"
                    " WHERE rebuild_id = $5 AND kind = $6 AND part = $7",
                    last[0],
                    last[1],
                    1 if done else 0,
                    len(docs),
                    rebuild_id,
                    part.kind,
                    part.part,
                )
            self.batches += 1
            part.after_tenant, part.after_id = last
            if self.on_batch is not None:
                self.on_batch(await self.progress(rebuild_id))
            if done:
                return
            if options.pause:
                await trio.sleep(options.pause)

    async def _finish(self, rebuild_id: int, options: RebuildOptions) -> None:
        async with self.store.transaction() as tx:
            if "product" in options.types:
                await self.projector.sweep_products(tx, options.tenant_id)
            if "content" in options.types:
                await self.projector.sweep_nodes(tx, options.tenant_id)
            owned = await tx.execute(
                "UPDATE search_rebuilds SET status = 'done', finished_at = $1, heartbeat_at = $1,"
                " rows_total = CASE WHEN rows_done > rows_total THEN rows_done ELSE rows_total END"
                " WHERE id = $2 AND owner = $3 AND status = 'running'",
                datetime.now(UTC),
                rebuild_id,
                self.owner,
            )
            if owned != 1:
                raise RebuildTakenOver(f"rebuild {rebuild_id} is no longer this run's")


def _key(doc: Any) -> tuple[str, str]:
    return (doc.tenant_id, doc.id)


def bar(fraction: float, width: int = 24) -> str:
    """``[#########...............]`` for ``fraction`` (0 to 1)."""
    filled = round(max(0.0, min(1.0, fraction)) * width)
    return "[" + "#" * filled + "." * (width - filled) + "]"


def describe_progress(progress: RebuildProgress) -> str:
    """One line: bar, percent, rows, rate, ETA (what the CLI and ``triotok tree`` show)."""
    eta = "" if progress.eta_s is None else f"  ETA {_duration(progress.eta_s)}"
    return (
        f"{bar(progress.fraction)} {progress.fraction * 100:5.1f}%"
        f"  {progress.rows_done:,}/{progress.rows_total:,} rows"
        f"  {progress.rows_per_s:,.0f} rows/s{eta}"
    )


def _duration(value: float) -> str:
    seconds = round(value)
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"
