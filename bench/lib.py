"""Shared plumbing for the benchmarks: environment, database, processes, output.

Nothing here imports Django at module level, so ``bench/__main__.py`` can set
the environment before Django reads its settings.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"

DB_NAME = os.environ.get("BENCH_DB_NAME", "homeexercise_bench")
DB_SERVER = os.environ.get("BENCH_DB_SERVER", "postgres://postgres@127.0.0.1:5432")


def bench_seconds() -> int:
    """How long each measurement runs (BENCH_SECONDS, default 20)."""
    return max(1, int(os.environ.get("BENCH_SECONDS", "20")))


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    return int(value) if value.strip() else default


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def database_url() -> str:
    return f"{DB_SERVER}/{DB_NAME}"


# --- the bench database ---------------------------------------------------------------


def recreate_database() -> None:
    """Drop and create the bench database (never any other)."""
    import psycopg
    from django.db import connections

    connections.close_all()
    with psycopg.connect(f"{DB_SERVER}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DB_NAME}"')


def drop_database() -> None:
    import psycopg
    from django.db import connections

    connections.close_all()
    with (
        contextlib.suppress(psycopg.Error),
        psycopg.connect(f"{DB_SERVER}/postgres", autocommit=True) as conn,
    ):
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')


def fresh_schema() -> None:
    """An empty bench database with every migration applied and the exercise library."""
    from django.core.management import call_command

    from accounts.roles import roles_sync
    from programs.services import library_sync

    recreate_database()
    call_command("migrate", interactive=False, verbosity=0)
    library_sync()
    roles_sync()


def analyze() -> None:
    """Fresh planner statistics after bulk loads, as autovacuum would give production."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")


# --- processes ------------------------------------------------------------------------


