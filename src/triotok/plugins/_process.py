"""``isolation = "process"``: the plugin runs in a child process its ``host`` actor owns.

Each incarnation of :class:`ProcessHost` starts a child (forked from a warm
forkserver that has the platform's code loaded, so a start costs
milliseconds, not an interpreter start), connected by two pipes carrying
CBOR frames (``_frames``). The child sets its resource limits before it
imports the plugin (``_child``). Then:

* every call into the plugin is a frame with a deadline: a reply too late
  makes the host kill the child (a hang, a busy loop) and answer
  :class:`PluginTimeout`;
* every API call from the child is a frame the host decides through the
  capability gate, in the platform's process;
* the child's end of the pipe closing (it crashed, was killed, hit its
  memory or CPU limit) crashes the host actor, so the plugin's supervisor
  restarts it with backoff; the exit is recorded and shown in the tree.

Nothing of the platform's state is in the child but what a frame carries.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import multiprocessing
import os
import signal
import sys
import threading
from multiprocessing import spawn
from typing import Any

import trio

from .._exceptions import InvalidInput, SchemaError
from ..actors import Actor, UnknownMessage
from ..modules.audit import AuditEntry
from ..transport import Envelope, decode, encode
from ._api import Endpoint, PluginRequest, PluginResponse
from ._child import MEMORY_EXIT
from ._context import Scope
from ._errors import PluginCrashed, PluginTimeout
from ._frames import FrameStream
from ._run import PluginRun
from ._wire import error_from_wire, error_to_wire, reply_to_wire, request_to_wire

__all__ = ("MEMORY_EXIT", "ProcessHost", "describe_exit", "forkserver")

logger = logging.getLogger("triotok.plugins")


_CONTEXT: Any = None


#: Modules of the process plugins discovered so far: the forkserver preloads them.
PRELOAD: set[str] = set()


def forkserver() -> Any:
    """The multiprocessing context children are forked from (started on first use).

    The forkserver preloads the child runtime, the modules that define the
    platform's event types and those of the process plugins discovered before
    it started (:data:`PRELOAD`), so a child starts warm. It is one per
    process and lives as long as it: plugins discovered later are imported by
    their children themselves.
    """
    global _CONTEXT
    if _CONTEXT is None:
        context = multiprocessing.get_context("forkserver")
        preload = [
            "triotok.plugins._child",
            *sorted(name for name in list(sys.modules) if name.startswith("triotok.modules.")),
            *sorted(PRELOAD),
        ]
        context.set_forkserver_preload(preload)
        _CONTEXT = context
    return _CONTEXT


def describe_exit(code: int | None) -> str:
    if code is None:
        return "is still running"
    if code == MEMORY_EXIT:
        return "ran out of memory (its address-space limit)"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        if -code == signal.SIGXCPU:
            return f"exceeded its CPU-time limit ({name})"
        return f"was killed by {name}"
    return f"exited with status {code}"


_PREPARE_LOCK = threading.Lock()


def _without_main(prepare: Any) -> Any:
    def without_main(name: str) -> dict[str, Any]:
        data: dict[str, Any] = prepare(name)
        data.pop("init_main_from_path", None)
        data.pop("init_main_from_name", None)
        return data

    return without_main


def _spawn(spec: dict[str, Any]) -> tuple[Any, int, int]:
    """Start a child (blocking: run in a thread); its process and the host's two pipe ends."""
    from . import _child  # the target must be importable by name in the child

    context = forkserver()
    child_in, host_out = context.Pipe(duplex=False)
    host_in, child_out = context.Pipe(duplex=False)
    process = context.Process(
        target=_child.main, args=(child_in, child_out, spec), name=f"plugin-{spec['name']}"
    )
    process.daemon = True
    try:
        with _PREPARE_LOCK:
            # multiprocessing re-runs the parent's __main__ in a forkserver child
            # (for targets defined there); ours never is, and a script without a
            # ``__name__ == "__main__"`` guard would start again in every child.
            prepare = spawn.get_preparation_data
            spawn.get_preparation_data = _without_main(prepare)
            try:
                process.start()
            finally:
                spawn.get_preparation_data = prepare
    finally:
        child_in.close()
        child_out.close()
    read_fd, write_fd = os.dup(host_in.fileno()), os.dup(host_out.fileno())
    host_in.close()
    host_out.close()
    return process, read_fd, write_fd


