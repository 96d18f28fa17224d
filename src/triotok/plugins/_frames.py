"""Frames between a plugin's host (in the platform) and its child process.

A frame is a 4-byte big-endian length followed by one CBOR map (at most
:data:`MAX_FRAME` bytes). Decoding is strict like the envelope codec's: no
tags but bignums, no indefinite lengths, no duplicate keys, bounded depth;
events travel inside frames as the envelope codec's own bytes. The
:class:`FrameBuffer` is sans-I/O (bytes in, messages out); :class:`FrameStream`
drives it over a pair of trio streams (the two pipes).

Messages (``"k"`` is the kind, ``"id"`` pairs a reply with its call)::

    host -> child   {"k": "call", "id", "op": "init"|"event"|"request"|"stop", "scope", ...}
    child -> host   {"k": "done", "id", "ok": true, "value"} | {..., "ok": false, "error"}
    child -> host   {"k": "api", "id", "op": "publish"|"storage"|"http", "args", "scope"}
    host -> child   {"k": "reply", "id", "ok", "value" | "error"}
"""

from __future__ import annotations

import contextlib
import io
from typing import Any, NoReturn

import cbor2
import trio

from .._exceptions import SchemaError

__all__ = ("MAX_FRAME", "FrameBuffer", "FrameStream", "pack", "unpack")

MAX_FRAME = 16 << 20
_MAX_DEPTH = 64
_HEADER = 4


def _refuse_tag(*args: Any) -> NoReturn:
    raise ValueError("tags are not allowed in plugin frames")


_REFUSED = dict.fromkeys(
    (0, 1, 4, 5, 25, 28, 29, 30, 35, 36, 37, 52, 54, 100, 256, 258, 260, 261, 1004, 55799),
    _refuse_tag,
)


def pack(message: dict[str, Any]) -> bytes:
    """One frame: length and CBOR map."""
    try:
        body = cbor2.dumps(message)
    except Exception as exc:  # a value CBOR cannot carry (an object, lone surrogates)
        raise SchemaError(f"cannot encode a plugin frame: {exc}") from exc
    if len(body) > MAX_FRAME:
        raise SchemaError(f"a plugin frame of {len(body)} bytes exceeds {MAX_FRAME}")
    return len(body).to_bytes(_HEADER, "big") + body


def unpack(body: bytes) -> dict[str, Any]:
    """The message of one frame body; :class:`SchemaError` for anything but a strict map."""
    stream = io.BytesIO(body)
    try:
        value = cbor2.CBORDecoder(
            stream,
            tag_hook=_refuse_tag,
            semantic_decoders=_REFUSED,
            max_depth=_MAX_DEPTH,
            allow_indefinite=False,
            allow_duplicate_keys=False,
            strict_hashable_types=True,
        ).decode()
    except Exception as exc:
        raise SchemaError(f"malformed plugin frame: {exc}") from exc
    if stream.tell() != len(body):
        raise SchemaError("trailing bytes in a plugin frame")
    if not isinstance(value, dict) or not isinstance(value.get("k"), str):
        raise SchemaError("a plugin frame is a map with a kind 'k'")
    return value


class FrameBuffer:
    """Sans-I/O reassembly: ``feed(bytes)`` returns the complete messages so far."""

    def __init__(self) -> None:
        self._data = bytearray()

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        self._data += data
        out: list[dict[str, Any]] = []
        while len(self._data) >= _HEADER:
            size = int.from_bytes(self._data[:_HEADER], "big")
            if size > MAX_FRAME:
                raise SchemaError(f"a plugin frame announces {size} bytes (limit {MAX_FRAME})")
            if len(self._data) < _HEADER + size:
                break
            body = bytes(self._data[_HEADER : _HEADER + size])
            del self._data[: _HEADER + size]
            out.append(unpack(body))
        return out

    @property
    def pending(self) -> int:
        return len(self._data)


class FrameStream:
    """Messages over a receive stream and a send stream (a child's two pipes)."""

    def __init__(self, receive: trio.abc.ReceiveStream, send: trio.abc.SendStream) -> None:
        self._receive = receive
        self._send = send
        self._buffer = FrameBuffer()
        self._ready: list[dict[str, Any]] = []
        self._lock = trio.Lock()

    async def send(self, message: dict[str, Any]) -> None:
        data = pack(message)
        async with self._lock:  # one frame at a time on the pipe
            await self._send.send_all(data)

    async def receive(self) -> dict[str, Any] | None:
        """The next message, or ``None`` at end of stream (the other side is gone)."""
        while not self._ready:
            data = await self._receive.receive_some(65536)
            if not data:
                return None
            self._ready.extend(self._buffer.feed(bytes(data)))
        return self._ready.pop(0)

    async def aclose(self) -> None:
        for stream in (self._send, self._receive):
            with contextlib.suppress(trio.ClosedResourceError, trio.BrokenResourceError, OSError):
                await stream.aclose()
