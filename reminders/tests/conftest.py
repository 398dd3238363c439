"""Fixtures for the reminder tests: patients on a program, frozen clocks."""

from __future__ import annotations

import datetime as dt
import itertools
import os

import pytest
import time_machine

from patients import services as patient_services
from tests.factories import PatientFactory

_numbers = itertools.count(1)


@pytest.fixture
def make_patient_on_program(therapist, extension_template):
    """A patient with reminders on and an active program, made through the real services."""

    def make(
        *,
        timezone: str = "Europe/London",
        wake: dt.time = dt.time(7, 0),
        sleep: dt.time = dt.time(21, 0),
        phase: str = "acute",
        sessions_per_day: int = 6,
        reminders_enabled: bool = True,
        email: str | None = None,
        full_name: str = "Pat Patient",
        start_date: dt.date | None = None,
    ):
        patient = PatientFactory(
            therapist=therapist,
            timezone=timezone,
            wake_time=wake,
            sleep_time=sleep,
            reminders_enabled=reminders_enabled,
            user__email=email or f"patient{next(_numbers)}@patients.test",
            user__full_name=full_name,
        )
        patient_services.assignment_create(
            patient=patient,
            template=extension_template,
            assigned_by=therapist,
            phase=phase,
            sessions_per_day=sessions_per_day,
            start_date=start_date,
        )
        patient.refresh_from_db()
        return patient

    return make


def utc(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


# --- integration: real Redis, SMTP sink, Celery worker and beat ------------------------

# Short timeouts so fault tests finish in seconds; the same values go to the
# test process (settings) and to every worker and beat it starts (env).
LIVE_SETTINGS = {
    "REMINDER_SENDING_TIMEOUT": 8,
    "REMINDER_SEND_TIME_LIMIT": 6,
    "REMINDER_RETRY_BACKOFF_SECONDS": 1,
    "REMINDER_RETRY_BACKOFF_MAX_SECONDS": 2,
    "REMINDER_MAX_LATENESS_MINUTES": 240,
    "REMINDER_MAX_SEND_ATTEMPTS": 5,
}


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory):
    from reminders.tests.live import RedisServer

    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def smtp_sink():
    from reminders.tests.live import SmtpSink

    sink = SmtpSink()
    sink.start()
    yield sink
    sink.stop()


def _database_url_for_workers() -> str:
    """The test database as this test process sees it (test_<name>, or the SQLite file)."""
    from pathlib import Path
    from urllib.parse import quote

    from django.db import connection

    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return "sqlite:///" + str(Path(db["NAME"]).resolve())
    if connection.vendor == "postgresql":
        auth = quote(db["USER"] or "")
        if db["PASSWORD"]:
            auth += ":" + quote(db["PASSWORD"])
        host = db["HOST"] or "127.0.0.1"
        port = db["PORT"] or "5432"
        return f"postgres://{auth}@{host}:{port}/{quote(db['NAME'])}"
    raise AssertionError(f"No worker DATABASE_URL for {connection.vendor}.")


def _reset_broker_pools(app) -> None:
    """Forget broker connections, so the next publish connects to the current broker_url."""
    from kombu import pools

    pools.reset()  # kombu's process-wide connection and producer pools
    app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture
def live(transactional_db, redis_server, smtp_sink, settings, tmp_path):
    """Everything a real-processes test needs; stops whatever it started, always.

    ``live.worker()`` / ``live.beat()`` start processes against the same test
    database, the fixture's Redis and SMTP sink; this test process enqueues to
    the same Redis (eager mode off).
    """
    from django.db import connection

    from config.celery import app
    from reminders.tests.live import CeleryProcess

    for name, value in LIVE_SETTINGS.items():
        setattr(settings, name, value)
    redis_server.client().flushall()
    smtp_sink.reset()
    if connection.vendor == "sqlite":
        # Several processes share the file: WAL lets readers and a writer overlap.
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA journal_mode=WAL")

    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("EMAIL_", "CELERY_", "REMINDER_", "DATABASE_URL", "REDIS_URL"))
    }
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "TEST_REAL_CELERY": "1",
            "TEST_REAL_SMTP": "1",
            "DATABASE_URL": _database_url_for_workers(),
            "CELERY_BROKER_URL": redis_server.url,
            "EMAIL_HOST": "127.0.0.1",
            "EMAIL_PORT": str(smtp_sink.port),
            "EMAIL_TIMEOUT": "10",
            "SITE_URL": settings.SITE_URL,
            "REMINDER_MESSAGE_ID_DOMAIN": settings.REMINDER_MESSAGE_ID_DOMAIN,
            "REMINDER_DISPATCH_INTERVAL": "1",
            "REMINDER_PLAN_INTERVAL": "3",
            "VAR_DIR": str(tmp_path / "var"),
            "PYTHONUNBUFFERED": "1",
            **{name: str(value) for name, value in LIVE_SETTINGS.items()},
        }
    )

    saved = {
        key: app.conf[key]
        for key in ("broker_url", "task_always_eager", "broker_transport_options")
    }
    app.conf.update(
        broker_url=redis_server.url,
        task_always_eager=False,
        broker_transport_options={"visibility_timeout": 3600},
    )
    _reset_broker_pools(app)

    started: list[CeleryProcess] = []

    class Live:
        redis = redis_server
        sink = smtp_sink
        celery = app

        def worker(self, *extra: str, concurrency: int = 2, **env_overrides: str):
            process = CeleryProcess(
                "worker",
                {**env, **env_overrides},
                tmp_path,
                "--concurrency",
                str(concurrency),
                *extra,
            )
            started.append(process)
            return process.start()

        def beat(self, **env_overrides: str):
            process = CeleryProcess(
                "beat", {**env, **env_overrides}, tmp_path, "--schedule", str(tmp_path / "beat")
            )
            started.append(process)
            return process.start()

        def logs(self) -> str:
            return "\n".join(f"== {p.name}\n{p.log()[-4000:]}" for p in started)

    try:
        yield Live()
    finally:
        for process in reversed(started):
            process.stop()
        smtp_sink.reset()
        _reset_broker_pools(app)
        app.conf.update(saved)


@pytest.fixture
def eager_retries_run(monkeypatch):
    """Let eager Celery run a task's retries instead of raising Retry at the caller.

    (With task_eager_propagates, eager mode raises Retry out of apply(); a real
    worker queues the retry instead, which is what this imitates.)
    """
    from config.celery import app

    monkeypatch.setitem(app.conf, "task_eager_propagates", False)


@pytest.fixture
def clock():
    travellers = []

    def at(when: dt.datetime):
        traveller = time_machine.travel(when, tick=False)
        traveller.start()
        travellers.append(traveller)

    yield at
    for traveller in reversed(travellers):
        traveller.stop()
