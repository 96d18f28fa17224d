"""The connection to NATS JetStream, driven from trio through trio-asyncio.

Invariants (as for the PostgreSQL store):

* Every call crosses the trio/asyncio boundary once: :meth:`StreamAdmin.aio`
  runs one coroutine of the ``nats-py`` client on the loop captured at
  connect, so any trio task may call it.
* Nothing of ``nats-py`` escapes: a server that is down, slow or refusing
  becomes :class:`StreamUnavailable` (retryable); a consumer or stream that
  does not exist becomes :class:`NotFound`.
* The client reconnects by itself (``max_reconnect_attempts=-1``); while it
  is disconnected, calls fail at once instead of queueing in its buffer.

:func:`open_stream_admin` is what ``triotok events`` uses without a running
server; :class:`~triotok.transport.JetStreamTransport` holds one per
incarnation of its client actor.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import AsyncIterator, Coroutine
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from datetime import datetime
from typing import Any, TypeVar

import nats
import nats.errors
import nats.js.errors
import trio
import trio_asyncio
from nats.js import api

from .._exceptions import InvalidConfig, NotFound, StreamUnavailable, TriotokError
from .._util import single_leaf
from ._stream_names import ConsumerState, JetStreamConfig, StreamState, filter_subject

__all__ = ("StreamAdmin", "close", "connect", "open_stream_admin")

logger = logging.getLogger("triotok.stream")

T = TypeVar("T")

_CLOSE_TIMEOUT = 5.0
#: Consumer metadata keys: which bus group and pattern a durable consumer serves.
GROUP_KEY = "triotok_group"
PATTERN_KEY = "triotok_pattern"


class ClientCancelled(Exception):
    """nats-py cancelled one of its own futures (a disconnect, a reconnect, a close)."""


async def _own_cancels(coro: Coroutine[Any, Any, T]) -> T:
    """asyncio side: the client's own cancellations become an ordinary error.

    nats-py cancels pending requests and pulls when the connection drops; as
    ``asyncio.CancelledError`` (a BaseException) that would tear down the trio
    task tree above. A cancellation that comes from trio still surfaces there
    as ``trio.Cancelled``.
    """
    try:
        return await coro
    except asyncio.CancelledError as exc:
        raise ClientCancelled("the NATS client cancelled the operation") from exc


def is_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` from nats-py means the server is down, unreachable or overloaded."""
    return isinstance(
        exc,
        nats.errors.TimeoutError
        | nats.errors.ConnectionClosedError
        | nats.errors.ConnectionReconnectingError
        | nats.errors.NoServersError
        | nats.errors.OutboundBufferLimitError
        | nats.errors.StaleConnectionError
        | nats.errors.NoRespondersError
        | nats.js.errors.NoStreamResponseError
        | nats.js.errors.ServiceUnavailableError
        | TimeoutError
        | ClientCancelled
        | OSError,
    )


def map_error(exc: Exception, url: str) -> Exception:
    if isinstance(exc, TriotokError):
        return exc
    if isinstance(exc, nats.js.errors.NotFoundError):
        return NotFound(f"{url}: {exc.description or exc}")
    if is_unavailable(exc):
        return StreamUnavailable(f"{url}: stream unavailable: {type(exc).__name__}: {exc}")
    # Anything else the server refused (a bad request, a config clash): retrying
    # later may succeed once an operator fixes it, so it is not fatal either.
    return StreamUnavailable(f"{url}: {type(exc).__name__}: {exc}")


