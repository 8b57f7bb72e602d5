"""A real PostgreSQL server for the team-ledger tests, started by the tests themselves.

Debian's `postgresql` package provides the binaries (/usr/lib/postgresql/*/bin); a
throw-away cluster is made with initdb in a temporary folder and served by
pg_ctl on 127.0.0.1 (and a unix socket in that folder). PostgreSQL refuses to
run as root, so as root the cluster belongs to the `postgres` user (or `nobody`).
Locally, missing binaries skip; in CI (CI=true) they fail: .ci/run installs them.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest


def pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    return Path(found[-1]).parent if found else None


def need_postgres() -> Path:
    bin_dir = pg_bin()
    if bin_dir is not None:
        return bin_dir
    if os.environ.get("CI") == "true":
        pytest.fail("PostgreSQL binaries are missing in CI: .ci/run must install Debian's postgresql")
    pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PgServer:
    def __init__(self, bin_dir: Path) -> None:
        self.bin = bin_dir
        # not under pytest's tmp (mode 0700, root's): the server's user must reach its folder
        self.dir = Path(tempfile.mkdtemp(prefix="anvil-pg-", dir="/tmp"))
        self.user: str | None = None
        if os.geteuid() == 0:
            self.user = next((u for u in ("postgres", "nobody") if _has_user(u)), None)
            if self.user is None:
                pytest.fail("running as root and no `postgres` or `nobody` user to run PostgreSQL as")
            pw = pwd.getpwnam(self.user)
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        self.port = _free_port()
        self.data = self.dir / "data"

    def _run(self, *cmd: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        full = ["runuser", "-u", self.user, "--", *cmd] if self.user else list(cmd)
        p = subprocess.run(full, cwd=self.dir, capture_output=True, text=True, timeout=timeout)
        if p.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
        return p

    def start(self) -> PgServer:
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "anvil", "--no-locale",
                  "-E", "UTF8", "--no-sync")
        opts = (f"-k {self.dir} -p {self.port} -c listen_addresses=127.0.0.1 -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off -c max_connections=40")
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", opts, "-l", str(self.dir / "log"),
                  "-w", "-t", "60", "start")
        return self

    def url(self, db: str = "postgres") -> str:
        return f"postgresql://anvil@127.0.0.1:{self.port}/{db}"

    def new_database(self) -> str:
        """A fresh, empty database; its URL."""
        import psycopg

        name = f"t_{secrets.token_hex(6)}"
        with psycopg.connect(self.url(), autocommit=True) as c:
            c.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def stop(self) -> None:
        try:
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop", timeout=60)
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True
