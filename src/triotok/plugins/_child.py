"""The child process of a process-isolated plugin (runs in the child only).

Order matters: the resource limits are set *first*, before the plugin's code
is imported, so nothing of the plugin ever runs unlimited:

* ``RLIMIT_AS``: the address space the interpreter holds now plus the
  plugin's ``memory_mb`` (an allocation past it raises ``MemoryError``, and
  the child exits with :data:`~._process.MEMORY_EXIT`);
* ``RLIMIT_CPU``: ``cpu_seconds`` of CPU time (then ``SIGXCPU`` ends it);
* ``RLIMIT_NOFILE``: ``open_files`` descriptors.

Then it serves frames: ``init`` (build the context, ``initialize``, start
the Module's actors), ``event`` and ``request`` (each in its own task, in the
call's scope), ``stop`` (``shutdown``, then exit). The end of the host's
pipe ends the child. Its API calls go back to the host as ``api`` frames.
"""

from __future__ import annotations

import importlib
import itertools
import os
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import trio

from .._exceptions import SchemaError
from ..modules import ModuleContext, RoleTable
from ..modules.access import KeyDirectory
from ..modules.tenants import TenantDirectory
from ..store import StoreHandle
from ..supervision import SupervisorSpec, open_system
from ..transport import Envelope, EventBus, InMemoryTransport, decode, encode
from ._api import Capabilities, Endpoint, Limits
from ._context import PluginContext, Scope, scoped
from ._discovery import load_location
from ._frames import FrameStream
from ._wire import (
    error_from_wire,
    error_to_wire,
    reply_from_wire,
    request_from_wire,
    response_from_result,
)

__all__ = ("main",)

#: The exit status of a child that ran out of address space (``MemoryError``).
MEMORY_EXIT = 86


def _address_space() -> int:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except OSError:  # pragma: no cover  # not Linux
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 * 4  # pragma: no cover


def set_limits(limits: Limits) -> dict[str, int]:
    import resource

    address = _address_space() + limits.memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (address, address))
    resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + 5))
    resource.setrlimit(resource.RLIMIT_NOFILE, (limits.open_files, limits.open_files))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a limit's signal leaves no core file
    return {
        "address_space": address,
        "cpu_seconds": limits.cpu_seconds,
        "open_files": limits.open_files,
    }


def main(receive: Any, send: Any, spec: dict[str, Any]) -> None:
    """The child's entry point (``multiprocessing`` target); never returns normally."""
    read_fd, write_fd = os.dup(receive.fileno()), os.dup(send.fileno())
    receive.close()
    send.close()
    sys.path[:] = list(spec.get("sys_path") or sys.path)
    try:
        facts = set_limits(Limits(**spec["limits"]))
        trio.run(_serve, read_fd, write_fd, spec, facts)
    except MemoryError:
        os._exit(MEMORY_EXIT)
    except BaseException:  # the host sees the exit status; nothing else to report to
        os._exit(1)
    os._exit(0)


class _ChildPort:
    """The plugin API's port in the child: each call is an ``api`` frame to the host."""

    def __init__(self, name: str, frames: FrameStream) -> None:
        self._name = name
        self._frames = frames
        self._ids = itertools.count(1)
        self._waiting: dict[int, tuple[trio.Event, list[Any]]] = {}

    async def api(self, op: str, args: dict[str, Any], scope: Scope | None) -> Any:
        if op == "publish":
            envelope: Envelope = args["envelope"]
            args = {"envelope": encode(envelope)}
        call_id = next(self._ids)
        done, box = trio.Event(), list[Any]()
        self._waiting[call_id] = (done, box)
        try:
            message = {"k": "api", "id": call_id, "op": op, "args": args}
            message["scope"] = scope.call if scope is not None else None
            await self._frames.send(message)
            await done.wait()
        finally:
            del self._waiting[call_id]
        reply = box[0]
        if not reply.get("ok"):
            raise error_from_wire(self._name, reply.get("error"))
        value = reply.get("value")
        return reply_from_wire(value) if op == "http" else value

    def settle(self, message: dict[str, Any]) -> None:
        waiting = self._waiting.get(message.get("id"))  # type: ignore[arg-type]  # a miss is ignored
        if waiting is not None:
            waiting[1].append(message)
            waiting[0].set()


