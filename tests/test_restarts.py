"""PostgreSQL and Redis restart under the running app: requests recover, nothing is lost.

The test starts its own PostgreSQL server (initdb into a temporary directory,
a free port on 127.0.0.1) and its own Redis, so restarting them disturbs no
other test or developer on the machine. gunicorn serves the app on them with
the production settings (``loadtest.settings``: persistent connections, health
checks on). Simulated patients keep opening today and logging sessions
(retrying a failed log with the same idempotency key, as a phone would) while

1. PostgreSQL restarts (``pg_ctl restart -m fast``): every connection the
   app holds dies. Once it is back, no request fails: the health check finds
   the dead connection and opens a new one (``CONN_HEALTH_CHECKS``);
2. Redis restarts (no persistence): the pages never fail; /healthz is 503
   while it is down and 200 again after.

Afterwards every session a patient was told is logged is in the database
exactly once, and every planned reminder row is still there, unchanged
(the plan lives in PostgreSQL, not in the broker).

``test_without_health_checks_the_first_request_after_a_restart_fails`` is the
control: the same restart with ``CONN_HEALTH_CHECKS`` off gives a 500.

Marked ``integration`` (it starts servers) and ``postgres`` (it runs with
the PostgreSQL pass of CI).
"""

from __future__ import annotations

import glob
import http.client
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path

import psycopg
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.postgres]

ROOT = Path(__file__).resolve().parents[1]
PATIENTS = 4


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception:  # not up yet
            pass
        time.sleep(0.1)
    raise AssertionError(f"{what} did not come up within {timeout}s")


# --- a private PostgreSQL server --------------------------------------------------------


def _pg_bin(name: str) -> str:
    found = sorted(
        glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(p.split("/")[4])
    )
    path = found[-1] if found else shutil.which(name)
    if not path:
        pytest.fail(f"PostgreSQL's {name} is not installed (apt-get install postgresql).")
    return path


class PostgresServer:
    """initdb + pg_ctl in a temporary directory. As root, runs as the postgres user."""

    def __init__(self, base: Path):
        self.dir = base / "pgdata"
        self.port = free_port()
        self.log = base / "postgres.log"
        self.as_root = os.geteuid() == 0

    def _run(self, *args: str) -> None:
        command = list(args)
        if self.as_root:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    def init(self) -> None:
        self.dir.mkdir()
        self.log.touch()
        if self.as_root:
            shutil.chown(self.dir, "postgres")
            shutil.chown(self.log, "postgres")
            os.chmod(self.dir.parent, 0o755)
        self._run(
            _pg_bin("initdb"), "-D", str(self.dir), "-U", "postgres", "--auth=trust", "-E", "UTF8"
        )

    def _ctl(self, action: str, *extra: str) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            _pg_bin("pg_ctl"),
            "-D",
            str(self.dir),
            "-l",
            str(self.log),
            "-o",
            options,
            "-w",
            *extra,
            action,
        )

    def start(self) -> None:
        self._ctl("start")

    def restart(self) -> None:
        self._ctl("restart", "-m", "fast")

    def stop(self) -> None:
        self._ctl("stop", "-m", "immediate")

    def url(self, db: str = "postgres") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{db}"

    def query(self, sql: str, db: str = "app") -> list[tuple]:
        with psycopg.connect(self.url(db), autocommit=True) as conn:
            return conn.execute(sql).fetchall()


class RedisServer:
    def __init__(self, base: Path):
        self.port = free_port()
        self.base = base
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        redis = shutil.which("redis-server")
        if not redis:
            pytest.fail("redis-server is not installed (apt-get install redis-server).")
        self.process = subprocess.Popen(
            [
                redis,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.base),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(self.ping, 10, "redis-server")

    def ping(self) -> bool:
        with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()


# --- the app on them -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stack():
    """PostgreSQL and Redis of our own, a migrated database with patients and reminders."""
    base = Path(tempfile.mkdtemp(prefix="restarts-"))
    postgres, redis = PostgresServer(base), RedisServer(base)
    postgres.init()
    postgres.start()
    redis.start()
    with psycopg.connect(postgres.url(), autocommit=True) as conn:
        conn.execute("CREATE DATABASE app")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "loadtest.settings",
        "DATABASE_URL": postgres.url("app"),
        "REDIS_URL": f"redis://127.0.0.1:{redis.port}/0",
        "SECRET_KEY": secrets.token_urlsafe(40),
        "ALLOWED_HOSTS": "127.0.0.1",
        "SITE_URL": "http://127.0.0.1",
        "STATIC_ROOT": str(base / "static"),
        "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
        "VAR_DIR": str(base / "var"),
        "LOG_LEVEL": "WARNING",
        "CONN_MAX_AGE": "600",
    }
    env.pop("DEBUG", None)
    python = sys.executable
    for command in (
        ["manage.py", "migrate", "--noinput", "-v", "0"],
        ["manage.py", "load_library"],
        ["manage.py", "collectstatic", "--noinput", "-v", "0"],
    ):
        subprocess.run(
            [python, *command], cwd=ROOT, env=env, check=True, capture_output=True, timeout=300
        )
    try:
        yield {"postgres": postgres, "redis": redis, "env": env, "base": base}
    finally:
        redis.stop()
        postgres.stop()
        shutil.rmtree(base, ignore_errors=True)


