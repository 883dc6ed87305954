"""A Docker engine of the Compose layer's own, the images it builds without Docker Hub, and a deployment
folder driven with the commands the README gives.

The daemon (Debian's ``docker.io``) runs with its socket and state in a folder of the test's and is
stopped by it. Images are kept between runs in ``ETLML_DOCKER_CACHE`` (default
``/var/cache/etlml-compose``): the daemon's image store and the Debian root filesystem, so a rebuild
reuses every unchanged layer. Nothing else outlives the test: containers, networks and volumes are
removed with ``docker-compose down -v``, then the daemon is stopped.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.conftest import ROOT

CACHE = Path(os.environ.get("ETLML_DOCKER_CACHE", "/var/cache/etlml-compose"))
SUITE, MIRROR = "bookworm", "http://deb.debian.org/debian"
# The base image's usual name: the project's Dockerfile and the stand-ins start FROM it.
BASE_IMAGE = "debian:bookworm-slim"
PROJECT_IMAGE = "etlml-airflow:local"
# Docker Hub image of the compose files -> the stand-in built here from Debian's packages.
STAND_INS = {
    "ETLML_POSTGRES_IMAGE": ("postgres:16", "etlml-test/postgres:local", "postgres"),
    "ETLML_REDIS_IMAGE": ("redis:7.2-bookworm", "etlml-test/redis:local", "redis"),
    "ETLML_S3_IMAGE": ("motoserver/moto:5.2.5", "etlml-test/s3:local", "s3"),
}
# What the layer needs on the machine, and the Debian package that has it.
TOOLS = {"dockerd": "docker.io", "docker": "docker.io", "docker-compose": "docker-compose",
         "debootstrap": "debootstrap", "chromium": "chromium"}  # fmt: skip
# Trust anchors of the host that the base image takes too (a TLS-inspecting proxy's CA, say).
HOST_CAS = Path("/usr/local/share/ca-certificates")


def missing_tools() -> list[str]:
    return [f"{tool} (Debian package {package})" for tool, package in TOOLS.items() if not shutil.which(tool)]


class Engine:
    """A running dockerd whose socket, exec root and pid file are in ``run``; images in ``CACHE``."""

    def __init__(self, run: Path) -> None:
        self.run = run
        self.socket = run / "docker.sock"
        self.env = {**os.environ, "DOCKER_HOST": f"unix://{self.socket}"}
        self.proc: subprocess.Popen[bytes] | None = None
        self.built: dict[str, float] = {}

    def start(self, timeout: float = 60) -> None:
        CACHE.mkdir(parents=True, exist_ok=True)
        args = [
            "dockerd", "--data-root", str(CACHE / "docker"), "--exec-root", str(self.run / "exec"),
            "--pidfile", str(self.run / "docker.pid"), "--host", f"unix://{self.socket}",
            "--storage-driver", os.environ.get("ETLML_DOCKER_STORAGE_DRIVER", "overlay2"),
            "--iptables=false", "--bridge=none",
        ]  # fmt: skip
        log = (self.run / "dockerd.log").open("wb")
        self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"dockerd exited: {(self.run / 'dockerd.log').read_text()[-2000:]}")
            if self.docker("info", check=False).returncode == 0:
                self._clear()
                return
            time.sleep(0.5)
        raise RuntimeError(f"dockerd did not answer in {timeout:.0f} s")

    def _clear(self) -> None:
        """Remove what a run killed outright left in the store (the daemon restarts containers whose
        policy is `always`): every container, network and volume. The store is this layer's alone."""
        containers = self.docker("ps", "-aq").stdout.split()
        if containers:
            self.docker("rm", "--force", "--volumes", *containers)
        for kind in ("network", "volume"):
            self.docker(kind, "prune", "--force")

    def stop(self) -> None:
        """Stop the daemon (and the containerd it started) and wait until both are gone."""
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)

    def leftovers(self) -> list[str]:
        """Processes of this daemon still running (dockerd, containerd, shims, container processes)."""
        found = subprocess.run(["ps", "-eo", "pid=,args="], capture_output=True, text=True, check=True)
        return [line.strip() for line in found.stdout.splitlines() if str(self.run) in line]

    def docker(self, *args: str, check: bool = True, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["docker", *args], env=self.env, capture_output=True, text=True,
                              check=check, **kwargs)  # fmt: skip

    # ---- images, none from Docker Hub

    def base_image(self) -> None:
        """``debian:bookworm-slim``: debootstrap's minimal bookworm with the host's extra trust
        anchors, imported under the name the Dockerfiles use. Rebuilt when those anchors change."""
        cas = sorted(HOST_CAS.glob("*.crt")) if HOST_CAS.is_dir() else []
        key = hashlib.sha256(b"".join(p.read_bytes() for p in cas) + SUITE.encode()).hexdigest()[:16]
        label = f"etlml.base={key}"
        found = self.docker("image", "inspect", "-f", "{{json .Config.Labels}}", BASE_IMAGE, check=False)
        if found.returncode == 0 and json.loads(found.stdout or "null") == {"etlml.base": key}:
            return
        with tempfile.TemporaryDirectory(dir=CACHE, prefix="rootfs-") as folder:
            rootfs = Path(folder) / "rootfs"
            subprocess.run(
                ["debootstrap", "--variant=minbase", "--include=ca-certificates", SUITE, str(rootfs), MIRROR],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            for ca in cas:
                shutil.copy(ca, rootfs / "usr/local/share/ca-certificates" / ca.name)
            subprocess.run(["chroot", str(rootfs), "update-ca-certificates"], capture_output=True, check=True)
            shutil.rmtree(rootfs / "var/cache/apt/archives", ignore_errors=True)
            archive = Path(folder) / "rootfs.tar"
            with tarfile.open(archive, "w") as tar:
                tar.add(rootfs, arcname=".")
            self.docker("import", "--change", f"LABEL {label}", "--change", 'CMD ["bash"]',
                        str(archive), BASE_IMAGE)  # fmt: skip

    def build(self, tag: str, dockerfile: str = "Dockerfile") -> float:
        """``docker build`` from the checkout (host network: this daemon has no default bridge)."""
        began = time.monotonic()
        built = self.docker(
            "build", "--network", "host", "-f", dockerfile, "-t", tag, ".", cwd=ROOT, check=False
        )
        if built.returncode != 0:
            raise RuntimeError(f"docker build {tag} failed:\n{built.stdout[-3000:]}\n{built.stderr[-3000:]}")
        return time.monotonic() - began

    def all_images(self) -> dict[str, float]:
        """The base image, the project's image and each stand-in; seconds each build took."""
        began = time.monotonic()
        self.base_image()
        took = {BASE_IMAGE: time.monotonic() - began, PROJECT_IMAGE: self.build(PROJECT_IMAGE)}
        for _, image, folder in STAND_INS.values():
            took[image] = self.build(image, f"tests/compose/images/{folder}/Dockerfile")
        self.docker("image", "prune", "--force")  # the layers an earlier build made and this one replaced
        return took


@dataclass
class Deployment:
    """A folder holding the checkout's tracked files, where ``docker-compose`` runs as a user runs it."""

    engine: Engine
    folder: Path
    project: str
    compose_files: list[str]
    extra_env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def create(cls, engine: Engine, folder: Path, project: str, compose_files: list[str]) -> Deployment:
        tracked = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT,
                                 capture_output=True, text=True, check=True).stdout.split("\n")  # fmt: skip
        for name in filter(None, tracked):
            source = ROOT / name
            if source.is_file() and not name.startswith(".venv/"):
                (folder / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, folder / name)
        return cls(engine, folder, project, compose_files)

    @property
    def env(self) -> dict[str, str]:
        """A user's shell: not the test process's environment, whose ETLML_* and AIRFLOW_* settings would
        win over ``.env`` in the compose files' interpolation."""
        stand_ins = {variable: image for variable, (_, image, _) in STAND_INS.items()}
        shell = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")}
        return {
            **shell, "DOCKER_HOST": self.engine.env["DOCKER_HOST"], **stand_ins, **self.extra_env,
            "COMPOSE_PROJECT_NAME": self.project, "COMPOSE_FILE": os.pathsep.join(self.compose_files),
        }  # fmt: skip

    def compose(
        self, *args: str, check: bool = True, timeout: float = 900
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(["docker-compose", *args], cwd=self.folder, env=self.env, capture_output=True,
                              text=True, check=False, timeout=timeout)  # fmt: skip
        if check and done.returncode != 0:
            raise RuntimeError(
                f"docker-compose {' '.join(args)}: exit {done.returncode}\n{done.stderr[-4000:]}"
            )
        return done

    def set_env(self, **values: str) -> None:
        """Set (or add) lines of the deployment's ``.env``."""
        path = self.folder / ".env"
        lines = [line for line in path.read_text().splitlines() if line.partition("=")[0] not in values]
        path.write_text("\n".join([*lines, *(f"{k}={v}" for k, v in values.items())]) + "\n")

    def env_file(self) -> dict[str, str]:
        pairs = (line.partition("=") for line in (self.folder / ".env").read_text().splitlines())
        return {k.strip(): v.strip() for k, sep, v in pairs if sep and not k.lstrip().startswith("#")}

    def containers(self, *, all_states: bool = True) -> list[dict[str, str]]:
        args = [
            "ps",
            "--format",
            "{{json .}}",
            "--filter",
            f"label=com.docker.compose.project={self.project}",
        ]
        listed = self.engine.docker(*args, *(["-a"] if all_states else []))
        return [json.loads(line) for line in listed.stdout.splitlines() if line.strip()]

    def unhealthy(self) -> list[str]:
        """Running services not (yet) healthy, and one-shot services that did not exit 0."""
        bad = []
        for c in self.containers():
            status, service = c["Status"], c["Names"]
            one_shot = c["Names"].split("_")[1] in ("airflow-init", "s3-bucket") if "_" in service else False
            done = status.startswith("Exited (0)") if one_shot else "(healthy)" in status
            if not done:
                bad.append(f"{service}: {status}")
        return bad

    def wait_healthy(self, timeout: float = 300) -> float:
        began = time.monotonic()
        while time.monotonic() - began < timeout:
            if not self.unhealthy():
                return time.monotonic() - began
            time.sleep(3)
        raise AssertionError(f"not healthy after {timeout:.0f} s: {self.unhealthy()}")

    def sql(self, query: str) -> str:
        """One value from the warehouse, asked inside its container as the owner."""
        values = self.env_file()
        done = self.compose("exec", "-T", "warehouse", "psql", "-U", values["WAREHOUSE_USER"], "-d",
                            values["WAREHOUSE_DB"], "-Atc", query)  # fmt: skip
        return done.stdout.strip()

    def down(self) -> None:
        if (self.folder / ".env").exists():  # without it compose refuses every command; nothing was started
            self.compose("down", "-v", "--remove-orphans", timeout=300)

    def leftovers(self) -> dict[str, list[str]]:
        label = f"label=com.docker.compose.project={self.project}"
        found = {
            "containers": self.engine.docker("ps", "-aq", "--filter", label).stdout.split(),
            "networks": self.engine.docker("network", "ls", "-q", "--filter", label).stdout.split(),
            "volumes": self.engine.docker("volume", "ls", "-q", "--filter", label).stdout.split(),
        }
        return {kind: ids for kind, ids in found.items() if ids}