async def _serve(read_fd: int, write_fd: int, spec: dict[str, Any], facts: dict[str, int]) -> None:
    name = spec["name"]
    frames = FrameStream(trio.lowlevel.FdStream(read_fd), trio.lowlevel.FdStream(write_fd))
    port = _ChildPort(name, frames)
    plugin = load_location(spec["location"])()
    module = plugin.module()
    endpoints: dict[str, Endpoint] = {e.key: e for e in module.route_table()}
    handlers: dict[int, Callable[[Envelope], Awaitable[None]]] = {}
    limits = Limits(**spec["limits"])

    async with open_system(name="plugin") as system, trio.open_nursery() as nursery:

        async def init(message: dict[str, Any]) -> Any:
            ctx = PluginContext(
                name,
                port,
                grants=Capabilities.from_dict(message["grants"]),
                settings=message.get("settings") or {},
                limits=limits,
            )
            # No store, no platform bus: the plugin reaches the platform through ctx only.
            module_context = ModuleContext(
                name,
                system,
                StoreHandle(),
                EventBus(attach_publisher=False),
                InMemoryTransport(),
                TenantDirectory("tenants"),
                KeyDirectory("access"),
                RoleTable(),
                settings=ctx.settings,
            )
            module_context.provide(ctx)
            for index in message.get("plan") or ():
                handlers[index] = module.subscriptions[index].handler(module_context)
            await plugin.initialize(ctx)
            if module.actors is not None:
                specs = list(module.actors(module_context))
                if specs:
                    await system.spawn_supervisor(SupervisorSpec("actors", specs))
            return {"pid": os.getpid(), **facts}

        async def event(message: dict[str, Any]) -> Any:
            payload_module = message.get("module")
            if isinstance(payload_module, str) and payload_module not in sys.modules:
                importlib.import_module(payload_module)
            envelope = decode(message["envelope"])
            with scoped(Scope(int(message["scope"]), message.get("tenant"))):
                await handlers[int(message["index"])](envelope)
            return None

        async def request(message: dict[str, Any]) -> Any:
            endpoint = endpoints[str(message["endpoint"])]
            incoming = request_from_wire(message["request"], endpoint.body, endpoint.query)
            with scoped(Scope(int(message["scope"]), message.get("tenant"))):
                result = await endpoint.handler(incoming)
            response = response_from_result(result, endpoint.status)
            return {
                "status": response.status,
                "body": response.body,
                "headers": dict(response.headers),
            }

        async def stop(message: dict[str, Any]) -> Any:
            await plugin.shutdown()
            return None

        operations = {"init": init, "event": event, "request": request, "stop": stop}

        async def handle(message: dict[str, Any]) -> None:
            op = message.get("op")
            try:
                value = await operations[str(op)](message)
                reply = {"k": "done", "id": message.get("id"), "ok": True, "value": value}
            except MemoryError:
                os._exit(MEMORY_EXIT)
            except Exception as exc:
                reply = {
                    "k": "done",
                    "id": message.get("id"),
                    "ok": False,
                    "error": error_to_wire(exc),
                }
            try:
                await frames.send(reply)
            except SchemaError as exc:  # a value the pipe cannot carry is the plugin's error
                error = error_to_wire(exc)
                await frames.send(
                    {"k": "done", "id": message.get("id"), "ok": False, "error": error}
                )
            if op == "stop":
                nursery.cancel_scope.cancel()

        while True:
            message = await frames.receive()
            if message is None:  # the host is gone
                break
            if message.get("k") == "reply":
                port.settle(message)
            elif message.get("k") == "call":
                nursery.start_soon(handle, message)
        nursery.cancel_scope.cancel()
