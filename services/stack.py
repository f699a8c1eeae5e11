"""The embedded stack as real processes: one nats-server and the three services.

`petitions up` runs it in the foreground; end-to-end tests run it on free ports::

    stack = Stack(var_dir=tmp, ports={"intake": p1, "routing": p2, "notify": p3},
                  nats_port=p4, env={"PETITIONS_CLOCK_FILE": str(clock)})
    stack.start()
    stack.wait_ready()
    httpx.post(stack.url("intake") + "/api/v1/petitions", json=...)
    stack.kill("routing")           # SIGKILL, as a crash would
    stack.start_service("routing")  # same environment, same database
    stack.stop()

Each service runs as `python -m services.<svc>`, exactly as in production; its output is read
line by line and re-emitted with a `[svc]` prefix, to the terminal or to a callback.
"""

from __future__ import annotations

import collections
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

import httpx

from shared.embedded_nats import EmbeddedNats
from shared.nats_auth import ADMIN, BusCredentials

SERVICES: tuple[str, ...] = ("intake", "routing", "notify")
DEFAULT_PORTS: Mapping[str, int] = {"intake": 8000, "routing": 8001, "notify": 8002}
DEFAULT_NATS_PORT = 4233
# What a stack under load or under test sets, so that its many submissions from one address,
# sent at once, are not refused as abuse (`petitions up` keeps the public rate limit and the
# form's minimum fill time on, as production does).
UNTHROTTLED_ENV: Mapping[str, str] = {
    "PETITIONS_PUBLIC_RATE_LIMIT": "off",
    "PETITIONS_INTAKE_FORM_MIN_FILL_S": "0",
}
# Lines kept per service so a failure can say what the service said last.
RECENT_LINES = 200

LineSink = Callable[[str, str], None]
"""Receives (service, line) for every line a child writes; `nats` lines are not included."""

_COLOURS = {"intake": "\033[36m", "routing": "\033[35m", "notify": "\033[33m"}
_RESET = "\033[0m"


class StackError(RuntimeError):
    """A service or nats-server did not start, or did not become ready in time."""


def terminal_sink(stream: IO[str] | None = None, *, colour: bool | None = None) -> LineSink:
    """Write `[svc] line` to one terminal, coloured when it is a terminal and NO_COLOR is unset."""
    out = stream or sys.stdout
    use_colour = colour if colour is not None else (out.isatty() and "NO_COLOR" not in os.environ)
    width = max(len(s) for s in SERVICES) + 2
    lock = threading.Lock()

    def sink(service: str, line: str) -> None:
        prefix = f"[{service}]".ljust(width)
        if use_colour:
            prefix = f"{_COLOURS.get(service, '')}{prefix}{_RESET}"
        with lock:
            out.write(f"{prefix} {line}\n")
            out.flush()

    return sink


