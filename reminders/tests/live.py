"""Real processes for the reminder integration tests: Redis, an SMTP sink, Celery.

Everything binds to 127.0.0.1 on a free port, every wait has a timeout, and
every process is stopped by the fixture that started it (see conftest.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import redis
from aiosmtpd.controller import Controller
from django.conf import settings

REPO = Path(settings.BASE_DIR)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(
    condition: Callable[[], object], *, timeout: float, interval: float = 0.1, what: str = ""
):
    """Poll until ``condition()`` is truthy; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"Timed out after {timeout:.0f} s waiting for {what}.")
        time.sleep(interval)


# --- Redis ----------------------------------------------------------------------------


class RedisServer:
    """A throwaway redis-server: no RDB, no AOF, so a restart loses everything."""

    def __init__(self, workdir: Path):
        self.port = free_port()
        self.workdir = workdir
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise AssertionError("redis-server is not installed (apt-get install redis-server).")
        self.workdir.mkdir(parents=True, exist_ok=True)
        options = {
            "--bind": "127.0.0.1",
            "--port": str(self.port),
            "--save": "",  # no RDB snapshots
            "--appendonly": "no",  # no AOF: a restart starts empty
            "--maxmemory-policy": "noeviction",
            "--dir": str(self.workdir),
        }
        with (self.workdir / "redis.log").open("ab") as log:
            self.process = subprocess.Popen(
                [binary, *(part for pair in options.items() for part in pair)],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        client = redis.Redis.from_url(self.url, socket_timeout=1)

        def answers() -> bool:
            with contextlib.suppress(redis.RedisError):
                return bool(client.ping())
            return False

        wait_for(answers, timeout=15, what=f"redis-server on port {self.port}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()  # like a crash: nothing is saved
            self.process.wait(timeout=10)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_timeout=5)


# --- SMTP sink --------------------------------------------------------------------------


@dataclass
class Received:
    rcpt: list[str]
    message: EmailMessage

    @property
    def message_id(self) -> str:
        return self.message["Message-ID"]


class SinkHandler:
    """Records what the server accepted (said 250 to). Can fail or hold DATA."""

    def __init__(self):
        self.received: list[Received] = []
        self.lock = threading.Lock()
        self.responses: list[str] = []  # answers to the next DATA commands, e.g. "451 ..."
        self.refuse: dict[str, str] = {}  # recipient -> answer to its RCPT, e.g. "550 ..."
        self.hold = threading.Event()  # while set, DATA waits before answering
        self.holding = threading.Event()  # set once a DATA is being held
        self.held = 0  # DATA commands that waited on `hold`
        self.dropped = 0  # of those, how many lost their client while waiting
        self.data_started = 0
        self.sessions = 0  # EHLO/HELO greetings: one per client connection

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        with self.lock:
            self.sessions += 1
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        with self.lock:
            answer = self.refuse.get(address)
        if answer:
            return answer
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.data_started += 1
            response = self.responses.pop(0) if self.responses else None
        if response:
            return response
        if self.hold.is_set():
            with self.lock:
                self.held += 1
        try:
            while self.hold.is_set():
                self.holding.set()
                # Cancelled here if the client's connection drops (worker killed):
                # then nothing is recorded, as a real server would not deliver it.
                await asyncio.sleep(0.05)
        except asyncio.CancelledError:
            with self.lock:
                self.dropped += 1
            raise
        raw = envelope.original_content or envelope.content
        message = message_from_bytes(raw, policy=policy.default)
        with self.lock:
            self.received.append(Received(rcpt=list(envelope.rcpt_tos), message=message))
        return "250 2.0.0 Message accepted"


class SmtpSink:
    def __init__(self):
        self.port = free_port()
        self.handler = SinkHandler()
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)

    def start(self) -> None:
        self.controller.start()

    def stop(self) -> None:
        self.handler.hold.clear()
        self.controller.stop()

    def reset(self) -> None:
        with self.handler.lock:
            self.handler.received.clear()
            self.handler.responses.clear()
            self.handler.refuse.clear()
            self.handler.data_started = 0
            self.handler.sessions = 0
            self.handler.held = 0
            self.handler.dropped = 0
        self.handler.hold.clear()
        self.handler.holding.clear()

    @property
    def received(self) -> list[Received]:
        with self.handler.lock:
            return list(self.handler.received)

    def message_ids(self) -> list[str]:
        return [item.message_id for item in self.received]


# --- Celery processes ---------------------------------------------------------------------


class CeleryProcess:
    """`celery -A config worker|beat` in its own process group, logging to a file."""

    def __init__(self, kind: str, env: dict[str, str], logdir: Path, *extra: str):
        self.kind = kind
        self.name = f"{kind}-{uuid.uuid4().hex[:8]}"
        self.env = env
        self.extra = extra
        self.logfile = logdir / f"{self.name}.log"
        self.process: subprocess.Popen | None = None

    def command(self) -> list[str]:
        base = [sys.executable, "-m", "celery", "-A", "config", self.kind, "--loglevel", "INFO"]
        if self.kind == "worker":
            return [
                *base,
                "--hostname", f"{self.name}@%h",
                "--pool", "prefork",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                *self.extra,
            ]  # fmt: skip
        return [*base, *self.extra]

    def start(self, *, ready_timeout: float = 60) -> CeleryProcess:
        with self.logfile.open("ab") as log:
            self.process = subprocess.Popen(
                self.command(),
                cwd=REPO,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: kill -9 takes the pool too
            )
        marker = "ready." if self.kind == "worker" else "beat: Starting..."
        wait_for(
            lambda: self._exited_early() or marker in self.log(),
            timeout=ready_timeout,
            what=f"{self.name} to start (log: {self.logfile})",
        )
        if self.process.poll() is not None:
            raise AssertionError(f"{self.name} exited at start:\n{self.log()[-3000:]}")
        return self

    def _exited_early(self) -> bool:
        return self.process is not None and self.process.poll() is not None

    def log(self) -> str:
        try:
            return self.logfile.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def kill9(self) -> None:
        """SIGKILL the whole process group: main process and pool children at once."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self, timeout: float = 20) -> None:
        if self.process is None or self.process.poll() is not None:
            self._reap_group()
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill9()
        self._reap_group()

    def _reap_group(self) -> None:
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)
