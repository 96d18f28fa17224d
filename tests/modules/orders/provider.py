"""A local payment provider for tests: a real HTTP server on 127.0.0.1 that does as it is told.

It speaks :class:`~triotok.modules.orders.HttpProvider`'s wire format
(``POST /charges``, ``POST /refunds``, JSON, ``Idempotency-Key``) and is the
only thing the payment tests mock: what is outside the system.

::

    with ProviderServer() as provider:          # a free port, its own threads
        payments = Payments(HttpProvider(provider.url, timeout=1))
        provider.mode = Mode.DECLINE            # every following answer
        provider.then(Mode.FAIL, Mode.FAIL)     # the next two answers, then `mode`
        ...
        assert provider.performed("o-1:charge") == 1

Modes: ``approve`` (charge, 200), ``decline`` (402 with ``reason``), ``fail``
(500), ``malformed`` (200 with a body that is not JSON), ``hang`` (no answer
until the server closes), ``charge_then_hang`` (charge, then no answer: the
approval is lost on the way, as when a network drops it).

Idempotency as real providers do it: the first *final* answer for a key
(an approval or a decline) is kept and answered again to every retry with
that key, which charges nothing more; a retry with the same key and another
body is a 422. Failures, malformed answers and hangs keep nothing, so a
retry is a new attempt. :meth:`ProviderServer.performed` counts the charges
and refunds really made per key (what "nothing charged twice" is about),
:meth:`ProviderServer.requests` the requests received.

Runs in threads (stdlib :mod:`http.server`), so it is independent of the
test's trio loop and clock. From another process::

    python -m tests.modules.orders.provider --port 0 [--mode approve]

prints one JSON line ``{"url": ...}`` and serves until SIGTERM or SIGINT;
``POST /control`` (``{"mode": ..., "reason": ..., "then": [...]}``) steers it
and ``GET /stats`` answers ``{"performed": {...}, "requests": {...}}``.
"""

from __future__ import annotations

import argparse
import contextlib
import enum
import json
import signal
import socket
import sys
import threading
from collections import Counter, deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

HOST = "127.0.0.1"
#: A hanging request gives up after this long even if nobody closes the server.
MAX_HANG = 60.0


class Mode(enum.StrEnum):
    """What the provider answers."""

    APPROVE = "approve"
    DECLINE = "decline"
    FAIL = "fail"
    MALFORMED = "malformed"
    HANG = "hang"
    CHARGE_THEN_HANG = "charge_then_hang"


@dataclass(frozen=True, slots=True)
class Received:
    """One request as the provider saw it."""

    path: str
    idempotency_key: str | None
    body: Any
    headers: dict[str, str]


@dataclass(frozen=True, slots=True)
class _Answer:
    status: int
    body: bytes
    fingerprint: str  # the request it answered (path + body), for the 422 on reuse