class StreamAdmin:
    """A connected ``nats-py`` client and the stream operations TrioToK needs."""

    def __init__(self, config: JetStreamConfig, loop: Any, nc: Any) -> None:
        self.config = config
        self._loop = loop
        self.nc = nc
        self.js = nc.jetstream(timeout=config.publish_timeout)
        self.reconnects = 0
        self.disconnects = 0

    @property
    def connected(self) -> bool:
        return bool(self.nc.is_connected)

    async def aio(self, coro: Coroutine[Any, Any, T], *, check: bool = True) -> T:
        """Run one nats-py coroutine on the client's loop; errors mapped (see module doc)."""
        if check and not self.nc.is_connected:
            coro.close()
            raise StreamUnavailable(f"{self.config.url}: not connected")
        wrapped = _own_cancels(coro)
        try:
            result: T = await self._loop.run_aio_coroutine(wrapped)
        except Exception as exc:
            mapped = map_error(exc, self.config.url)
            if mapped is exc:
                raise
            raise mapped from exc
        finally:
            # Cancelled before the asyncio side ran them: close them, or each
            # warns "coroutine ... was never awaited" when collected.
            for never in (wrapped, coro):
                if inspect.getcoroutinestate(never) == inspect.CORO_CREATED:
                    never.close()
        return result

    async def fetch(self, sub: Any, batch: int, wait: float) -> list[Any]:
        """Up to ``batch`` messages of a pull subscription; ``[]`` if none came in ``wait``."""

        async def pull() -> list[Any]:
            try:
                msgs: list[Any] = await sub.fetch(batch, timeout=wait)
            except (nats.errors.TimeoutError, TimeoutError):
                return []
            return msgs

        return await self.aio(pull())

    # ------------------------------------------------------------------ the stream

    def stream_config(self) -> api.StreamConfig:
        c = self.config
        return api.StreamConfig(
            name=c.stream,
            subjects=[f"{c.subject_prefix}.>"],
            retention=api.RetentionPolicy.LIMITS,
            storage=api.StorageType.FILE,
            max_age=None if c.max_age is None else c.max_age.total_seconds(),
            max_bytes=c.max_bytes,
            max_msgs=c.max_msgs,
            duplicate_window=c.duplicate_window,
            num_replicas=c.replicas,
            discard=api.DiscardPolicy.OLD,
        )

    async def ensure_stream(self) -> StreamState:
        """Create the stream, or bring an existing one's limits to the configuration."""
        config = self.stream_config()
        try:
            await self.aio(self.js.stream_info(self.config.stream))
        except NotFound:
            await self.aio(self.js.add_stream(config))
        else:
            await self.aio(self.js.update_stream(config))
        return await self.stream_state()

    async def stream_state(self) -> StreamState:
        info = await self.aio(self.js.stream_info(self.config.stream))
        state, config = info.state, info.config
        return StreamState(
            name=config.name or self.config.stream,
            messages=state.messages,
            bytes=state.bytes,
            first_seq=state.first_seq,
            last_seq=state.last_seq,
            consumers=state.consumer_count,
            max_age_seconds=config.max_age or None,
            max_bytes=config.max_bytes if config.max_bytes is not None else -1,
            max_msgs=config.max_msgs if config.max_msgs is not None else -1,
        )

    # ------------------------------------------------------------------ consumers

    def consumer_config(
        self,
        name: str,
        *,
        group: str | None,
        pattern: str,
        durable: bool,
        start: str,
        start_seq: int | None = None,
        start_time: datetime | None = None,
    ) -> api.ConsumerConfig:
        """A pull consumer with explicit acks over ``pattern``'s subjects."""
        c = self.config
        if start_seq is not None:
            policy = api.DeliverPolicy.BY_START_SEQUENCE
        elif start_time is not None:
            policy = api.DeliverPolicy.BY_START_TIME
        else:
            policy = api.DeliverPolicy(start)
        metadata = {PATTERN_KEY: pattern}
        if group is not None:
            metadata[GROUP_KEY] = group
        return api.ConsumerConfig(
            name=name,
            durable_name=name if durable else None,
            deliver_policy=policy,
            ack_policy=api.AckPolicy.EXPLICIT,
            ack_wait=c.ack_wait,
            max_deliver=-1,
            max_ack_pending=c.max_ack_pending,
            filter_subject=filter_subject(c.subject_prefix, pattern),
            inactive_threshold=None if durable else max(c.ack_wait * 2, 60.0),
            metadata=metadata,
            opt_start_seq=start_seq,
            opt_start_time=start_time,
        )

    async def consumer_state(self, name: str) -> ConsumerState:
        return _consumer_state(await self.aio(self.js.consumer_info(self.config.stream, name)))

    async def consumers(self) -> list[ConsumerState]:
        infos = await self.aio(self.js._jsm.consumers_info(self.config.stream))
        return sorted((_consumer_state(i) for i in infos), key=lambda s: s.name)

    async def group_consumers(self, group: str) -> list[ConsumerState]:
        """The durable consumers serving bus group ``group`` (one per pattern)."""
        return [state for state in await self.consumers() if state.group == group]

    async def add_consumer(self, config: api.ConsumerConfig) -> ConsumerState:
        info = await self.aio(self.js.add_consumer(self.config.stream, config))
        return _consumer_state(info)

    async def delete_consumer(self, name: str) -> None:
        with suppress(NotFound):
            await self.aio(self.js.delete_consumer(self.config.stream, name))

    async def reset_group(
        self, group: str, *, from_seq: int | None = None, since: datetime | None = None
    ) -> list[ConsumerState]:
        """Move every consumer of ``group`` back to ``from_seq`` or ``since`` (replay).

        A consumer's start cannot change in place, so each is deleted and
        created again with the same name, filter and metadata. Whatever it
        had in flight is delivered again (the inbox drops the duplicates).
        """
        if (from_seq is None) == (since is None):
            raise InvalidConfig("from_seq", "give exactly one of from_seq and since")
        if from_seq is not None and (
            isinstance(from_seq, bool) or not isinstance(from_seq, int) or from_seq < 1
        ):
            raise InvalidConfig("from_seq", f"must be a stream sequence >= 1, got {from_seq!r}")
        found = await self.group_consumers(group)
        if not found:
            raise NotFound(f"no consumer of group {group!r} on stream {self.config.stream}")
        reset = []
        for state in found:
            config = self.consumer_config(
                state.name,
                group=group,
                pattern=state.pattern or "*",
                durable=True,
                start="all",
                start_seq=from_seq,
                start_time=since,
            )
            config.filter_subject = state.filter_subject  # as it was (whatever the prefix)
            # A node of the group may re-create it between the two calls; then again.
            for _ in range(3):
                await self.delete_consumer(state.name)
                try:
                    reset.append(await self.add_consumer(config))
                    break
                except StreamUnavailable:
                    await trio.sleep(0.05)
            else:
                raise StreamUnavailable(f"could not re-create consumer {state.name}")
        return reset