def seed(stack, tag: str) -> list[str]:
    """PATIENTS new patients on a program with reminders planned; a sign-in link each."""
    out = stack["base"] / f"tokens-{tag}.json"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "loadtest.seed",
            "--patients",
            str(PATIENTS),
            "--tag",
            tag,
            "--reminders",
            "--out",
            str(out),
        ],
        cwd=ROOT,
        env=stack["env"],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return json.loads(out.read_text())


@pytest.fixture
def gunicorn(stack):
    processes = []

    def start(*, workers: int = 2, threads: int = 2, **env) -> int:
        port = free_port()
        log = open(stack["base"] / f"gunicorn-{port}.log", "w")  # noqa: SIM115
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "config.wsgi",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                str(workers),
                "--threads",
                str(threads),
                "--worker-class",
                "gthread",
                "--timeout",
                "30",
                "--graceful-timeout",
                "2",
            ],
            cwd=ROOT,
            env={**stack["env"], **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        processes.append((process, log))
        wait_until(lambda: Client(port).get("/healthz")[0] == 200, 30, "gunicorn")
        return port

    yield start
    for process, log in processes:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


# --- a phone, in a few lines of http.client ---------------------------------------------------

CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
KEY = re.compile(r'name="idempotency_key" value="([^"]+)"')


class Client:
    def __init__(self, port: int):
        self.port = port
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, form: dict | None = None) -> tuple[int, dict, str]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
        headers = {"Host": "127.0.0.1"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if form is not None:
            from urllib.parse import urlencode

            body = urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            text = response.read().decode("utf-8", errors="replace")
            for header in response.headers.get_all("Set-Cookie") or []:
                cookie = SimpleCookie(header)
                for name, morsel in cookie.items():
                    self.cookies[name] = morsel.value
            return response.status, dict(response.headers), text
        finally:
            conn.close()

    def get(self, path: str):
        return self.request("GET", path)

    def post(self, path: str, form: dict):
        return self.request("POST", path, form)


@dataclass
class Record:
    started: float
    ended: float
    path: str
    outcome: int | str  # status code, or the exception's name


@dataclass
class Patient:
    port: int
    token: str
    records: list[Record] = field(default_factory=list)
    logged: set[str] = field(default_factory=set)

    def call(self, client: Client, method: str, path: str, form=None):
        started = time.monotonic()
        try:
            status, headers, text = client.request(method, path, form)
        except OSError as error:
            self.records.append(Record(started, time.monotonic(), path, type(error).__name__))
            return None
        self.records.append(Record(started, time.monotonic(), path, status))
        return status, headers, text

    def sign_in(self, client: Client) -> None:
        path = f"/signin/link/{self.token}/"
        status, _, page = client.get(path)
        assert status == 200, status
        status, headers, _ = client.post(path, {"csrfmiddlewaretoken": CSRF.search(page)[1]})
        assert status == 302 and headers["Location"] == "/today/", (status, headers)

    def log_one(self, client: Client, stop: threading.Event) -> None:
        self.call(client, "GET", "/today/")
        answer = self.call(client, "GET", "/log/")
        if answer is None or answer[0] != 200:
            time.sleep(0.05)
            return
        form = {
            "csrfmiddlewaretoken": CSRF.search(answer[2])[1],
            "idempotency_key": KEY.search(answer[2])[1],
        }
        # A phone retries a failed log with the same key until it is confirmed.
        for _ in range(600):
            answer = self.call(client, "POST", "/log/", form)
            if answer is not None and answer[0] == 302:
                self.logged.add(form["idempotency_key"])
                return
            time.sleep(0.05)
        raise AssertionError(f"a session could not be logged within 30 s: {answer}")

    def run(self, stop: threading.Event) -> None:
        client = Client(self.port)
        self.sign_in(client)
        while not stop.is_set():
            self.log_one(client, stop)


def drive(port: int, tokens: list[str]):
    stop = threading.Event()
    patients = [Patient(port, token) for token in tokens]
    errors: list[BaseException] = []

    def run(patient: Patient) -> None:
        try:
            patient.run(stop)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run, args=(p,), daemon=True) for p in patients]
    for thread in threads:
        thread.start()

    def finish() -> None:
        stop.set()
        for thread in threads:
            thread.join(60)
        assert not errors, errors

    return patients, finish


