"""Application nodes as real processes: the multi-node tests' harness.

``start_node(env, nursery)`` runs ``tests/telemetry/_node.py`` (the whole
application, or without some modules: ``"--without", "search"``) and
returns the process and its HTTP port once it printed ``ready <port>``;
``node_env(**settings)`` is the environment for it, every setting given as
a ``TRIOTOK_*`` variable and none inherited from the caller's::

    env = node_env(store_url=url, events_url=nats.url, demo="true")
    proc, port = await start_node(env, nursery, "--without", "search")
    ...
    proc.send_signal(signal.SIGTERM)
    assert await proc.wait() == 0
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from pathlib import Path

import trio

__all__ = ("NODE", "node_env", "start_node")

#: The node program: reads ``TRIOTOK_*``, prints ``ready <port>``, stops on SIGTERM.
NODE = Path(__file__).parent / "telemetry" / "_node.py"


async def start_node(
    env: dict[str, str], nursery: trio.Nursery, *args: str, cwd: Path | None = None
) -> tuple[trio.Process, int]:
    """A node process started in ``nursery``; returns it and its port once it is ready."""
    proc = await nursery.start(
        functools.partial(
            trio.run_process,
            [sys.executable, str(NODE), *args],
            env=env,
            cwd=cwd,
            stdout=subprocess.PIPE,
            check=False,
        )
    )
    assert proc.stdout is not None
    buffer = b""
    while b"\n" not in buffer:
        chunk = await proc.stdout.receive_some(1024)
        assert chunk, "the node exited before it was ready"
        buffer += chunk
    words = buffer.split(b"\n", 1)[0].split()
    assert words[0] == b"ready", buffer
    return proc, int(words[1])


def node_env(**settings: str) -> dict[str, str]:
    """This environment without ``TRIOTOK_*``/``OTEL_*``, plus a node's defaults and ``settings``.

    The defaults: any free port, JSON logs at ``warning``, a 2-second
    graceful stop, and this interpreter's ``sys.path`` (the tree's ``src``).
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRIOTOK_", "OTEL_"))}
    env.update(
        {
            "TRIOTOK_PORT": "0",
            "TRIOTOK_LOG_FORMAT": "json",
            "TRIOTOK_LOG_LEVEL": "warning",
            "TRIOTOK_GRACEFUL_TIMEOUT": "2",
            "PYTHONPATH": os.pathsep.join(sys.path),
        }
    )
    env.update({f"TRIOTOK_{k.upper()}": v for k, v in settings.items()})
    return env
