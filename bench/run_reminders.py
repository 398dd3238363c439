"""The reminder machinery at scale: planning 100,000 patients, dispatching 10,000 emails.

Planning runs the beat task's own code (``reminders.tasks.plan_reminders``)
in this process. With the rest of today already planned (as the run of the
day before would have left it), the production setting (today and tomorrow,
patient-local) makes it plan exactly one new day for every patient; that is
timed, and compared with a raw bulk insert of exactly the rows it wrote. Then
the same task runs again with nothing to change (what beat does every 15
minutes).

Dispatch runs real Celery workers against a redis-server of their own and an
aiosmtpd sink in its own process: 10,000 slots are made due, the dispatch
task is queued once, and the clock stops when every one of them is sent. The
sink's own acceptance rate, measured just before and just after the
dispatch, with as many SMTP clients as the workers have processes, each
sending as many messages per connection as the workers put in one batch
(REMINDER_SEND_BATCH_SIZE), is the baseline (the mean of the two). The
sink must then have received each of the 10,000 Message-IDs exactly once.
"""

from __future__ import annotations

import datetime as dt
import email.policy
import math
import os
import sys
import time
from pathlib import Path

from bench import lib

MAX_PLAN_SECONDS = 60
MIN_SINK_RATIO = 0.50
PLAN_BATCH = 200  # reminder_plan_all's batch of patients
DISPATCH_TIMEOUT = 900


def plan(report: lib.Report, patients: int) -> dict:
    """Time the plan task for one new day of every patient, then the raw insert of that day."""
    from django.db import transaction
    from django.db.models import Max, Sum
    from django.test.utils import override_settings

    from patients.models import Assignment
    from reminders.models import ReminderSlot
    from reminders.tasks import plan_reminders

    # As if the task had run yesterday: the rest of today is planned already.
    with (
        lib.step("plan the rest of today (untimed set-up)"),
        override_settings(REMINDER_PLAN_DAYS_AHEAD=0),
    ):
        plan_reminders()
    lib.analyze()
    before = ReminderSlot.objects.aggregate(last=Max("pk"))["last"] or 0
    one_day = Assignment.objects.filter(status=Assignment.Status.ACTIVE).aggregate(
        n=Sum("sessions_per_day")
    )["n"]

    # The production setting (today and tomorrow): tomorrow is one new day for everyone.
    with (
        lib.step(f"plan {patients:,} patients' next day (beat's plan_reminders task)"),
        override_settings(REMINDER_PLAN_DAYS_AHEAD=1),
        lib.Stopwatch() as plan_watch,
    ):
        first = plan_reminders()
    plan_seconds = plan_watch.wall
    if first["created"] != one_day or first["cancelled"] or first["patients"] != patients:
        raise RuntimeError(f"plan_reminders returned {first}; expected {one_day} new slots.")
    rows = first["created"]

    # The baseline: the same rows, built beforehand, bulk-inserted in as many
    # transactions and statements as the planner used.
    from reminders.services import PLANNED_COLUMNS

    fields = list(PLANNED_COLUMNS)
    new_rows = ReminderSlot.objects.filter(pk__gt=before)
    values = list(new_rows.order_by("patient_id", "slot_number").values_list(*fields))
    new_rows.delete()
    lib.analyze()
    prebuilt = [ReminderSlot(**dict(zip(fields, row, strict=True))) for row in values]
    statements = math.ceil(patients / PLAN_BATCH)
    size = math.ceil(len(prebuilt) / statements)
    with (
        lib.step(f"raw bulk insert of the same {len(prebuilt):,} rows"),
        lib.Stopwatch() as raw_watch,
    ):
        for start in range(0, len(prebuilt), size):
            with transaction.atomic():
                ReminderSlot.objects.bulk_create(
                    prebuilt[start : start + size], ignore_conflicts=True
                )
    raw_seconds = raw_watch.wall
    del prebuilt, values
    if ReminderSlot.objects.filter(pk__gt=before).count() != rows:
        raise RuntimeError("The raw insert did not write the same number of rows.")
    lib.analyze()

    with (
        lib.step("plan again, nothing to change (every 15 minutes in production)"),
        override_settings(REMINDER_PLAN_DAYS_AHEAD=1),
        lib.Stopwatch() as replan_watch,
    ):
        again = plan_reminders()
    replan_seconds = replan_watch.wall
    if again["created"] or again["cancelled"]:
        raise RuntimeError(f"Re-planning an unchanged schedule changed rows: {again}.")

    plan_rate, raw_rate = rows / plan_seconds, rows / raw_seconds
    report.line(
        f"{'plan one day':<18} {plan_seconds:8.1f} s      {plan_rate:9,.0f} rows/s  "
        f"{lib.ratio(plan_rate, raw_rate):>6} of raw insert ({raw_seconds:.1f} s)  "
        f"{patients:,} patients, {rows:,} slots"
    )
    report.line(
        f"{'':<18} CPU: plan {plan_watch.cpu:.1f} s Python + {plan_watch.db_cpu:.1f} s "
        f"PostgreSQL, raw insert {raw_watch.cpu:.1f} s + {raw_watch.db_cpu:.1f} s: "
        f"{lib.ratio(raw_watch.total_cpu, plan_watch.total_cpu)} by CPU"
    )
    report.line(
        f"{'re-plan (no-op)':<18} {replan_seconds:8.1f} s      "
        f"{patients / replan_seconds:9,.0f} patients/s  (2 days of slots to compare; "
        f"CPU {replan_watch.cpu:.1f} s + {replan_watch.db_cpu:.1f} s)"
    )
    return {
        "patients": patients,
        "rows": rows,
        "seconds": plan_seconds,
        "rows_per_second": plan_rate,
        "raw_insert_seconds": raw_seconds,
        "raw_rows_per_second": raw_rate,
        "ratio_to_raw_insert": plan_rate / raw_rate,
        "ratio_to_raw_insert_by_cpu": raw_watch.total_cpu / plan_watch.total_cpu,
        "replan_seconds": replan_seconds,
        "cpu": {
            "plan": plan_watch.as_dict(),
            "raw_insert": raw_watch.as_dict(),
            "replan": replan_watch.as_dict(),
        },
        "result": first,
    }