def slots(postgres: PostgresServer) -> list[tuple]:
    return postgres.query(
        "SELECT id, patient_id, local_date, slot_number, due_at, status "
        "FROM reminders_reminderslot ORDER BY id"
    )


def test_requests_recover_after_postgres_and_redis_restart_and_nothing_is_lost(stack, gunicorn):
    postgres, redis = stack["postgres"], stack["redis"]
    tokens = seed(stack, "main")
    planned = slots(postgres)
    assert len(planned) >= PATIENTS * 6
    port = gunicorn(workers=2, threads=2)
    patients, finish = drive(port, tokens)
    health = Client(port)

    time.sleep(2.0)  # every worker thread holds a warm database connection
    pg_down = time.monotonic()
    postgres.restart()
    pg_back = time.monotonic()
    time.sleep(3.0)
    redis_down = time.monotonic()
    redis.stop()
    time.sleep(0.5)
    assert health.get("/healthz")[0] == 503  # the broker is down: unhealthy, but pages work
    time.sleep(1.0)
    redis.start()
    redis_back = time.monotonic()
    wait_until(lambda: health.get("/healthz")[0] == 200, 15, "/healthz after the Redis restart")
    time.sleep(2.0)
    finish()

    records = [r for p in patients for r in p.records]
    # In flight while PostgreSQL restarted: may fail. Before and after: may not.
    before = [r for r in records if r.ended < pg_down]
    during = [r for r in records if r.ended >= pg_down and r.started < pg_back]
    after = [r for r in records if r.started >= pg_back]
    print(  # shown with -s, and in the failure report
        f"\nrequests: {len(before)} before, {len(during)} during the PostgreSQL restart "
        f"({sum(r.outcome != 200 and r.outcome != 302 for r in during)} failed), {len(after)} after"
        f" (Redis down for {redis_back - redis_down:.1f}s of them)"
    )
    assert len(before) >= 10 and len(after) >= 40
    bad_before = [r for r in before if r.outcome not in (200, 302)]
    bad_after = [r for r in after if r.outcome not in (200, 302)]
    assert bad_before == []
    assert bad_after == [], f"requests failing after PostgreSQL was back: {bad_after[:10]}"
    assert any(r.started >= redis_down and r.started < redis_back for r in after), (
        "no page was requested while Redis was down"
    )

    # Every session a patient was told is logged is there, exactly once.
    logged = set().union(*(p.logged for p in patients))
    rows = postgres.query(
        "SELECT s.idempotency_key::text FROM symptoms_sessionlog s "
        "JOIN patients_patient p ON p.id = s.patient_id JOIN accounts_user u ON u.id = p.user_id "
        "WHERE u.email LIKE '%@main.test'"
    )
    keys = [row[0] for row in rows]
    assert len(keys) == len(set(keys))
    assert set(keys) == logged
    assert len(logged) >= 20
    # And the reminder plan did not lose a row.
    assert slots(postgres) == planned


def test_without_health_checks_the_first_request_after_a_restart_fails(stack, gunicorn):
    """The control: the same restart, CONN_HEALTH_CHECKS off, one worker: a 500 first."""
    postgres = stack["postgres"]
    token = seed(stack, "control")[0]
    port = gunicorn(workers=1, threads=1, CONN_HEALTH_CHECKS="false")
    client = Client(port)
    Patient(port, token).sign_in(client)
    assert client.get("/today/")[0] == 200  # the connection is now open and kept
    postgres.restart()
    first, second = client.get("/today/")[0], client.get("/today/")[0]
    assert (first, second) == (500, 200)
