"""`make bench-review`: the staff review page and the export at clinic scale, on PostgreSQL.

1. Drops and creates the database ``homeexercise_bench_review`` (BENCH_REVIEW_DB
   to rename it), migrates it and generates a clinic of 10,000 patients with
   90 days of history each, about 4 million sessions (bench/review_data.py;
   a progress bar on stderr), then checks a sample of the generated rollup
   against the services' own rebuild.
2. Measures, in this process with Django's test Client and production
   settings (bench/review_settings.py: DEBUG off, database sessions, the audit
   trail, the whole middleware), each request REPEAT times (default 30):
   - one therapist's review page (their 50 patients), and the same with the
     rows' memos emptied before each request (each patient's rendered row,
     sparkline and alerts: what the first view of those rows costs; the cells
     many patients share, phases and adherence figures, stay memoised),
   - the clinic admin's first page (50 of 10,000, by name),
   - the clinic admin's first page sorted by 7-day adherence, at-risk only
     (every patient's adherence computed from the rollup),
   - the clinic-wide 30-day CSV export (about 300,000 lines, streamed),
   each against a baseline timed in the same run, interleaved with it: one
   indexed query on the same tables returning comparable data.
   Then the WAL (PostgreSQL's write-ahead log) a patient's tap writes into
   these 4 million sessions just after a checkpoint, when every index page
   it touches is written whole: with the time-ordered ids the app uses
   (accounts/ids.py), against the same taps with random (version 4) ids.
3. Prints one line per measurement: name, median ms, baseline median ms,
   ratio. The database is dropped at the end unless BENCH_KEEP_DB=1 (then a
   second run can skip generation with BENCH_REUSE_DB=1).
"""

from __future__ import annotations

import os
import re
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DB_SERVER = os.environ.get("BENCH_DB_SERVER", "postgres://postgres@127.0.0.1:5432")
DB_NAME = os.environ.get("BENCH_REVIEW_DB", "homeexercise_bench_review")
REPEAT = int(os.environ.get("BENCH_REPEAT", "30"))
EXPORT_REPEAT = int(os.environ.get("BENCH_EXPORT_REPEAT", "5"))


def configure() -> None:
    for name in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "DEBUG", "VAR_DIR"):
        os.environ.pop(name, None)
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.review_settings"
    os.environ["DATABASE_URL"] = f"{DB_SERVER}/{DB_NAME}"
    os.environ["CONN_MAX_AGE"] = "600"
    os.environ["VAR_DIR"] = str(REPO / "var" / "bench-review")
    os.environ["STATIC_ROOT"] = str(REPO / "var" / "bench-review" / "static")
    Path(os.environ["STATIC_ROOT"]).mkdir(parents=True, exist_ok=True)
    os.environ["CELERY_BROKER_URL"] = "memory://"
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))


def admin_connection():
    import psycopg

    return psycopg.connect(f"{DB_SERVER}/postgres", autocommit=True)


def recreate_database() -> None:
    with admin_connection() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DB_NAME}"')


def drop_database() -> None:
    from django.db import connections

    connections.close_all()
    with admin_connection() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')