def _consumer_state(info: Any) -> ConsumerState:
    config = info.config
    metadata = config.metadata or {}
    return ConsumerState(
        name=info.name,
        group=metadata.get(GROUP_KEY),
        pattern=metadata.get(PATTERN_KEY),
        filter_subject=config.filter_subject,
        delivered_seq=info.delivered.stream_seq if info.delivered else 0,
        ack_floor=info.ack_floor.stream_seq if info.ack_floor else 0,
        pending=info.num_pending or 0,
        ack_pending=info.num_ack_pending or 0,
        redelivered=info.num_redelivered or 0,
        waiting=info.num_waiting or 0,
    )


async def connect(
    config: JetStreamConfig, loop: Any, *, reconnect: bool = True, **callbacks: Any
) -> StreamAdmin:
    """Connect; with ``reconnect`` the client keeps trying (at start too) and reconnects.

    Without it: one attempt, :class:`StreamUnavailable` if the server is down.
    """
    holder: list[StreamAdmin] = []
    # nats-py retries its first connection for ever, whatever the options: bound it here
    # (the caller backs off and tries again, or reports the server unreachable).
    with trio.move_on_after(config.connect_timeout * 2) as scope:
        admin = await _connect_once(config, loop, reconnect, holder, callbacks)
    if scope.cancelled_caught:
        raise StreamUnavailable(f"{config.url}: stream unavailable: no answer to connect")
    return admin


async def _connect_once(
    config: JetStreamConfig,
    loop: Any,
    reconnect: bool,
    holder: list[StreamAdmin],
    callbacks: dict[str, Any],
) -> StreamAdmin:
    servers = [one.strip() for one in config.url.split(",")]

    async def disconnected() -> None:
        if holder:
            holder[0].disconnects += 1

    async def reconnected() -> None:
        if holder:
            holder[0].reconnects += 1

    async def error(exc: Exception) -> None:
        logger.debug("nats client: %s: %s", type(exc).__name__, exc)

    try:
        nc = await loop.run_aio_coroutine(
            nats.connect(
                servers,
                connect_timeout=config.connect_timeout,
                allow_reconnect=reconnect,
                max_reconnect_attempts=-1 if reconnect else 0,
                reconnect_time_wait=0.25,
                disconnected_cb=callbacks.get("disconnected", disconnected),
                reconnected_cb=callbacks.get("reconnected", reconnected),
                error_cb=error,
                name="triotok",
            )
        )
    except Exception as exc:
        raise map_error(exc, config.url) from exc
    admin = StreamAdmin(config, loop, nc)
    holder.append(admin)
    return admin


async def close(admin: StreamAdmin) -> None:
    with trio.CancelScope(shield=True), trio.move_on_after(_CLOSE_TIMEOUT), suppress(Exception):
        await admin.aio(admin.nc.close(), check=False)


@asynccontextmanager
async def open_stream_admin(config: JetStreamConfig) -> AsyncIterator[StreamAdmin]:
    """Connect (one attempt: :class:`StreamUnavailable` if down), yield, close."""
    try:
        async with AsyncExitStack() as stack:
            loop = trio_asyncio.current_loop.get()
            if loop is None:
                loop = await stack.enter_async_context(trio_asyncio.open_loop())
            admin = await connect(config, loop, reconnect=False)
            try:
                yield admin
            finally:
                await close(admin)
    except BaseExceptionGroup as group:
        leaf = single_leaf(group)
        if leaf is None:
            raise
        raise leaf from leaf.__cause__
