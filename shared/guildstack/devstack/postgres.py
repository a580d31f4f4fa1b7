"""PostgreSQL 16 + pgvector from the `pgserver` package, on a loopback TCP port.

pgserver ships the binaries; we drive initdb/pg_ctl ourselves so the server listens on
TCP (pgserver's own helper only opens a unix socket) and its data lives where we say.
PostgreSQL refuses to run as root, so under root the server runs as the `pgserver`
system user, exactly as pgserver itself does.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
from pathlib import Path

import psycopg
from psycopg import sql

from guildstack.devstack.servers import free_port

SYSTEM_USER = "pgserver"
_SAFE_DB_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def _bin(name: str) -> str:
    from pgserver._commands import POSTGRES_BIN_PATH

    return str(POSTGRES_BIN_PATH / name)


class EmbeddedPostgres:
    """One PostgreSQL server whose data lives in `data_dir` and survives restarts."""

    def __init__(self, data_dir: Path, port: int | None = None, *, durable: bool = True) -> None:
        self.data_dir = data_dir.resolve()
        self.pgdata = self.data_dir / "data"
        self.log_file = self.data_dir / "postgres.log"
        self.port = port or free_port()
        self.durable = durable
        self._run_as = SYSTEM_USER if os.geteuid() == 0 else None

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> str:
        """Start (or adopt an already running) server and return its DSN."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self._run_as:
            self._grant_to_system_user()
        if not (self.pgdata / "PG_VERSION").exists():
            self._run(
                _bin("initdb"),
                "-D",
                str(self.pgdata),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
            )
        running = self._running_port()
        if running is not None:
            self.port = running
            return self.dsn()
        options = [
            f"-p {self.port}",
            "-c listen_addresses=127.0.0.1",
            "-c unix_socket_directories=''",
            "-c max_connections=200",
        ]
        if not self.durable:
            # Throwaway test data: trade crash safety for speed.
            options += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
        self._run(
            _bin("pg_ctl"),
            "-D",
            str(self.pgdata),
            "-w",
            "-t",
            "60",
            "-l",
            str(self.log_file),
            "-o",
            " ".join(options),
            "start",
        )
        return self.dsn()

    def stop(self) -> None:
        if self._running_port() is None:
            return
        self._run(_bin("pg_ctl"), "-D", str(self.pgdata), "-w", "-m", "fast", "stop")

    def create_database(self, name: str) -> str:
        self._check_name(name)
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
        return self.dsn(name)

    def drop_database(self, name: str) -> None:
        self._check_name(name)
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(
                sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
            )

    @staticmethod
    def _check_name(name: str) -> None:
        if not _SAFE_DB_NAME.match(name):
            raise ValueError(f"not a safe database name: {name!r}")

    def _running_port(self) -> int | None:
        """The port of a live server on this data dir, from postmaster.pid."""
        pid_file = self.pgdata / "postmaster.pid"
        if not pid_file.exists():
            return None
        lines = pid_file.read_text().splitlines()
        try:
            pid, port = int(lines[0]), int(lines[3])
        except (IndexError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass  # alive, owned by the postgres system user
        return port

    def _run(self, *argv: str) -> None:
        result = subprocess.run(  # noqa: S603 - fixed binaries, our own arguments
            list(argv),
            user=self._run_as,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if result.returncode != 0:
            log = self.log_file.read_text()[-2000:] if self.log_file.exists() else ""
            raise RuntimeError(
                f"{Path(argv[0]).name} failed ({result.returncode}): {result.stderr.strip()}\n{log}"
            )

    def _grant_to_system_user(self) -> None:
        """Create the unprivileged user and let it reach the binaries and own the data."""
        from pgserver._commands import POSTGRES_BIN_PATH
        from pgserver.utils import (
            ensure_folder_permissions,
            ensure_prefix_permissions,
            ensure_user_exists,
        )

        entry = ensure_user_exists(SYSTEM_USER)
        assert entry is not None  # noqa: S101 - ensure_user_exists creates it or raises
        ensure_prefix_permissions(POSTGRES_BIN_PATH)
        ensure_folder_permissions(POSTGRES_BIN_PATH, 0o555)
        ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", 0o444)
        ensure_prefix_permissions(self.data_dir)
        for path in (self.data_dir, *self.data_dir.rglob("*")):
            shutil.chown(path, entry.pw_uid, entry.pw_gid)
        self.data_dir.chmod(0o700)


def system_user_exists() -> bool:
    try:
        pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        return False
    return True