def start_sink(workdir: Path, name: str) -> tuple[lib.Process, int, Path]:
    port = lib.free_port()
    record = workdir / f"{name}.ids"
    record.write_bytes(b"")
    command = [
        sys.executable,
        "-m",
        "bench.smtp_sink",
        "--port",
        str(port),
        "--record",
        str(record),
    ]
    sink = lib.Process(name, command, env=dict(os.environ), logfile=workdir / f"{name}.log")
    sink.start()
    lib.wait_until(lambda: lib.port_open(port), timeout=30, what="the SMTP sink")
    return sink, port, record


def sample_message() -> bytes:
    """One real reminder email, byte for byte as the workers will send it."""
    from reminders.emails import reminder_email_build
    from reminders.models import ReminderSlot

    slot = ReminderSlot.objects.select_related("patient__user", "assignment__template").first()
    message = reminder_email_build(slot=slot, logged_today=0)
    # As reminders.services sends it over an SMTP connection.
    return message.wire_bytes() or message.message(policy=email.policy.SMTP).as_bytes()


def sink_rate(report: lib.Report, workdir: Path, clients: int, seconds: float) -> dict:
    from bench.smtp_sink import blast
    from reminders.services import send_batch_size

    processes = min(clients, max(2, os.cpu_count() or 2))
    threads = max(1, math.ceil(clients / processes))
    # As many messages per connection as the workers send in one batch.
    per_connection = send_batch_size()
    message = sample_message()
    sink, port, _record = start_sink(workdir, "sink-rate")
    try:
        with lib.step(f"SMTP sink rate: {processes} x {threads} clients, {seconds:.0f} s"):
            cpu = lib.group_cpu_seconds(sink.popen.pid)
            result = blast(
                port=port,
                message=message,
                seconds=seconds,
                processes=processes,
                threads=threads,
                per_connection=per_connection,
            )
            result["sink_cpu_ms_per_message"] = (
                1000 * (lib.group_cpu_seconds(sink.popen.pid) - cpu) / max(result["messages"], 1)
            )
    finally:
        sink.stop()
    report.line(
        f"{'smtp sink':<18} {result['rate']:8.1f} msg/s  ({result['clients']} clients, "
        f"{per_connection} messages per connection, {result['message_bytes']:,} B each; "
        f"sink CPU {result['sink_cpu_ms_per_message']:.1f} ms/message)"
    )
    return result


