"""A throwaway PostgreSQL cluster for tests and benchmarks.

``PostgresCluster`` runs ``initdb`` and ``pg_ctl`` on a free localhost port in
a fresh temporary directory, tuned for speed over durability (``fsync=off``):
never point it at data you care about. It is synchronous on purpose, so a
session-scoped pytest fixture or a benchmark can drive it outside any event
loop. When running as root (PostgreSQL refuses to), the server binaries run
through ``runuser -u postgres --`` and the directory is owned by ``postgres``.

::

    with PostgresCluster() as cluster:
        url = cluster.create_database("app")   # postgresql://postgres@127.0.0.1:PORT/app
        ...
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

from .._exceptions import StoreError

__all__ = ("PostgresCluster", "PostgresNotInstalled")

_IDENT = re.compile(r"[a-z_][a-z0-9_]{0,62}")

# Durability traded for speed: a test cluster is disposable.
_FAST_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    "shared_buffers": "32MB",
    "log_min_messages": "warning",
}


class PostgresNotInstalled(StoreError, LookupError):
    """No PostgreSQL server binaries (``initdb``, ``pg_ctl``, ``postgres``) were found."""

    code = "postgres_not_installed"


def _version_key(path: str) -> tuple[int, ...]:
    digits = re.findall(r"\d+", path)
    return tuple(int(d) for d in digits)


class PostgresCluster:
    """A disposable PostgreSQL cluster; ``start()``/``stop()``/``cleanup()`` or ``with``.

    ``bindir`` defaults to :meth:`find_bindir`. ``settings`` are extra
    ``postgresql.conf`` lines (values as PostgreSQL expects them, quoted where
    needed).
    """

    def __init__(
        self,
        *,
        bindir: Path | None = None,
        port: int | None = None,
        settings: Mapping[str, str] | None = None,
        user: str = "postgres",
    ) -> None:
        found = bindir or self.find_bindir()
        if found is None:
            raise PostgresNotInstalled(
                "PostgreSQL server binaries not found: looked in $TRIOTOK_PG_BINDIR, PATH, "
                "`pg_config --bindir` and /usr/lib/postgresql/*/bin"
            )
        self.bindir = found
        self.user = user
        self.port = port or _free_port()
        self.host = "127.0.0.1"
        self.base_dir = Path(tempfile.mkdtemp(prefix="triotok-pg-"))
        self.data_dir = self.base_dir / "data"
        self.log_file = self.base_dir / "postgres.log"
        self._settings = {**_FAST_SETTINGS, **(settings or {})}
        self._initialised = False
        self._as_user: list[str] = []
        if os.geteuid() == 0:
            # PostgreSQL refuses to run as root; hand the directory to the OS user.
            shutil.chown(self.base_dir, user=user)
            self._as_user = ["runuser", "-u", user, "--"]
        self._databases = 0

    # ---------------------------------------------------------------- discovery

    @staticmethod
    def find_bindir() -> Path | None:
        """Directory holding ``initdb``/``pg_ctl``/``postgres``, or ``None``."""
        candidates: list[str] = []
        if env := os.environ.get("TRIOTOK_PG_BINDIR"):
            candidates.append(env)
        if pg_ctl := shutil.which("pg_ctl"):
            candidates.append(str(Path(pg_ctl).resolve().parent))
        if pg_config := shutil.which("pg_config"):
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                out = subprocess.run(
                    [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True
                )
                candidates.append(out.stdout.strip())
        candidates.extend(
            sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True)
        )
        for candidate in candidates:
            path = Path(candidate)
            if all((path / exe).is_file() for exe in ("initdb", "pg_ctl", "postgres")):
                return path
        return None

    # ---------------------------------------------------------------- lifecycle

    def _run(self, argv: Sequence[str], *, as_owner: bool = True, timeout: float = 60) -> str:
        command = [*(self._as_user if as_owner else []), *argv]
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            log = self.log_file.read_text() if self.log_file.exists() else ""
            raise StoreError(
                f"{' '.join(argv[:2])} failed ({result.returncode}): "
                f"{result.stderr.strip() or result.stdout.strip()}\n{log[-2000:]}"
            )
        return result.stdout

    def _initdb(self) -> None:
        self._run(
            [
                str(self.bindir / "initdb"),
                "-D", str(self.data_dir),
                "-U", self.user,
                "--auth=trust",
                "--encoding=UTF8",
                "--no-locale",
                "--no-sync",
            ]
        )  # fmt: skip
        conf = {**self._settings, "port": str(self.port)}
        conf["unix_socket_directories"] = f"'{self.base_dir}'"
        with (self.data_dir / "postgresql.conf").open("a") as fh:
            fh.write("\n# triotok test cluster\n")
            fh.writelines(f"{key} = {value}\n" for key, value in conf.items())
        self._initialised = True

    def start(self) -> None:
        """Initialise (first time) and start the server; returns once it accepts connections."""
        if not self._initialised:
            self._initdb()
        self._run(
            [str(self.bindir / "pg_ctl"), "-D", str(self.data_dir), "-l", str(self.log_file),
             "-w", "-t", "60", "start"]
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``fast``: disconnect clients; ``immediate``: no checkpoint)."""
        if self.running:
            self._run([str(self.bindir / "pg_ctl"), "-D", str(self.data_dir), "-m", mode,
                       "-w", "stop"])  # fmt: skip

    def restart(self) -> None:
        """Stop and start again on the same port and data."""
        self.stop()
        self.start()

    @property
    def running(self) -> bool:
        """Whether the postmaster is up (its pid file exists)."""
        return (self.data_dir / "postmaster.pid").exists()

    def cleanup(self, *, wait: bool = True) -> None:
        """Stop the server at once and delete its directory.

        ``wait=False`` leaves the deletion to a detached ``rm -rf``: a session's
        cluster holds hundreds of databases (gigabytes of small files), and
        waiting for them to go cost the test session 20 s at its end.
        """
        try:
            if self.running:
                self.stop("immediate")
        finally:
            if wait or shutil.which("sh") is None:
                shutil.rmtree(self.base_dir, ignore_errors=True)
            else:
                # sh returns at once; the orphaned rm finishes on its own.
                subprocess.run(
                    ["sh", "-c", 'rm -rf -- "$1" >/dev/null 2>&1 &', "sh", str(self.base_dir)],
                    check=False,
                    timeout=10,
                )

    def __enter__(self) -> PostgresCluster:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.cleanup()

    # ---------------------------------------------------------------- databases

    def url(self, database: str = "postgres") -> str:
        """A TrioToK store URL for ``database`` on this cluster."""
        return f"postgresql://{self.user}@{self.host}:{self.port}/{database}"

    def create_database(self, name: str | None = None) -> str:
        """``CREATE DATABASE`` (a fresh unique name when ``None``); return its URL."""
        if name is None:
            self._databases += 1
            name = f"t{os.getpid()}_{self._databases}"
        if not _IDENT.fullmatch(name):
            raise StoreError(f"database name {name!r} must be a lower-case identifier")
        psql = self.bindir / "psql"
        self._run(
            [str(psql) if psql.exists() else "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1",
             "-h", self.host, "-p", str(self.port), "-U", self.user, "-d", "postgres",
             "-c", f'CREATE DATABASE "{name}"'],
            as_owner=False,
        )  # fmt: skip
        return self.url(name)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
