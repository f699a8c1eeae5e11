"""The parts a scenario breaks that are not ours: a private PostgreSQL server, an SMTP sink, a
webhook receiver, a process holding SQLite's lock, a tmpfs that fills up, the injected clock."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from aiosmtpd.controller import Controller

from shared.embedded_nats import free_port


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _pg_bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    for folder in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (folder / name).exists():
            return str(folder / name)
    raise RuntimeError(f"{name} not found: install PostgreSQL's server binaries")


class PrivatePostgres:
    """A PostgreSQL server of our own on a free port in a temporary directory, so a scenario can
    stop it (never the machine's server). As root it runs as the `postgres` user."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="petitions-faults-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.log = self.root / "postgres.log"
        self._as: list[str] = ["runuser", "-u", "postgres", "--"] if _is_root() else []
        if _is_root():
            shutil.chown(self.root, user="postgres")

    def _run(self, *args: str) -> None:
        subprocess.run([*self._as, *args], check=True, capture_output=True, timeout=120)

    def init(self) -> None:
        self._run(_pg_bin("initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust")
        self.start()

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c max_connections=200"
        )
        self._run(
            _pg_bin("pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.log),
            "-w",
            "start",
        )

    def stop(self) -> None:
        self._run(_pg_bin("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def url(self, database: str) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    async def create_database(self, name: str) -> str:
        conn = await asyncpg.connect(
            host="127.0.0.1", port=self.port, user="postgres", database="postgres"
        )
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        return self.url(name)

    def destroy(self) -> None:
        with contextlib.suppress(Exception):
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


class _Recorder:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.content)
        with self.sink.lock:
            self.sink.received[str(message.get("Message-ID", ""))] += 1
        return "250 OK"


class SmtpSink:
    """An SMTP server on 127.0.0.1 that counts every message by its Message-ID (notify derives
    it from the idempotency key, so a message sent twice is counted twice). `down()` closes it."""

    def __init__(self) -> None:
        self.port = free_port()
        self.received: Counter[str] = Counter()
        self.lock = threading.Lock()
        self._controller: Controller | None = None

    def up(self) -> None:
        if self._controller is None:
            self._controller = Controller(_Recorder(self), hostname="127.0.0.1", port=self.port)
            self._controller.start()

    def down(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def doubled(self) -> int:
        with self.lock:
            return sum(n - 1 for n in self.received.values() if n > 1)

    def total(self) -> int:
        with self.lock:
            return sum(self.received.values())


class WebhookSink:
    """A webhook receiver that answers `status` (500 while "failing") and counts what it accepted
    by the payload's `id` (the idempotency key)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.status = 200
        self.accepted: Counter[str] = Counter()
        self.refused = 0
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                status = sink.status
                if status == 200:
                    sink.accepted[str(json.loads(body).get("id"))] += 1
                else:
                    sink.refused += 1
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def doubled(self) -> int:
        return sum(n - 1 for n in self.accepted.values() if n > 1)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


_LOCKER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], timeout=60, isolation_level=None)
conn.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.read()
conn.execute("ROLLBACK")
"""


class SqliteLock:
    """Another process holding an exclusive lock on a SQLite file (`BEGIN EXCLUSIVE`) until
    `release()`: every writer and, outside WAL, every reader of that file is refused."""

    def __init__(self, path: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", _LOCKER, str(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline().strip()
        if line != "locked":
            self.release()
            raise RuntimeError(f"could not lock {path}")

    def release(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class Tmpfs:
    """A small tmpfs mounted on `path` (needs root): where a disk-full scenario puts a store."""

    def __init__(self, path: Path, size: str) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
            check=True,
            capture_output=True,
        )

    @staticmethod
    def available() -> str | None:
        """None when a tmpfs can be mounted here, else why not."""
        if not _is_root():
            return "needs root to mount a tmpfs"
        if shutil.which("mount") is None:
            return "no mount command"
        return None

    def fill(self) -> Path:
        """Write a file until the filesystem has no space left; returns it."""
        filler = self.path / "filler"
        chunk = b"\0" * (1 << 16)
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            while True:
                try:
                    os.write(fd, chunk)
                except OSError:
                    break
        finally:
            with contextlib.suppress(OSError):
                os.close(fd)
        return filler

    def unmount(self) -> None:
        subprocess.run(["umount", "-l", str(self.path)], check=False, capture_output=True)


class InjectedClock:
    """The offset every service reads from `PETITIONS_CLOCK_FILE` (seconds ahead of real time)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0.0
        self.set(0.0)

    def set(self, offset: float) -> None:
        self.offset = offset
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(str(offset))
        os.replace(tmp, self.path)
        # FileOffsetClock notices a change by the file's mtime: keep each write distinct.
        time.sleep(0.01)

    def advance(self, seconds: float) -> None:
        self.set(self.offset + seconds)

    def now(self) -> float:
        return time.time() + self.offset


async def sleep_until(deadline: float) -> None:
    await asyncio.sleep(max(0.0, deadline - time.monotonic()))