def make_due(count: int) -> list[int]:
    """The ``count`` earliest planned slots fall due now; every other one moves 2 days on."""
    from django.db import transaction
    from django.db.models import F
    from django.utils import timezone

    from reminders.models import ReminderSlot, SlotStatus

    chosen = list(
        ReminderSlot.objects.filter(status=SlotStatus.PLANNED)
        .order_by("due_at", "pk")
        .values_list("pk", flat=True)[:count]
    )
    if len(chosen) != count:
        raise RuntimeError(f"Only {len(chosen)} planned slots to make due.")
    with transaction.atomic():
        ReminderSlot.objects.filter(status=SlotStatus.PLANNED).update(
            due_at=F("due_at") + dt.timedelta(days=2)
        )
        ReminderSlot.objects.filter(pk__in=chosen).update(
            due_at=timezone.now() - dt.timedelta(minutes=1)
        )
    return chosen


def dispatch(workdir: Path, redis_url: str, chosen: list[int]) -> dict:
    from config.celery import app
    from reminders.models import ReminderSlot, SlotStatus
    from reminders.tasks import dispatch_due_reminders
    from reminders.tests.live import CeleryProcess

    workers = lib.env_int("BENCH_CELERY_WORKERS", 2)
    concurrency = lib.env_int("BENCH_CELERY_CONCURRENCY", 2)
    count = len(chosen)
    mine = ReminderSlot.objects.filter(pk__in=chosen)

    sink, port, record = start_sink(workdir, "sink-dispatch")
    env = {
        **os.environ,
        "CELERY_BROKER_URL": redis_url,
        "REDIS_URL": redis_url,
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(port),
        "EMAIL_TIMEOUT": "30",
        "PYTHONUNBUFFERED": "1",
    }
    started_workers: list[CeleryProcess] = []
    timeline: dict[str, float] = {}
    try:
        with lib.step(f"start {workers} Celery workers x {concurrency} processes"):
            for _ in range(workers):
                process = CeleryProcess("worker", env, workdir, "--concurrency", str(concurrency))
                started_workers.append(process)
                process.start()
        groups = [process.process.pid for process in started_workers]
        cpu_before = sum(lib.group_cpu_seconds(pgid) for pgid in groups)
        sink_cpu_before = lib.group_cpu_seconds(sink.popen.pid)
        app.conf.update(broker_url=redis_url, broker_transport_options={})
        with lib.step(f"dispatch {count:,} due reminders"):
            started = time.perf_counter()
            dispatch_due_reminders.delay()
            # Watch the sink's record (cheap); look at the database only now and then,
            # so that watching does not slow down what is watched.
            next_look = started + 1
            while True:
                now = time.perf_counter()
                if now - started > DISPATCH_TIMEOUT:
                    logs = "\n".join(p.log()[-2000:] for p in started_workers)
                    raise RuntimeError(f"Dispatch unfinished after {DISPATCH_TIMEOUT} s.\n{logs}")
                received = record.read_bytes().count(b"\n")
                if received >= count:
                    if mine.filter(status=SlotStatus.SENT).count() == count:
                        timeline["settled"] = time.perf_counter() - started
                        break
                elif now >= next_look:
                    next_look = now + 1
                    if (
                        "claimed" not in timeline
                        and not mine.filter(status=SlotStatus.PLANNED).exists()
                    ):
                        timeline["claimed"] = now - started
                    bad = mine.exclude(
                        status__in=[SlotStatus.PLANNED, SlotStatus.SENDING, SlotStatus.SENT]
                    )
                    if bad.exists():
                        why = list(bad.values("status", "skip_reason", "failure_reason")[:3])
                        raise RuntimeError(f"Reminders skipped or failed: {why}")
                time.sleep(0.1)
            timeline.setdefault("claimed", timeline["settled"])
        worker_cpu = sum(lib.group_cpu_seconds(pgid) for pgid in groups) - cpu_before
        sink_cpu = lib.group_cpu_seconds(sink.popen.pid) - sink_cpu_before
    finally:
        for process in started_workers:
            process.stop()
        sink.stop()

    expected = set(mine.values_list("message_id", flat=True))
    received_ids = [line for line in record.read_bytes().decode().splitlines() if line]
    distinct = set(received_ids)
    if len(received_ids) != count or len(distinct) != count or distinct != expected:
        raise RuntimeError(
            f"The sink received {len(received_ids)} messages, {len(distinct)} distinct; "
            f"expected exactly the {count} Message-IDs of the sent slots."
        )
    seconds = timeline["settled"]
    return {
        "count": count,
        "seconds": seconds,
        "emails_per_second": count / seconds,
        "claimed_all_after_seconds": timeline["claimed"],
        "workers": workers,
        "concurrency": concurrency,
        "worker_cpu_ms_per_email": 1000 * worker_cpu / count,
        "sink_cpu_ms_per_email": 1000 * sink_cpu / count,
        "received": len(received_ids),
        "distinct_received": len(distinct),
    }