class Process:
    """A child in its own process group, so stopping it takes its children too."""

    def __init__(self, name: str, command: list[str], *, env: dict[str, str], logfile: Path):
        self.name = name
        self.command = command
        self.env = env
        self.logfile = logfile
        self.popen: subprocess.Popen | None = None

    def start(self) -> Process:
        self.logfile.parent.mkdir(parents=True, exist_ok=True)
        with self.logfile.open("ab") as log:
            self.popen = subprocess.Popen(  # noqa: S603 (our own command line)
                self.command,
                cwd=REPO,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.logfile.read_text(errors="replace")[-chars:]
        except FileNotFoundError:
            return ""

    def stop(self, timeout: float = 15) -> None:
        if self.popen is None:
            return
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(timeout=10)
        # Whatever the group left behind (pool children) goes too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGKILL)


def group_cpu_seconds(pgid: int) -> float:
    """CPU time (user + system) used so far by the live processes of a process group."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # After the command: state, ppid, pgrp, ... utime (12th), stime (13th).
        if int(fields[2]) == pgid:
            total += int(fields[11]) + int(fields[12])
    return total / ticks


def process_cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Stopwatch:
    """Wall time, and the CPU time of this process and of its PostgreSQL backend.

    CPU time is what the work cost, whatever else the machine was doing; wall
    time is what it took here and now.
    """

    def __enter__(self) -> Stopwatch:
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            self.backend = cursor.fetchone()[0]
        self.db_start = process_cpu_seconds(self.backend)
        self.cpu_start = time.process_time()
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.wall = time.perf_counter() - self.start
        self.cpu = time.process_time() - self.cpu_start
        self.db_cpu = process_cpu_seconds(self.backend) - self.db_start

    @property
    def total_cpu(self) -> float:
        return self.cpu + self.db_cpu

    def as_dict(self) -> dict:
        return {"wall": self.wall, "python_cpu": self.cpu, "postgresql_cpu": self.db_cpu}


def server_cpu(pgid: int) -> tuple[float, dict[int, float]]:
    """CPU so far of a process group (the app server) and of the database's other backends."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        backends = [row[0] for row in cursor.fetchall()]
    return group_cpu_seconds(pgid), {pid: process_cpu_seconds(pid) for pid in backends}


def server_cpu_since(pgid: int, before: tuple[float, dict[int, float]]) -> tuple[float, float]:
    """(app server CPU, PostgreSQL backends' CPU) used since ``before``."""
    app, backends = server_cpu(pgid)
    db = sum(cpu - before[1].get(pid, 0.0) for pid, cpu in backends.items())
    return app - before[0], db


def wal_position() -> int:
    """How far PostgreSQL's write-ahead log has been written, in bytes (the whole server's)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '0/0')")
        return int(cursor.fetchone()[0])


def wait_until(condition, *, timeout: float, what: str, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise RuntimeError(f"Timed out after {timeout:.0f} s waiting for {what}.")
        time.sleep(interval)


def port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


# --- progress bar -----------------------------------------------------------------------


class Progress:
    """A one-line progress bar on stderr: ``label [=====     ]  45%  45,000/100,000  3.1 s``."""

    width = 30

    def __init__(self, label: str, total: int, stream: IO[str] | None = None):
        self.label = label
        self.total = max(total, 1)
        self.done = 0
        self.stream = stream or sys.stderr
        self.started = time.perf_counter()
        self.shown = 0.0
        self._draw(force=True)

    def update(self, count: int) -> None:
        self.done = min(self.done + count, self.total)
        self._draw()

    def close(self) -> None:
        self._draw(force=True)
        if self.stream.isatty():
            self.stream.write("\n")
        self.stream.flush()

    def _draw(self, force: bool = False) -> None:
        # Redrawn in place on a terminal; in a log, a new line every 5 seconds.
        tty = self.stream.isatty()
        now = time.perf_counter()
        if not force and now - self.shown < (0.1 if tty else 5):
            return
        self.shown = now
        filled = int(self.width * self.done / self.total)
        bar = "=" * filled + " " * (self.width - filled)
        self.stream.write(
            f"{'\r' if tty else ''}  {self.label:<18} [{bar}] "
            f"{100 * self.done / self.total:3.0f}%  "
            f"{self.done:,}/{self.total:,}  {now - self.started:5.1f} s{'' if tty else '\n'}"
        )
        self.stream.flush()


@contextlib.contextmanager
def step(label: str):
    """Say what is happening and how long it took (stderr)."""
    sys.stderr.write(f"  {label} ...")
    sys.stderr.flush()
    started = time.perf_counter()
    yield
    sys.stderr.write(f" {time.perf_counter() - started:.1f} s\n")
    sys.stderr.flush()


# --- output ---------------------------------------------------------------------------


def ratio(value: float, baseline: float) -> str:
    """Written like ``0.85x``."""
    if not baseline:
        return "n/a"
    return f"{value / baseline:.2f}x"


@dataclass
class Report:
    """What a run measured: printed line by line and saved as JSON."""

    lines: list[str] = field(default_factory=list)
    data: dict = field(default_factory=dict)

    def line(self, text: str) -> None:
        self.lines.append(text)
        print(text, flush=True)


def _first_line(command: list[str]) -> str:
    binary = shutil.which(command[0])
    if binary is None:
        return "not installed"
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=10)  # noqa: S603
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    output = (done.stdout or done.stderr).strip()
    return output.splitlines()[0] if output else ""


def machine() -> dict:
    """The machine the figures were taken on."""
    cpu = "unknown"
    with contextlib.suppress(OSError):
        match = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.M)
        if match:
            cpu = match.group(1).strip()
    memory = "unknown"
    with contextlib.suppress(OSError):
        match = re.search(r"^MemTotal:\s*(\d+) kB", Path("/proc/meminfo").read_text(), re.M)
        if match:
            memory = f"{int(match.group(1)) / 1024 / 1024:.1f} GiB"
    import django
    import psycopg

    server = "unknown"
    with contextlib.suppress(psycopg.Error), psycopg.connect(f"{DB_SERVER}/postgres") as conn:
        server = "PostgreSQL " + conn.execute("SHOW server_version").fetchone()[0]
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu,
        "memory": memory,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "django": django.get_version(),
        "postgresql": server,
        "redis": _first_line(["redis-server", "--version"]),
        "wrk": _first_line(["wrk", "--version"]),
    }


def save(report: Report) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    payload = {**report.data, "lines": report.lines}
    text = json.dumps(payload, indent=2, sort_keys=False, default=str) + "\n"
    path = RESULTS / f"{stamp}.json"
    path.write_text(text)
    (RESULTS / "latest.json").write_text(text)
    return path
