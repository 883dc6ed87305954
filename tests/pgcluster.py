"""A PostgreSQL 15 cluster of a test's own on a free port, to stop and restart for real (never the
shared server)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from scripts import localstack

PG_BIN = Path("/usr/lib/postgresql/15/bin")


@dataclass
class Cluster:
    base: Path
    port: int

    def ctl(self, *args: str) -> None:
        """``pg_ctl`` of this cluster (as ``postgres`` when run as root: initdb refuses root)."""
        command = [str(PG_BIN / "pg_ctl"), "-D", str(self.base / "data"), "-l", str(self.base / "server.log")]
        subprocess.run([*_as_owner(), *command, "-w", *args], check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        self.ctl("-o", f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 -c fsync=off", "start")

    def stop_immediate(self) -> None:
        self.ctl("-m", "immediate", "stop")

    def dsn(self, dbname: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"


def _as_owner() -> list[str]:
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


@contextmanager
def throwaway_cluster() -> Iterator[Cluster]:
    if not (PG_BIN / "initdb").exists():
        raise RuntimeError(f"a server restart test needs PostgreSQL 15's server binaries in {PG_BIN}")
    base = Path(tempfile.mkdtemp(prefix="etlml-pg-"))
    if os.geteuid() == 0:
        shutil.chown(base, "postgres")
    cluster = Cluster(base, localstack.free_port())
    initdb = [str(PG_BIN / "initdb"), "-D", str(base / "data"), "-A", "trust", "-U", "postgres", "--no-sync"]
    subprocess.run([*_as_owner(), *initdb], check=True, capture_output=True, timeout=120)
    cluster.start()
    try:
        yield cluster
    finally:
        subprocess.run(
            [*_as_owner(), str(PG_BIN / "pg_ctl"), "-D", str(base / "data"), "-m", "immediate", "stop"],
            capture_output=True, check=False,
        )  # fmt: skip
        shutil.rmtree(base, ignore_errors=True)