class _Pending:
    __slots__ = ("done", "error", "value")

    def __init__(self) -> None:
        self.done = trio.Event()
        self.value: Any = None
        self.error: BaseException | None = None


class ProcessHost(Actor):
    """The ``host`` of a process-isolated plugin: its child process and the calls into it."""

    def __init__(self, run: PluginRun) -> None:
        self._run = run
        self._process: Any = None
        self._frames: FrameStream | None = None
        self._pending: dict[int, _Pending] = {}
        self._inflight: dict[int, Scope] = {}
        self._ids = itertools.count(1)
        self._stopping = False
        self._exit: int | None = None

    # ---------------------------------------------------------------- lifecycle

    async def on_start(self) -> None:
        run = self._run
        self.ctx.register("calls", run.breaker)
        self.ctx.register("plugin", run)
        spec = {
            "name": run.name,
            "location": list(run.location),
            "limits": run.limits.as_dict(),
            "sys_path": list(sys.path),
        }
        process, read_fd, write_fd = await trio.to_thread.run_sync(_spawn, spec)
        self._process = process
        self._frames = FrameStream(
            trio.lowlevel.FdStream(read_fd), trio.lowlevel.FdStream(write_fd)
        )
        run.host_facts = {
            "isolation": "process",
            "pid": process.pid,
            "exits": run.host_facts.get("exits", 0),
            "last_exit": run.host_facts.get("last_exit"),
        }
        self.ctx.nursery.start_soon(self._read)
        init = {
            "op": "init",
            "grants": run.grants.as_dict(),
            "settings": run.settings,
            "plan": [index for index, _ in run.plan],
        }
        facts = await run.breaker.call(self._call, init, run.limits.start_timeout)
        run.host_facts.update(facts if isinstance(facts, dict) else {})
        run.runtime = self

    async def on_stop(self) -> None:
        self._stopping = True
        run = self._run
        if run.runtime is self:
            run.runtime = None
        if self._frames is not None and self._exit is None:
            with trio.move_on_after(run.limits.deadline):
                try:
                    await self._call({"op": "stop"}, run.limits.deadline)
                except Exception as exc:  # it is stopping anyway; say why it did not say goodbye
                    logger.info("plugin %s did not stop cleanly: %s", run.name, exc)
        await self._reap(grace=1.0)

    async def receive(self, message: Any) -> Any:
        raise UnknownMessage(self.ctx.path, message, ())

    # ---------------------------------------------------------------- the child

    def _kill(self) -> None:
        process = self._process
        if process is not None and process.exitcode is None:
            with contextlib.suppress(OSError, ValueError):  # already gone, or closed
                process.kill()

    async def _reap(self, *, grace: float) -> int | None:
        """Wait (up to ``grace``) for the child to exit, killing it if it does not; its status."""
        process = self._process
        if process is None:
            return self._exit
        await trio.to_thread.run_sync(process.join, grace)
        if process.exitcode is None:
            self._kill()
            await trio.to_thread.run_sync(process.join, 5.0)
        self._exit = process.exitcode
        if self._frames is not None:
            await self._frames.aclose()
        return self._exit

    async def _read(self) -> None:
        frames = self._frames
        assert frames is not None
        try:
            while True:
                try:
                    message = await frames.receive()
                except (SchemaError, trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                    logger.warning("plugin %s: bad frame, killing it: %s", self._run.name, exc)
                    self._kill()
                    message = None
                if message is None:
                    break
                kind = message.get("k")
                if kind == "done":
                    self._settle(message)
                elif kind == "api":
                    self.ctx.nursery.start_soon(self._api, message)
                else:
                    logger.warning("plugin %s sent a %r frame; killing it", self._run.name, kind)
                    self._kill()
        finally:
            with trio.CancelScope(shield=True):  # bounded: the child is killed after the grace
                code = await self._reap(grace=2.0)
            cause = PluginCrashed(self._run.name, f"its process {describe_exit(code)}")
            for pending in self._pending.values():
                if not pending.done.is_set():
                    pending.error = cause
                    pending.done.set()
            run = self._run
            if run.runtime is self:
                run.runtime = None
            run.host_facts["exits"] = run.host_facts.get("exits", 0) + 1
            run.host_facts["last_exit"] = describe_exit(code)
            if not self._stopping:
                with trio.CancelScope(shield=True), trio.move_on_after(5.0):
                    await self._audit_exit(code)
        if not self._stopping:
            raise cause

    async def _audit_exit(self, code: int | None) -> None:
        """An unexpected exit of the child goes to the audit log (the operator tenant's view)."""
        entry = AuditEntry(
            f"plugin:{self._run.name}",
            "plugin.crashed",
            f"plugin/{self._run.name}",
            None,
            {"exit": describe_exit(code), "pid": self._run.host_facts.get("pid")},
        )
        try:
            await self._run.gate.repository.audit(entry)
        except Exception:  # the crash is in the tree and the counters either way
            logger.exception("could not audit the exit of plugin %s", self._run.name)

    def _settle(self, message: dict[str, Any]) -> None:
        pending = self._pending.get(message.get("id"))  # type: ignore[arg-type]  # any key; a miss is ignored
        if pending is None or pending.done.is_set():
            return
        if message.get("ok"):
            pending.value = message.get("value")
        else:
            pending.error = error_from_wire(self._run.name, message.get("error"))
        pending.done.set()

    async def _call(self, message: dict[str, Any], deadline: float) -> Any:
        frames = self._frames
        if frames is None or self._exit is not None:
            raise PluginCrashed(self._run.name, "its process is gone")
        call_id = next(self._ids)
        pending = self._pending[call_id] = _Pending()
        try:
            await frames.send({"k": "call", "id": call_id, **message})
            with trio.move_on_after(deadline):
                await pending.done.wait()
            if not pending.done.is_set():
                # A hang or a busy loop: only the process can be stopped, not the call.
                self._kill()
                raise PluginTimeout(self._run.name, f"no answer within {deadline:g}s; killed")
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            raise PluginCrashed(self._run.name, "its process is gone") from None
        finally:
            del self._pending[call_id]
        if pending.error is not None:
            raise pending.error
        return pending.value

    async def _api(self, message: dict[str, Any]) -> None:
        """One API call from the child, decided by the gate; the reply goes back on the pipe."""
        call_id = message.get("id")
        scope = self._inflight.get(message.get("scope"))  # type: ignore[arg-type]  # any key; unknown: no scope
        try:
            op, args = message.get("op"), dict(message.get("args") or {})
            if op == "publish":
                data = args.get("envelope")
                if not isinstance(data, bytes):
                    raise InvalidInput("publish takes an encoded envelope", field="envelope")
                args["envelope"] = decode(data)
            value = await self._run.gate.api(str(op), args, scope)
            if op == "http":
                value = reply_to_wire(value)
            reply: dict[str, Any] = {"k": "reply", "id": call_id, "ok": True, "value": value}
        except Exception as exc:
            reply = {"k": "reply", "id": call_id, "ok": False, "error": error_to_wire(exc)}
        frames = self._frames
        if frames is not None:
            # The child may be gone meanwhile: the reader reports that.
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                await frames.send(reply)

    # ---------------------------------------------------------------- Runtime

    async def deliver(self, index: int, envelope: Envelope, scope: Scope) -> None:
        message = {
            "op": "event",
            "index": index,
            "envelope": encode(envelope),
            "module": type(envelope.payload).__module__,
            "scope": scope.call,
            "tenant": scope.tenant,
        }
        self._inflight[scope.call] = scope
        try:
            await self._call(message, self._run.limits.deadline)
        finally:
            self._inflight.pop(scope.call, None)

    async def request(
        self, endpoint: Endpoint, request: PluginRequest, scope: Scope
    ) -> PluginResponse:
        message = {
            "op": "request",
            "endpoint": endpoint.key,
            "request": request_to_wire(request),
            "scope": scope.call,
            "tenant": scope.tenant,
        }
        self._inflight[scope.call] = scope
        try:
            value = await self._call(message, self._run.limits.deadline)
        finally:
            self._inflight.pop(scope.call, None)
        return PluginResponse(
            value.get("body"), int(value.get("status", 200)), value.get("headers") or {}
        )
