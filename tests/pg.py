"""A throwaway PostgreSQL cluster for the tests: Debian's server binaries, no mocks.

`initdb` makes a cluster in a temp directory owned by the unprivileged `postgres`
user (the server refuses to run as root), `pg_ctl` starts it on a free 127.0.0.1
port with its unix socket in that directory, and every test gets a fresh
database (CREATE DATABASE ... TEMPLATE). Durability settings are relaxed
(fsync off): the tests kill kds, never the database server's host.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from .util import free_port

PG_USER = "postgres"
#: Where Debian puts each major version's server binaries.
PG_LIB = Path("/usr/lib/postgresql")
TEMPLATE = "kds_template"


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server binaries here (tests/run.sh installs Debian's package)."""


def find_bindir() -> Path:
    """The newest installed PostgreSQL's bin directory."""
    versions = sorted(
        (p for p in PG_LIB.glob("*/bin") if (p / "initdb").exists()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    if not versions:
        raise PostgresUnavailable(
            f"no PostgreSQL server under {PG_LIB} (install Debian's postgresql package;"
            " tests/run.sh does it)"
        )
    return versions[-1]


class PgCluster:
    """One initdb'd cluster, started with pg_ctl, stopped and removed by `stop()`."""

    def __init__(self, *, track_statements: bool = False) -> None:
        #: Load pg_stat_statements (a test counts the statements kds sends; the bench does not).
        self.track_statements = track_statements
        self.bindir = find_bindir()
        self.port = free_port()
        self._as_root = os.geteuid() == 0
        self.dir = Path(tempfile.mkdtemp(prefix="kds-pg-"))
        self.data = self.dir / "data"
        self.log = self.dir / "server.log"
        self._databases = 0
        if self._as_root:
            # The server runs as the unprivileged postgres user: it owns the directory.
            try:
                account = pwd.getpwnam(PG_USER)
            except KeyError as err:
                raise PostgresUnavailable(f"no {PG_USER!r} user to run the server as") from err
            os.chown(self.dir, account.pw_uid, account.pw_gid)
            self.dir.chmod(0o755)
        self.user = PG_USER if self._as_root else pwd.getpwuid(os.geteuid()).pw_name

    def _run(self, *args: str) -> None:
        command = [str(self.bindir / args[0]), *args[1:]]
        if self._as_root:
            command = ["runuser", "-u", PG_USER, "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            log = self.log.read_text() if self.log.exists() else ""
            raise RuntimeError(
                f"{args[0]} failed ({result.returncode}): {result.stderr}{result.stdout}{log[-2000:]}"
            )

    def start(self) -> PgCluster:
        """initdb, then start the server and wait until it accepts connections."""
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            self.user,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        )
        options = " ".join(
            [
                f"-p {self.port}",
                "-c listen_addresses=127.0.0.1",
                f"-c unix_socket_directories={self.dir}",
                "-c fsync=off",
                "-c full_page_writes=off",
                "-c max_connections=200",
                "-c shared_buffers=32MB",
                *(["-c shared_preload_libraries=pg_stat_statements"] * self.track_statements),
            ]
        )
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start")
        self.psql(f"CREATE DATABASE {TEMPLATE}")
        return self

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run `sql` with psql over TCP; its output."""
        result = subprocess.run(
            [
                str(self.bindir / "psql"),
                "-X",
                "-q",
                "-At",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                self.user,
                "-d",
                database,
                "-c",
                sql,
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if result.returncode != 0:
            raise RuntimeError(f"psql failed: {result.stderr}")
        return result.stdout

    def url(self, database: str) -> str:
        """The connection URL of `database` in this cluster."""
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """A fresh, empty database; its URL."""
        self._databases += 1
        name = f"kds_test_{self._databases}"
        self.psql(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
        return self.url(name)

    def stop(self) -> None:
        """Stop the server (fast shutdown) and remove the cluster."""
        try:
            if (self.data / "postmaster.pid").exists():
                self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
