"""``triotok events``: the L2 event stream from the terminal, straight to NATS.

::

    $ triotok events status --events nats://127.0.0.1:4222
    stream TRIOTOK  1200 events  seq 1..1200  312.4 KiB  max age 7d
      search-1a2b3c4d  group search   pattern *          pending 0  in flight 0  lag 0

    $ triotok events replay --group search --from-seq 1
    search: replaying from seq 1 (1200 events)
    [########################################] 100%  1200/1200  4310 events/s

``replay`` moves every consumer of the group back (the running nodes of the
group then handle the events again: their inbox keeps effects single) and
shows a progress bar until the group has caught up, unless ``--no-wait``.
The URL comes from ``--events``, else ``--config``'s ``[events] url``, else
``TRIOTOK_EVENTS_URL`` (the stream likewise: ``--stream``, ``[events] stream``,
``TRIOTOK_EVENTS_STREAM``, ``TRIOTOK``). It talks to NATS itself, so it needs no API key: whoever
may reach the NATS server may replay (protect it as you protect the database).

Exit codes: 0 done; 1 the stream could not be reached, or the group did not
catch up within ``--timeout``; 2 a usage problem (no URL, unknown group, bad
``--since``).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

__all__ = ("add_parser", "main", "parse_since", "progress_line")

_RELATIVE = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_BAR = 40


def add_parser(commands: Any) -> None:
    events = commands.add_parser(
        "events",
        help="inspect the L2 event stream (NATS JetStream) and replay a consumer group",
        description="Inspect the event stream of a TrioToK cluster on NATS JetStream, and "
        "replay a consumer group from a stream sequence or a point in time.",
    )
    actions = events.add_subparsers(
        dest="action", required=True, metavar="ACTION", help="status or replay"
    )
    status = actions.add_parser("status", help="the stream and its consumer groups")
    replay = actions.add_parser("replay", help="deliver a group's events again")
    for sub in (status, replay):
        sub.add_argument("--events", metavar="URL", help="nats://host:port of the stream")
        sub.add_argument("--config", metavar="FILE", help="read [events] from this TOML file")
        sub.add_argument("--stream", metavar="NAME", help="the stream (default: TRIOTOK)")
    replay.add_argument("--group", required=True, help="the consumer group (e.g. search)")
    start = replay.add_mutually_exclusive_group(required=True)
    start.add_argument("--from-seq", type=int, metavar="N", help="from stream sequence N (1: all)")
    start.add_argument(
        "--since",
        metavar="TIME",
        help="from a time: ISO 8601 (2024-05-01T12:00Z), or 10m, 2h, 1d ago",
    )
    replay.add_argument("--no-wait", action="store_true", help="do not wait for the group")
    replay.add_argument(
        "--timeout", type=float, default=600.0, metavar="SECONDS", help="wait at most this long"
    )


def parse_since(text: str, *, now: datetime | None = None) -> datetime:
    """An aware datetime from ISO 8601 (UTC if no offset) or ``<n>[smhd]`` before ``now``.

    >>> parse_since("2024-05-01T12:00:00Z").isoformat()
    '2024-05-01T12:00:00+00:00'
    >>> parse_since("2h", now=datetime(2024, 5, 1, 12, tzinfo=UTC)).hour
    10
    """
    relative = _RELATIVE.fullmatch(text.strip())
    if relative is not None:
        amount = float(relative.group(1)) * _UNITS[relative.group(2)]
        return (now or datetime.now(UTC)) - timedelta(seconds=amount)
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r} is neither ISO 8601 nor like 10m, 2h, 1d") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def progress_line(done: int, total: int, rate: float) -> str:
    """``[####----]  50%  500/1000  1200 events/s``.

    >>> progress_line(1, 4, 10.0)
    '[##########..............................]  25%  1/4  10 events/s'
    """
    fraction = 1.0 if total <= 0 else min(1.0, max(0.0, done / total))
    filled = round(fraction * _BAR)
    return (
        f"[{'#' * filled}{'.' * (_BAR - filled)}] {fraction * 100:3.0f}%"
        f"  {done}/{total}  {rate:.0f} events/s"
    )


def _settings(args: argparse.Namespace) -> tuple[str | None, str]:
    """The URL and stream: flags, else the TOML file, else ``TRIOTOK_EVENTS_*``."""
    section: dict[str, Any] = {}
    if args.config:
        import tomllib

        with open(args.config, "rb") as fh:
            section = tomllib.load(fh).get("events", {})
    url = args.events or section.get("url") or os.environ.get("TRIOTOK_EVENTS_URL") or None
    stream = (
        args.stream or section.get("stream") or os.environ.get("TRIOTOK_EVENTS_STREAM") or "TRIOTOK"
    )
    return (None if url is None else str(url)), str(stream)


def main(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    """Run ``triotok events ACTION``; returns the exit code."""
    import trio

    from ._exceptions import InvalidConfig, NotFound, StreamUnavailable
    from .transport import JetStreamConfig

    try:
        url, stream = _settings(args)
        if url is None:
            print("triotok events: no stream URL (--events, [events] url or TRIOTOK_EVENTS_URL)",
                  file=sys.stderr)  # fmt: skip
            return 2
        config = JetStreamConfig(url, stream=stream)
        since = parse_since(args.since) if getattr(args, "since", None) else None
    except (InvalidConfig, ValueError, OSError) as exc:
        print(f"triotok events: {exc}", file=sys.stderr)
        return 2
    try:
        if args.action == "status":
            return trio.run(_status, config, out)
        return trio.run(_replay, config, args, since, out)
    except NotFound as exc:
        print(f"triotok events: {exc}", file=sys.stderr)
        return 2
    except StreamUnavailable as exc:
        print(f"triotok events: {exc}", file=sys.stderr)
        return 1


async def _status(config: Any, out: TextIO) -> int:
    from .transport import open_stream_admin

    async with open_stream_admin(config) as admin:
        state = await admin.stream_state()
        age = "none" if state.max_age_seconds is None else f"{state.max_age_seconds / 86400:g}d"
        print(
            f"stream {state.name}  {state.messages} events  seq {state.first_seq}..{state.last_seq}"
            f"  {state.bytes / 1024:.1f} KiB  max age {age}",
            file=out,
        )
        for c in await admin.consumers():
            print(
                f"  {c.name:<24} group {c.group or '-':<12} pattern {c.pattern or '-':<12}"
                f" pending {c.pending}  in flight {c.ack_pending}  lag {c.lag}",
                file=out,
            )
    return 0


async def _replay(
    config: Any, args: argparse.Namespace, since: datetime | None, out: TextIO
) -> int:
    import trio

    from .transport import open_stream_admin

    async with open_stream_admin(config) as admin:
        reset = await admin.reset_group(args.group, from_seq=args.from_seq, since=since)
        total = sum(c.lag for c in reset)
        where = f"seq {args.from_seq}" if since is None else since.isoformat()
        print(f"{args.group}: replaying from {where} ({total} events)", file=out, flush=True)
        if args.no_wait:
            return 0
        names = [c.name for c in reset]
        tty = out.isatty()
        started = time.monotonic()
        last_line = 0.0
        with trio.move_on_after(args.timeout):
            while True:
                lag = 0
                for name in names:
                    lag += (await admin.consumer_state(name)).lag
                done = max(0, total - lag)
                now = time.monotonic()
                line = progress_line(done, total, done / max(now - started, 1e-9))
                if tty:
                    print(f"\r{line}", end="", file=out, flush=True)
                elif lag == 0 or now - last_line >= 5.0:
                    print(line, file=out, flush=True)
                    last_line = now
                if lag == 0:
                    if tty:
                        print(file=out)
                    return 0
                await trio.sleep(0.25)
        if tty:
            print(file=out)
        print(f"triotok events: {args.group} did not catch up within {args.timeout:g}s "
              "(is a node of the group running?)", file=sys.stderr)  # fmt: skip
        return 1