class ProviderServer:
    """The provider: ``with ProviderServer() as p:`` serves on ``p.url`` until the block ends."""

    def __init__(self, port: int = 0, *, mode: Mode = Mode.APPROVE) -> None:
        self._lock = threading.Lock()
        self._mode = Mode(mode)
        self._reason = "insufficient_funds"
        self._queue: deque[Mode] = deque()
        self._answers: dict[str, _Answer] = {}
        self._performed: Counter[str] = Counter()
        self._requests: Counter[str] = Counter()
        self._received: list[Received] = []
        self._sequence = 0
        self._hanging = 0
        self._released = threading.Event()
        self._connections: set[socket.socket] = set()
        self._httpd = _Httpd((HOST, port), _Handler, self)
        self._thread: threading.Thread | None = None

    # ----------------------------------------------------------------- lifecycle

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self) -> ProviderServer:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def close(self) -> None:
        """Release every hanging request, drop every connection, join every thread."""
        self._released.set()
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):  # already closed by its handler
                conn.shutdown(socket.SHUT_RDWR)  # wakes a handler waiting for the next request
        self._httpd.server_close()  # joins the handler threads

    def __enter__(self) -> ProviderServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ----------------------------------------------------------------- steering

    @property
    def mode(self) -> Mode:
        return self._mode

    @mode.setter
    def mode(self, mode: Mode) -> None:
        with self._lock:
            self._mode = Mode(mode)

    def decline_with(self, reason: str) -> None:
        """Decline from now on, saying ``reason``."""
        with self._lock:
            self._mode, self._reason = Mode.DECLINE, reason

    def then(self, *modes: Mode) -> None:
        """Answer the next requests with ``modes``, in order, then go back to ``mode``."""
        with self._lock:
            self._queue.extend(Mode(m) for m in modes)

    def release(self) -> None:
        """End every hang now (and every later one at once)."""
        self._released.set()

    # ----------------------------------------------------------------- what happened

    def performed(self, key: str) -> int:
        """Charges or refunds really made for ``key`` (0 or 1 when idempotency holds)."""
        with self._lock:
            return self._performed[key]

    def requests(self, key: str | None = None) -> int:
        """Requests received with ``key`` (all of them without one)."""
        with self._lock:
            return self._requests[key] if key is not None else sum(self._requests.values())

    def stats(self) -> dict[str, dict[str, int]]:
        with self._lock:
            return {"performed": dict(self._performed), "requests": dict(self._requests)}

    @property
    def received(self) -> list[Received]:
        with self._lock:
            return list(self._received)

    @property
    def hanging(self) -> int:
        """Requests being held without an answer right now."""
        with self._lock:
            return self._hanging

    # ----------------------------------------------------------------- the decision

    def _decide(self, path: str, key: str, body: Any) -> tuple[_Answer | None, bool]:
        """The answer to send (``None``: none) and whether to hang first; under the lock."""
        fingerprint = path + json.dumps(body, sort_keys=True)
        kept = self._answers.get(key)
        if kept is not None:
            if kept.fingerprint != fingerprint:
                return _answer(422, {"reason": "idempotency key reused for another request"}), False
            return kept, False
        mode = self._queue.popleft() if self._queue else self._mode
        if mode is Mode.FAIL:
            return _answer(500, {"error": "provider failure"}), False
        if mode is Mode.MALFORMED:
            return _Answer(200, b"<html>surprise</html>", ""), False
        if mode is Mode.HANG:
            return None, True
        if mode is Mode.DECLINE:
            kept = _answer(402, {"status": "declined", "reason": self._reason}, fingerprint)
        else:
            self._sequence += 1
            self._performed[key] += 1
            prefix = "ch" if path == "/charges" else "re"
            kept = _answer(
                200,
                {
                    "status": "approved",
                    "id": f"{prefix}_{self._sequence}",
                    "amount": body.get("amount"),
                    "currency": body.get("currency"),
                },
                fingerprint,
            )
        self._answers[key] = kept
        return kept, mode is Mode.CHARGE_THEN_HANG

    def _control(self, doc: Any) -> None:
        with self._lock:
            if "mode" in doc:
                self._mode = Mode(doc["mode"])
            if "reason" in doc:
                self._reason = str(doc["reason"])
            self._queue.extend(Mode(m) for m in doc.get("then", ()))


def _answer(status: int, doc: dict[str, Any], fingerprint: str = "") -> _Answer:
    return _Answer(status, json.dumps(doc).encode(), fingerprint)


class _Httpd(ThreadingHTTPServer):
    daemon_threads = False  # server_close() joins them: a clean stop
    block_on_close = True

    def __init__(self, address: tuple[str, int], handler: type, provider: ProviderServer) -> None:
        self.provider = provider
        super().__init__(address, handler)

    # Connections are tracked from the accepting thread, before their handler
    # thread starts, so close() sees every one of them.
    def process_request(self, request: Any, client_address: Any) -> None:
        with self.provider._lock:
            self.provider._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.provider._lock:
            self.provider._connections.discard(request)
        super().shutdown_request(request)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the client's pool expects
    disable_nagle_algorithm = True  # headers and body go out as two writes: no 40 ms stall
    timeout = MAX_HANG
    server: _Httpd

    def log_message(self, format: str, *args: Any) -> None:  # the stdlib's signature
        return None

    def _send(self, status: int, body: bytes, **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path != "/stats":
            self._send(404, b'{"error": "not found"}')
            return
        self._send(200, json.dumps(self.server.provider.stats()).encode())

    def do_POST(self) -> None:
        provider = self.server.provider
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        try:
            doc = json.loads(raw)
        except ValueError:
            self._send(400, b'{"reason": "the body is not JSON"}')
            return
        if self.path == "/control":
            provider._control(doc)
            self._send(200, json.dumps({"mode": provider.mode.value}).encode())
            return
        if self.path not in ("/charges", "/refunds"):
            self._send(404, b'{"error": "not found"}')
            return
        key = self.headers.get("Idempotency-Key")
        with provider._lock:
            provider._received.append(Received(self.path, key, doc, dict(self.headers.items())))
            if key is None:
                answer, hang = _answer(400, {"reason": "Idempotency-Key missing"}), False
            else:
                provider._requests[key] += 1
                answer, hang = provider._decide(self.path, key, doc)
            if hang:
                provider._hanging += 1
        if hang:
            provider._released.wait(MAX_HANG)
            with provider._lock:
                provider._hanging -= 1
            self.close_connection = True  # the answer is lost: drop the connection
            return
        assert answer is not None
        self._send(answer.status, answer.body)


# --------------------------------------------------------------------------- a process


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.modules.orders.provider")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--mode", choices=[m.value for m in Mode], default=Mode.APPROVE.value)
    args = parser.parse_args(argv)
    stop = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop)  # before the threads: only sigwait sees them
    with ProviderServer(args.port, mode=Mode(args.mode)) as provider:
        print(json.dumps({"url": provider.url}), flush=True)
        signal.sigwait(stop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