def file_sink(path: Path) -> LineSink:
    """Append `[svc] line` to a file (for tests: one log to read when something fails)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = threading.Lock()

    def sink(service: str, line: str) -> None:
        with lock, path.open("a", encoding="utf-8") as f:
            f.write(f"[{service}] {line}\n")

    return sink


class _Child:
    """One service process and the thread that forwards its output."""

    def __init__(self, service: str, process: subprocess.Popen[bytes], sink: LineSink) -> None:
        self.service = service
        self.process = process
        self.recent: collections.deque[str] = collections.deque(maxlen=RECENT_LINES)
        self.reader = threading.Thread(
            target=self._forward, args=(sink,), name=f"stack-{service}", daemon=True
        )
        self.reader.start()

    def _forward(self, sink: LineSink) -> None:
        assert self.process.stdout is not None
        for raw in iter(self.process.stdout.readline, b""):
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            self.recent.append(line)
            # A broken sink must not stop the pipe, or the service would block on a full one.
            with contextlib.suppress(Exception):
                sink(self.service, line)
        self.process.stdout.close()


class Stack:
    """nats-server (unless `nats_url` points at one) and the three services as child processes.

    The embedded nats-server runs with authentication: each service its own nkey user with the
    permissions of `shared.nats_auth`, seeds created under `<var>/nats-auth/` on first start and
    reused after (0600). `nats_connect_options()` reaches it as the operator (`admin`).

    Every port is configurable so tests run beside a developer's `petitions up`. Child
    environments start from this process's environment minus every `PETITIONS_*` variable
    (so a stray variable cannot change a test), then the stack's own, then `env`, which wins
    except for the ports and the NATS URL the stack is responsible for (and each service's
    own NATS seed, when the stack knows the credentials).
    """

    def __init__(
        self,
        *,
        var_dir: Path,
        ports: Mapping[str, int] | None = None,
        nats_port: int = DEFAULT_NATS_PORT,
        nats_url: str | None = None,
        env: Mapping[str, str] | None = None,
        services: tuple[str, ...] = SERVICES,
        host: str = "127.0.0.1",
        output: LineSink | None = None,
        stop_grace: float = 10.0,
        nats_credentials: BusCredentials | None = None,
    ) -> None:
        unknown = set(services) - set(SERVICES)
        if unknown:
            raise ValueError(f"unknown services: {sorted(unknown)}")
        self.var_dir = Path(var_dir).resolve()
        self.ports = {svc: (ports or {}).get(svc, DEFAULT_PORTS[svc]) for svc in services}
        taken = [*self.ports.values(), *([nats_port] if nats_url is None else [])]
        if len(set(taken)) != len(taken):
            raise ValueError(
                f"two parts of the stack were given the same port: {self.ports}, nats {nats_port}"
            )
        self.services = services
        self.host = host
        self.extra_env = dict(env or {})
        self.output = output or terminal_sink()
        self.stop_grace = stop_grace
        self.nats: EmbeddedNats | None = None
        # With an external server: the services' seeds, if it runs with our users (see
        # `petitions nats credentials`).
        self.credentials: BusCredentials | None = nats_credentials
        if nats_url is None:
            self.credentials = BusCredentials.ensure(self.var_dir / "nats-auth")
            self.nats = EmbeddedNats(
                store_dir=self.var_dir / "nats",
                port=nats_port,
                host=host,
                server_name="petitions-embedded",
                log_file=self.var_dir / "nats.log",
                credentials=self.credentials,
            )
        self._external_nats_url = nats_url
        self._children: dict[str, _Child] = {}

    @property
    def nats_url(self) -> str:
        if self.nats is not None:
            return self.nats.url
        assert self._external_nats_url is not None
        return self._external_nats_url

    def nats_connect_options(self, user: str = ADMIN) -> dict[str, Any]:
        """nats-py `connect` keyword arguments for the embedded server as `user`."""
        return {} if self.credentials is None else self.credentials.connect_options(user)

    def url(self, service: str) -> str:
        """Base URL of a service, e.g. `http://127.0.0.1:8000`."""
        return f"http://{self.host}:{self.ports[service]}"

    def database_url(self, service: str) -> str:
        return self.service_env(service)[f"PETITIONS_{service.upper()}_DATABASE_URL"]

    def service_env(self, service: str) -> dict[str, str]:
        """The environment `service` is started with."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("PETITIONS_")}
        env["PYTHONUNBUFFERED"] = "1"
        env["PETITIONS_VAR_DIR"] = str(self.var_dir)
        env["PETITIONS_HOST"] = self.host
        # The embedded stack migrates at start; a fresh var/ works at once.
        env["PETITIONS_MIGRATE_ON_START"] = "true"
        for svc in SERVICES:
            env[f"PETITIONS_{svc.upper()}_DATABASE_URL"] = (
                f"sqlite+aiosqlite:///{self.var_dir / f'{svc}.db'}"
            )
            port = self.ports.get(svc, DEFAULT_PORTS[svc])
            env[f"PETITIONS_{svc.upper()}_URL"] = f"http://{self.host}:{port}"
        env["PETITIONS_INTAKE_PUBLIC_URL"] = env["PETITIONS_INTAKE_URL"]
        env.update(self.extra_env)
        if self.credentials is not None:
            env["PETITIONS_NATS_NKEY_SEED"] = str(self.credentials.seed_file(service))
        for svc, port in self.ports.items():
            env[f"PETITIONS_{svc.upper()}_PORT"] = str(port)
        env["PETITIONS_NATS_URL"] = self.nats_url
        # The repository root, so `python -m services.<svc>` works from a checkout.
        root = str(Path(__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        return env

    def start(self) -> None:
        """Start nats-server (embedded) and every service; returns without waiting for readiness."""
        self.var_dir.mkdir(parents=True, exist_ok=True)
        if self.nats is not None:
            self.nats.start()
        try:
            for svc in self.services:
                self.start_service(svc)
        except BaseException:
            self.stop()
            raise

    def start_service(self, service: str) -> None:
        """Start (or restart after `kill`) one service with the same environment."""
        current = self._children.get(service)
        if current is not None and current.process.poll() is None:
            raise StackError(f"{service} is already running (pid {current.process.pid})")
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", f"services.{service}"],
            env=self.service_env(service),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            # Own session: the terminal's Ctrl-C reaches `petitions up` only, which then stops
            # the services in order instead of all at once.
            start_new_session=True,
        )
        self._children[service] = _Child(service, process, self.output)

    def wait_ready(self, timeout: float = 60.0, *, services: tuple[str, ...] | None = None) -> None:
        """Poll each service's `/readyz` until it answers 200; raise `StackError` on timeout or
        when a service exits first (with its last lines of output)."""
        pending = list(services or self.services)
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=2.0) as client:
            while pending:
                for svc in list(pending):
                    code = self.returncode(svc)
                    if code is not None:
                        raise StackError(
                            f"{svc} exited with code {code} before it was ready:\n"
                            + self.recent_output(svc, 30)
                        )
                    try:
                        if client.get(self.url(svc) + "/readyz").status_code == 200:
                            pending.remove(svc)
                    except httpx.HTTPError:
                        pass
                if not pending:
                    return
                if time.monotonic() > deadline:
                    details = "\n".join(f"--- {s}\n{self.recent_output(s, 20)}" for s in pending)
                    raise StackError(f"not ready within {timeout}s: {pending}\n{details}")
                time.sleep(0.2)

    def returncode(self, service: str) -> int | None:
        """None while the service runs (or was never started), else its exit code."""
        child = self._children.get(service)
        return None if child is None else child.process.poll()

    def exited(self) -> dict[str, int]:
        """Services that have stopped, with their exit codes."""
        codes = {svc: self.returncode(svc) for svc in self._children}
        return {svc: code for svc, code in codes.items() if code is not None}

    def pid(self, service: str) -> int:
        return self._children[service].process.pid

    def recent_output(self, service: str, lines: int = RECENT_LINES) -> str:
        child = self._children.get(service)
        if child is None:
            return ""
        return "\n".join(list(child.recent)[-lines:])

    def kill(self, service: str) -> None:
        """SIGKILL one service, as a crash would; its database and consumers stay as they are."""
        child = self._children[service]
        if child.process.poll() is None:
            child.process.kill()
        child.process.wait()
        child.reader.join(timeout=5)

    def stop(self) -> None:
        """SIGTERM every service, SIGKILL what is still running after the grace period, then
        stop nats-server (last, so the services can drain and unsubscribe)."""
        running = [c for c in self._children.values() if c.process.poll() is None]
        for child in running:
            child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.stop_grace
        for child in running:
            try:
                child.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.process.kill()
                child.process.wait()
        for child in self._children.values():
            child.reader.join(timeout=5)
        if self.nats is not None:
            self.nats.stop()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
