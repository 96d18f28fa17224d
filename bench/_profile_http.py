"""Profile one TrioToK server under an external load: where a request's time goes.

::

    python bench/_profile_http.py [--seconds 6] [--path /api/tenants/current] [--top 25]

Starts ``triotok serve --demo`` (SQLite in a temporary directory) inside
``cProfile`` in a child process, loads it with ``wrk -t1 -c32`` for
``--seconds``, stops it with SIGTERM (a clean exit writes the profile) and
prints the top entries by cumulative and by own time, with the requests per
second wrk saw (lower than an unprofiled run: cProfile taxes every call).

Which code is profiled is whatever ``triotok`` imports: put another tree
first on ``PYTHONPATH`` to profile it (e.g. an older commit's ``src``) with
the same load. Not a benchmark (no ratio, no budget): it is the tool behind
the "profile before and after" of the HTTP hot-path work.
"""

from __future__ import annotations

import argparse
import json
import os
import pstats
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_CHILD = """
import cProfile, sys
from triotok.cli import main
profile = cProfile.Profile()
try:
    profile.runcall(main, sys.argv[2:])
finally:
    profile.dump_stats(sys.argv[1])
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_listening(port: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit(f"the server did not listen on {port} in time")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=6, help="seconds of load")
    parser.add_argument("--path", default="/api/tenants/current", help="the GET to load")
    parser.add_argument("--top", type=int, default=25, help="entries per table")
    parser.add_argument("--out", default="", help="keep the .prof file here")
    parser.add_argument(
        "--set", action="append", default=[], metavar="NAME=VALUE", help="a TRIOTOK_* setting"
    )
    args = parser.parse_args(argv)
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("wrk is not installed (Debian: apt-get install wrk)")
    with tempfile.TemporaryDirectory(prefix="triotok-prof-") as tmp:
        port = _free_port()
        prof = Path(args.out or f"{tmp}/server.prof")
        env = {k: v for k, v in os.environ.items() if not k.startswith("TRIOTOK_")}
        env.update(
            TRIOTOK_RATE_LIMIT_PER_IP="100000000",
            TRIOTOK_RATE_LIMIT_PER_KEY="100000000",
            TRIOTOK_LOG_LEVEL="warning",
        )
        env.update(item.split("=", 1) for item in args.set)
        command = [sys.executable, "-c", _CHILD, str(prof), "serve", "--demo"]
        command += ["--port", str(port), "--store", f"sqlite:///{tmp}/triotok.db"]
        server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
        try:
            _wait_listening(port, time.monotonic() + 60)
            key = json.loads(Path(tmp, "demo-keys.json").read_text())["demo"]
            url = f"http://127.0.0.1:{port}{args.path}"
            header = f"Authorization: Bearer {key}"
            print(f"profiling {url} under wrk -t1 -c32 -d{args.seconds}s", file=sys.stderr)
            load = subprocess.run(
                [wrk, "-t1", "-c32", f"-d{args.seconds}s", "-H", header, url],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=60)
        rate = re.search(r"Requests/sec:\s+([\d.]+)", load)
        print(f"wrk under the profiler: {rate[1] if rate else '?'} req/s")
        print(load)
        stats = pstats.Stats(str(prof))
        stats.strip_dirs()
        print(f"\n-- top {args.top} by cumulative time")
        stats.sort_stats("cumulative").print_stats(args.top)
        print(f"-- top {args.top} by own time")
        stats.sort_stats("tottime").print_stats(args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