def run(report: lib.Report, workdir: Path) -> dict:
    from django.core.management import call_command

    from bench import data
    from reminders.tests.live import RedisServer

    seconds = lib.bench_seconds()
    patients = lib.env_int("BENCH_REMINDER_PATIENTS", 100_000)
    due = lib.env_int("BENCH_DUE_REMINDERS", 10_000)
    # As many SMTP clients for the sink's own rate as the workers have processes.
    clients = lib.env_int("BENCH_CELERY_WORKERS", 2) * lib.env_int("BENCH_CELERY_CONCURRENCY", 2)
    report.line(f"== reminders: {patients:,} patients, {due:,} due reminders")

    with lib.step("database"):
        lib.fresh_schema()
    if not Path(os.environ["STATIC_ROOT"], "staticfiles.json").exists():
        with lib.step("collectstatic (compressed, manifest)"):
            call_command("collectstatic", interactive=False, verbosity=0)
    data.reminder_patients(patients)
    with lib.step("vacuum analyze"):
        lib.analyze()

    planned = plan(report, patients)
    with lib.step(f"make {due:,} slots due"):
        chosen = make_due(due)
        lib.analyze()
    # The sink's rate just before and just after the dispatch; the mean is the baseline.
    blast_seconds = min(10.0, float(seconds))
    sink_before = sink_rate(report, workdir, clients, blast_seconds)
    redis = RedisServer(workdir / "redis-reminders")
    try:
        redis.start()
        dispatched = dispatch(workdir, redis.url, chosen)
    finally:
        redis.stop()
    sink_after = sink_rate(report, workdir, clients, blast_seconds)
    sink = {
        "rate": (sink_before["rate"] + sink_after["rate"]) / 2,
        "runs": [sink_before, sink_after],
    }
    rate = dispatched["emails_per_second"]
    dispatched["ratio_to_sink"] = rate / sink["rate"]
    report.line(
        f"{'dispatch':<18} {dispatched['seconds']:8.1f} s      {rate:9,.1f} emails/s  "
        f"{lib.ratio(rate, sink['rate']):>6} of the sink's rate  "
        f"({dispatched['workers']} workers x {dispatched['concurrency']}; all claimed after "
        f"{dispatched['claimed_all_after_seconds']:.1f} s; {dispatched['received']:,} received, "
        "no duplicates)"
    )
    report.line(
        f"{'':<18} CPU per email: workers {dispatched['worker_cpu_ms_per_email']:.2f} ms, "
        f"sink {dispatched['sink_cpu_ms_per_email']:.2f} ms"
    )

    targets = [
        {
            "target": f"plan {patients:,} patients' day in under {MAX_PLAN_SECONDS} s",
            "value": f"{planned['seconds']:.1f} s",
            "met": planned["seconds"] < MAX_PLAN_SECONDS,
        },
        {
            "target": f"dispatch at >= {MIN_SINK_RATIO:.2f}x the SMTP sink's rate",
            "value": f"{dispatched['ratio_to_sink']:.2f}x",
            "met": dispatched["ratio_to_sink"] >= MIN_SINK_RATIO,
        },
    ]
    return {
        "config": {"patients": patients, "due": due, "sink_seconds": blast_seconds},
        "plan": planned,
        "sink": sink,
        "dispatch": dispatched,
        "targets": targets,
    }


if __name__ == "__main__":
    from bench.__main__ import main

    raise SystemExit(main(["reminders"]))
