"""OTLP export from a child process: the server's interpreter only pickles spans.

Encoding a span to OTLP protobuf costs the SDK's exporter ~23 µs of CPU,
under the GIL, in the batch processor's thread, so the trio thread that
serves the requests waits for it. The CPU stays the same; it is spent on
another interpreter (and core). :class:`ForwardingSpanExporter` hands each batch, as a
pickle of plain tuples (:func:`~triotok.telemetry._forwarder.flatten`), to
a child process (``_forwarder.py``) that rebuilds the spans and exports them
with ``OTLPSpanExporter``, on its own interpreter and core.

Invariants and reasons:

* it is a ``SpanExporter`` behind the SDK's ``BatchSpanProcessor``: queueing,
  batching, dropping when the queue is full, ``force_flush`` and ``shutdown``
  keep the SDK's semantics, and :meth:`export` returns only once the child
  has answered for the batch (exported or not), so a flushed span has been
  sent;
* the child is started at the first batch and again after it died (a batch
  whose write or answer failed is retried once on a new child): a crash of
  the child never reaches the server, and loses (or sends twice) at most
  the batch it held;
* the pipe carries only what this process wrote to its own child, so the
  frames may be pickles;
* where no child can be started, spans are exported in this process, as
  before (logged once).
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import select
import subprocess
import sys
import threading
from collections.abc import Sequence

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from ._forwarder import HEADER, flatten

__all__ = ("ForwardingSpanExporter",)

logger = logging.getLogger("triotok.telemetry")

_SCRIPT = os.path.join(os.path.dirname(__file__), "_forwarder.py")


class ForwardingSpanExporter(SpanExporter):
    """See the module docstring.

    ``timeout``: the child's OTLP export timeout in seconds; ``None`` leaves
    it to the SDK's variables (``OTEL_EXPORTER_OTLP_TRACES_TIMEOUT``, then
    ``OTEL_EXPORTER_OTLP_TIMEOUT``, else 10), which the child inherits with
    the rest of the environment (headers, compression, certificates).
    """

    def __init__(self, endpoint: str, *, timeout: float | None = None) -> None:
        self.endpoint = endpoint
        self._timeout = timeout
        #: The longest an export may take in the child (this side waits a little more).
        self.timeout = timeout if timeout is not None else _sdk_timeout()
        #: How many children were started (1 unless one died).
        self.started = 0
        self._child: subprocess.Popen[bytes] | None = None
        self._fallback: SpanExporter | None = None
        self._lock = threading.Lock()
        self._closed = False

    # ------------------------------------------------------------------ SpanExporter

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        with self._lock:
            if self._closed:
                return SpanExportResult.FAILURE
            if self._fallback is not None:
                return self._export_here(spans)
            body = pickle.dumps(flatten(spans), protocol=pickle.HIGHEST_PROTOCOL)
            frame = HEADER.pack(len(body)) + body
            for attempt in (1, 2):
                child = self._running()
                if child is None:  # none could start: this process exports
                    return self._export_here(spans)
                answer = self._send(child, frame)
                if answer is not None:
                    return SpanExportResult.SUCCESS if answer else SpanExportResult.FAILURE
                self._stop(child)  # died or stuck: a new one for the retry
                if attempt == 1:
                    logger.warning("the span forwarder stopped; starting a new one")
            return SpanExportResult.FAILURE

    def _export_here(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        fallback = self._fallback
        assert fallback is not None
        return fallback.export(spans)

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True  # export answers only once the child has sent the batch

    def shutdown(self) -> None:
        with self._lock:
            self._closed = True
            if self._child is not None:
                child, self._child = self._child, None
                if child.stdin is not None:
                    with contextlib.suppress(OSError):
                        child.stdin.close()  # its end of input: it shuts down and exits
                try:
                    child.wait(timeout=self.timeout + 5)
                except subprocess.TimeoutExpired:
                    child.kill()
                    child.wait()
                _close(child)
            if self._fallback is not None:
                self._fallback.shutdown()

    # ------------------------------------------------------------------ the child

    @property
    def pid(self) -> int | None:
        """The running child's process id (``None`` before the first batch or after a death)."""
        child = self._child
        return None if child is None or child.poll() is not None else child.pid

    def _running(self) -> subprocess.Popen[bytes] | None:
        child = self._child
        if child is not None:
            if child.poll() is None:
                return child
            _close(child)  # it died between batches
        try:
            child = subprocess.Popen(
                # -P: the script's directory (this package's) stays off sys.path.
                [sys.executable, "-P", _SCRIPT, self.endpoint, str(self._timeout or "")],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                close_fds=True,
            )
        except OSError as error:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            logger.warning("no span forwarder (%s): exporting spans in this process", error)
            self._fallback = OTLPSpanExporter(endpoint=self.endpoint, timeout=self._timeout)
            return None
        self._child = child
        self.started += 1
        return child

    def _send(self, child: subprocess.Popen[bytes], frame: bytes) -> bool | None:
        """Write ``frame``, wait for the child's answer: exported or not, ``None`` if none came."""
        assert child.stdin is not None
        assert child.stdout is not None
        try:
            child.stdin.write(frame)
            child.stdin.flush()
            # Its own exporter gives up after ``timeout`` (retries included).
            ready, _, _ = select.select([child.stdout], [], [], self.timeout + 5)
            answer = os.read(child.stdout.fileno(), 1) if ready else b""
        except OSError:  # BrokenPipeError: it died
            return None
        if answer not in (b"0", b"1"):
            return None
        return answer == b"1"

    def _stop(self, child: subprocess.Popen[bytes]) -> None:
        if child.poll() is None:
            child.kill()
        child.wait()
        _close(child)
        if self._child is child:
            self._child = None


def _close(child: subprocess.Popen[bytes]) -> None:
    for pipe in (child.stdin, child.stdout):
        if pipe is not None:
            with contextlib.suppress(OSError):
                pipe.close()


def _sdk_timeout() -> float:
    """The OTLP exporter's timeout as the SDK reads it from the environment, seconds."""
    for name in ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT"):
        raw = os.environ.get(name)
        if raw:
            try:
                return float(raw)
            except ValueError:
                break  # the SDK warns and uses its default too
    return 10.0