def timed(function, repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def interleaved(page, baseline, repeat: int) -> tuple[float, float]:
    """Medians of the page and its baseline, alternated so both see the same machine."""
    page()  # warm: connection, template cache, PostgreSQL buffers
    baseline()
    pages, baselines = [], []
    for _ in range(repeat):
        pages += timed(page, 1)
        baselines += timed(baseline, 1)
    return statistics.median(pages), statistics.median(baselines)


def wal_per_tap(patients, *, random_ids: bool) -> float:
    """WAL bytes per ``session_log`` call, for each of ``patients``, just after a CHECKPOINT.

    ``random_ids``: the session's public id and the form's key random
    (version 4), as they were before accounts/ids.py; the baseline.
    """
    import uuid
    from unittest import mock

    from django.db import connection

    from accounts.ids import uuid7
    from bench.lib import wal_position
    from symptoms import services

    new_id = uuid.uuid4 if random_ids else uuid7
    with connection.cursor() as cursor:
        cursor.execute("CHECKPOINT")
    before = wal_position()
    with mock.patch.object(services, "uuid7", new_id):  # the id the service makes
        for patient in patients:
            services.session_log(patient=patient, idempotency_key=new_id())  # the form's key
    return (wal_position() - before) / len(patients)


def main() -> int:
    configure()
    import django

    reuse = os.environ.get("BENCH_REUSE_DB") == "1"
    if not reuse:
        recreate_database()
    django.setup()

    from django.core.management import call_command
    from django.db import connection, transaction
    from django.test import Client
    from django.urls import reverse
    from django.utils import timezone

    from accounts.models import User
    from bench import review_data
    from patients.models import Patient
    from symptoms.models import DailyAdherence

    started = time.monotonic()
    try:
        if not reuse:
            sys.stderr.write(
                f"Generating the clinic in {DB_NAME}: {review_data.PATIENTS:,} patients x "
                f"{review_data.DAYS} days (takes a few minutes)\n"
            )
            progress = review_data.Progress(review_data.TOTAL_WEIGHT + 10)
            call_command("migrate", interactive=False, verbosity=0)
            progress.step(10, "schema")
            facts = review_data.generate(progress)
        else:
            call_command("migrate", interactive=False, verbosity=0)  # indexes added since
            facts = {
                "therapist_id": User.objects.get(email="therapist000@bench.test").pk,
                "admin_id": User.objects.get(email="admin@bench.test").pk,
                "sessions": None,
                "rollup_rows": DailyAdherence.objects.count(),
                "patients": Patient.objects.count(),
            }
        generated = time.monotonic() - started
        checked = review_data.verify_rollup()
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM symptoms_sessionlog")
            (sessions,) = cursor.fetchone()
        sys.stderr.write(
            f"Clinic ready in {generated:.0f}s: {facts['patients']:,} patients, "
            f"{sessions:,} sessions, {facts['rollup_rows']:,} rollup rows; "
            f"rollup of {checked} sampled patients equals the services' rebuild.\n"
        )

        therapist = User.objects.get(pk=facts["therapist_id"])
        admin = User.objects.get(pk=facts["admin_id"])
        therapist_client, admin_client = Client(), Client()
        therapist_client.force_login(therapist)
        admin_client.force_login(admin)
        review = reverse("staff:review")
        today = timezone.localdate()

        def page_ids(client, query):
            response = client.get(review, query)
            assert response.status_code == 200, response.status_code
            shown = re.findall(
                r'href="/staff/patients/([0-9a-f-]{36})/"', response.content.decode()
            )
            return list(Patient.objects.filter(public_id__in=shown).values_list("pk", flat=True))

        # The baseline for a page: one indexed query for the rows its patients need.
        def rollup_query(ids):
            ids = list(ids)

            def run():
                with connection.cursor() as cursor:
                    cursor.execute(
                        "SELECT patient_id, local_date, prescribed, done, extra, pain_last, "
                        "location, last_session_at FROM symptoms_dailyadherence "
                        "WHERE patient_id = ANY(%s) AND local_date >= %s",
                        [ids, today - review_data.dt.timedelta(days=31)],
                    )
                    rows = cursor.fetchall()
                assert len(rows) >= len(ids) * 30

            return run

        def get(client, query):
            def run():
                response = client.get(review, query)
                assert response.status_code == 200
                assert len(response.content) > 10_000

            return run

        def forgetting(run):
            """The page with its rows not memoised: as the first view of these rows costs."""
            from symptoms import staff_render

            def cold():
                staff_render.forget_row_memos()
                run()

            return cold

        results = []
        mine = page_ids(therapist_client, {})
        assert len(mine) == review_data.PER_THERAPIST, len(mine)
        results.append(
            (
                "review: therapist, 50 patients",
                *interleaved(get(therapist_client, {}), rollup_query(mine), REPEAT),
            )
        )
        results.append(
            (
                "review: therapist, rows not memoised",
                *interleaved(
                    forgetting(get(therapist_client, {})), rollup_query(mine), max(5, REPEAT // 3)
                ),
            )
        )
        first = page_ids(admin_client, {})
        results.append(
            (
                "review: clinic, first page of 10,000",
                *interleaved(get(admin_client, {}), rollup_query(first), REPEAT),
            )
        )
        sorted_query = {"sort": "adherence7", "at_risk": "on"}
        worst = page_ids(admin_client, sorted_query)
        results.append(
            (
                "review: clinic, at risk by 7-day adherence",
                *interleaved(
                    get(admin_client, sorted_query),
                    rollup_query(worst),
                    max(5, REPEAT // 3),
                ),
            )
        )

        start, end = (
            today - review_data.dt.timedelta(days=30),
            today - review_data.dt.timedelta(days=1),
        )
        export = reverse("staff:export")

        def export_csv():
            response = admin_client.get(export, {"start": start, "end": end})
            assert response.status_code == 200 and response.streaming
            lines = sum(chunk.count(b"\n") for chunk in response.streaming_content)
            assert lines > review_data.PATIENTS * 25, lines

        def export_baseline():
            # The same rows in the same order off the same index, through a server-side cursor.
            with transaction.atomic(), connection.chunked_cursor() as cursor:
                cursor.execute(
                    "SELECT patient_id, local_date, phase, prescribed, done, extra, reps, "
                    "pain_last, pain_max, location FROM symptoms_dailyadherence "
                    "WHERE local_date BETWEEN %s AND %s ORDER BY patient_id, local_date",
                    [start, end],
                )
                count = 0
                while rows := cursor.fetchmany(2000):
                    count += len(rows)
            assert count > review_data.PATIENTS * 25

        results.append(
            (
                "export: clinic, 30 days CSV",
                *interleaved(export_csv, export_baseline, EXPORT_REPEAT),
            )
        )

        # Taps by 1,000 patients at a time, alternating time-ordered and random ids.
        tappers = list(Patient.objects.order_by("?")[:4000])
        ordered, random_ = [], []
        for number in range(4):
            batch = tappers[number * 1000 : (number + 1) * 1000]
            (random_ if number % 2 else ordered).append(
                wal_per_tap(batch, random_ids=bool(number % 2))
            )
        wal = (statistics.median(ordered), statistics.median(random_))
    finally:
        if os.environ.get("BENCH_KEEP_DB") != "1":
            drop_database()

    width = max(len(name) for name, *_ in results)
    print(f"{'measurement':<{width}}  {'median_ms':>10}  {'baseline_ms':>11}  {'ratio':>6}")
    for name, median, baseline in results:
        print(f"{name:<{width}}  {median:>10.1f}  {baseline:>11.1f}  {median / baseline:>5.1f}x")
    print(
        f"({REPEAT} runs per page, {EXPORT_REPEAT} per export, medians; baseline: one indexed "
        "query on symptoms_dailyadherence for the same patients and days)"
    )
    print(
        f"WAL per tap just after a checkpoint: {wal[0] / 1024:.1f} KB with time-ordered ids, "
        f"{wal[1] / 1024:.1f} KB with random ones ({wal[0] / wal[1]:.2f}x; 2 x 1,000 taps each, "
        "alternated, medians)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
