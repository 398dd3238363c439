"""The clinic `make bench-review` measures: 10,000 patients, 90 days each, ~4 million sessions.

Accounts, patients, programs and their phase history go in through the ORM
(``bulk_create``: the schema may grow columns with defaults); sessions, pain
reports, the adherence rollup and alerts are generated inside PostgreSQL
with ``INSERT ... SELECT generate_series`` (no row crosses the wire), with
the big tables' indexes dropped during the load and rebuilt after it, and
foreign-key triggers off (``session_replication_role = replica``) for the
load only. Everything is deterministic (seeded), so runs compare.

The rollup is derived from the generated sessions and pain reports the way
``symptoms.services.adherence_rebuild`` derives it; ``verify_rollup`` checks a
sample of patients against that function before anything is measured.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import sys
import time
import zoneinfo
from dataclasses import dataclass

PATIENTS = int(os.environ.get("BENCH_REVIEW_PATIENTS", "10000"))  # smaller: a quick try
PER_THERAPIST = 50
DAYS = 90
SEED = 20261121
ZONES = [
    ("Europe/London", 70),
    ("Europe/Berlin", 10),
    ("America/New_York", 10),
    ("Australia/Sydney", 10),
]


class Progress:
    """A progress bar on stderr (a line per update when stderr is not a terminal)."""

    def __init__(self, total: float):
        self.total = total
        self.done = 0.0
        self.started = time.monotonic()
        self.tty = sys.stderr.isatty()
        self.last_line = ""

    def step(self, weight: float, label: str) -> None:
        self.done = min(self.total, self.done + weight)
        fraction = self.done / self.total
        filled = int(fraction * 30)
        elapsed = time.monotonic() - self.started
        line = f"[{'#' * filled}{'.' * (30 - filled)}] {fraction:6.1%}  {elapsed:5.0f}s  {label}"
        if self.tty:
            sys.stderr.write("\r" + line[:110].ljust(110))
            if self.done >= self.total:
                sys.stderr.write("\n")
        elif line != self.last_line:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()
        self.last_line = line


@dataclass(frozen=True)
class Plan:
    """One patient's program: phases (start day offset, phase, sessions/day)."""

    zone: str
    phases: list[tuple[int, str, int]]  # (days after the start, phase, sessions/day)


def plan_for(index: int) -> Plan:
    rng = random.Random(SEED * 100_003 + index)  # noqa: S311 - test data
    zone = rng.choices([z for z, _ in ZONES], weights=[w for _, w in ZONES])[0]
    acute, sub_acute, recovery = rng.randint(3, 10), rng.randint(7, 30), rng.randint(14, 60)
    phases = [(0, "acute", rng.randint(6, 10))]
    day = acute
    for name, length, low, high in (
        ("sub_acute", sub_acute, 4, 6),
        ("recovery", recovery, 3, 4),
        ("maintenance", None, 2, 3),
    ):
        if day >= DAYS:
            break
        phases.append((day, name, rng.randint(low, high)))
        if length is None:
            break
        day += length
    return Plan(zone=zone, phases=phases)


def generate(progress: Progress) -> dict:
    """Fill the (freshly migrated) database. Returns ids the measurements use."""
    from django.contrib.auth.models import Group
    from django.db import connection, transaction
    from django.utils import timezone

    from accounts.models import CLINIC_ADMINS_GROUP, THERAPISTS_GROUP, User
    from patients.models import Assignment, Patient, PhaseChange
    from programs.models import ProgramTemplate

    template = ProgramTemplate.objects.get(slug="mckenzie-extension")
    now = timezone.now()
    therapists_group = Group.objects.get(name=THERAPISTS_GROUP)
    admins_group = Group.objects.get(name=CLINIC_ADMINS_GROUP)

    # --- people -------------------------------------------------------------------------
    count = PATIENTS // PER_THERAPIST
    with transaction.atomic():
        staff = User.objects.bulk_create(
            [
                User(
                    email=f"therapist{n:03d}@bench.test",
                    full_name=f"Therapist {n:03d}",
                    is_staff=True,
                    password="!",
                )
                for n in range(count)
            ]
            + [
                User(
                    email="admin@bench.test", full_name="Clinic Admin", is_staff=True, password="!"
                )
            ]
        )
        therapists, admin = staff[:-1], staff[-1]
        User.groups.through.objects.bulk_create(
            [User.groups.through(user_id=t.pk, group_id=therapists_group.pk) for t in therapists]
            + [User.groups.through(user_id=admin.pk, group_id=admins_group.pk)]
        )
    progress.step(2, "therapists")
    plans = [plan_for(n) for n in range(PATIENTS)]
    batch = 2000
    patients: list[Patient] = []
    for first in range(0, PATIENTS, batch):
        with transaction.atomic():
            users = User.objects.bulk_create(
                [
                    User(
                        email=f"patient{n:05d}@bench.test",
                        full_name=f"Patient {n:05d}",
                        password="!",
                    )
                    for n in range(first, min(first + batch, PATIENTS))
                ]
            )
            patients += Patient.objects.bulk_create(
                [
                    Patient(
                        user=user,
                        therapist=therapists[(first + i) // PER_THERAPIST],
                        timezone=plans[first + i].zone,
                    )
                    for i, user in enumerate(users)
                ]
            )
        progress.step(8 * len(users) / PATIENTS, f"patients {len(patients):,}")

    # --- programs and their history ------------------------------------------------------
    assignments, changes = [], []
    for patient, plan in zip(patients, plans, strict=True):
        today = now.astimezone(zoneinfo.ZoneInfo(plan.zone)).date()
        start = today - dt.timedelta(days=DAYS)
        offset, phase, sessions = plan.phases[-1]
        assignments.append(
            Assignment(
                patient=patient,
                template=template,
                current_phase=phase,
                sessions_per_day=sessions,
                phase_started_on=start + dt.timedelta(days=offset),
                started_on=start,
                assigned_by=patient.therapist,
            )
        )
    with transaction.atomic():
        Assignment.objects.bulk_create(assignments, batch_size=2000)
        for assignment, plan in zip(assignments, plans, strict=True):
            start = assignment.started_on
            previous = None
            for offset, phase, sessions in plan.phases:
                effective = start + dt.timedelta(days=offset)
                changes.append(
                    PhaseChange(
                        assignment=assignment,
                        kind="assigned" if previous is None else "advanced",
                        from_phase=previous[0] if previous else "",
                        to_phase=phase,
                        from_sessions_per_day=previous[1] if previous else None,
                        to_sessions_per_day=sessions,
                        effective_on=effective,
                        changed_at=dt.datetime.combine(effective, dt.time(9), tzinfo=dt.UTC),
                        changed_by=assignment.assigned_by,
                        reason="Bench program" if previous is None else "Progressing",
                    )
                )
                previous = (phase, sessions)
        PhaseChange.objects.bulk_create(changes, batch_size=5000)
    progress.step(5, f"programs and {len(changes):,} phase changes")

    # --- sessions, pain, rollup: inside PostgreSQL -----------------------------------------
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")  # no FK triggers for the load
        cursor.execute("SET maintenance_work_mem = '512MB'")
        cursor.execute("SET work_mem = '64MB'")
        dropped = _drop_indexes(cursor, ["symptoms_sessionlog", "symptoms_painreport"])
        cursor.execute(
            """
            CREATE UNLOGGED TABLE bench_days AS
            SELECT p.id AS patient_id, a.id AS assignment_id, p.timezone AS tz,
                   d::date AS local_date,
                   (d::date = (now() AT TIME ZONE p.timezone)::date) AS is_today,
                   ((d::date - a.started_on))::int AS day_index,
                   pc.to_phase AS phase, pc.to_sessions_per_day AS prescribed,
                   0::int AS cnt
            FROM patients_patient p
            JOIN patients_assignment a ON a.patient_id = p.id AND a.status = 'active'
            CROSS JOIN LATERAL generate_series(
                a.started_on, (now() AT TIME ZONE p.timezone)::date, interval '1 day'
            ) AS d
            CROSS JOIN LATERAL (
                SELECT to_phase, to_sessions_per_day FROM patients_phasechange c
                WHERE c.assignment_id = a.id AND c.effective_on <= d::date
                ORDER BY c.effective_on DESC, c.id DESC LIMIT 1
            ) pc
            """
        )
        # Sessions a day: the prescription times the patient's habit (0.65-1.75: some
        # under-do, some over-do), with day-to-day noise; today is half done.
        cursor.execute(
            """
            UPDATE bench_days SET cnt = GREATEST(0, floor(
                prescribed * (0.65 + 1.1 * ((hashtext('f' || patient_id) & 65535) / 65536.0))
                + ((hashtext('n' || patient_id || local_date) & 65535) / 65536.0) - 0.3
            ) * CASE WHEN is_today THEN 0.5 ELSE 1 END)::int
            """
        )
        cursor.execute("CREATE INDEX ON bench_days (patient_id)")
        cursor.execute("ANALYZE bench_days")
        progress.step(5, "the day grid")

        chunks = 20
        step = -(-PATIENTS // chunks)
        ids = [p.pk for p in patients]
        for n in range(chunks):
            low, high = ids[n * step], ids[min((n + 1) * step, PATIENTS) - 1]
            cursor.execute(
                """
                INSERT INTO symptoms_sessionlog (public_id, patient_id, assignment_id, local_date,
                    logged_at, phase, sessions_prescribed, reps_done, source, idempotency_key,
                    created_at)
                SELECT gen_random_uuid(), b.patient_id, b.assignment_id, b.local_date,
                       ((b.local_date + time '07:00' + (s.n - 1) * interval '50 minutes')
                           AT TIME ZONE b.tz),
                       b.phase, b.prescribed, 11,
                       CASE WHEN s.n %% 3 = 0 THEN 'email' ELSE 'app' END,
                       gen_random_uuid(),
                       ((b.local_date + time '07:00' + (s.n - 1) * interval '50 minutes')
                           AT TIME ZONE b.tz)
                FROM bench_days b CROSS JOIN LATERAL generate_series(1, b.cnt) AS s(n)
                WHERE b.patient_id BETWEEN %s AND %s
                ORDER BY b.patient_id, b.local_date, s.n
                """,
                [low, high],
            )
            progress.step(40 / chunks, f"sessions for patients up to {high - ids[0] + 1:,}")
        _create_indexes(cursor, dropped["symptoms_sessionlog"])
        progress.step(12, "session indexes")

        # One pain report a day, with the day's last session. Most patients get better
        # and their pain moves toward the spine; one in eight gets worse.
        cursor.execute(
            """
            INSERT INTO symptoms_painreport (patient_id, session_id, reported_at, local_date,
                score, location, trend, previous_score, previous_location, note)
            SELECT s.patient_id, s.id, s.logged_at + interval '5 minutes', s.local_date,
                   x.score,
                   CASE WHEN x.score >= 8 THEN 'below_knee' WHEN x.score >= 6 THEN 'thigh'
                        WHEN x.score >= 4 THEN 'buttock' WHEN x.score >= 2 THEN 'back_side'
                        WHEN x.score >= 1 THEN 'back_centre' ELSE 'none' END,
                   'unchanged', NULL, '',
                   CASE WHEN (hashtext('note' || s.id) & 63) = 0
                        THEN 'Stiff in the morning, easier after the second session.'
                        ELSE '' END
            FROM (
                SELECT DISTINCT ON (patient_id, local_date) id, patient_id, local_date, logged_at
                FROM symptoms_sessionlog ORDER BY patient_id, local_date, logged_at DESC
            ) s
            JOIN bench_days b ON b.patient_id = s.patient_id AND b.local_date = s.local_date
            CROSS JOIN LATERAL (
                SELECT LEAST(10, GREATEST(0, round(
                    CASE WHEN (hashtext('w' || s.patient_id) & 7) = 0
                         THEN 3 + b.day_index / 20.0
                         ELSE 7 - b.day_index / 15.0 END
                    + ((hashtext('p' || s.patient_id || s.local_date) & 3) - 1.5)
                )))::int AS score
            ) x
            """
        )
        _create_indexes(cursor, dropped["symptoms_painreport"])
        progress.step(10, "pain reports")

        # The rollup, derived from those rows exactly as the services derive it.
        cursor.execute(
            """
            INSERT INTO symptoms_dailyadherence (patient_id, local_date, phase, prescribed, done,
                extra, reps, pain_first, pain_last, pain_min, pain_max, location,
                last_session_at, updated_at)
            SELECT b.patient_id, b.local_date, b.phase, b.prescribed,
                   LEAST(b.cnt, b.prescribed), GREATEST(b.cnt - b.prescribed, 0), b.cnt * 11,
                   r.score, r.score, r.score, r.score, COALESCE(r.location, ''),
                   CASE WHEN b.cnt > 0 THEN ((b.local_date + time '07:00'
                        + (b.cnt - 1) * interval '50 minutes') AT TIME ZONE b.tz) END,
                   now()
            FROM bench_days b
            LEFT JOIN symptoms_painreport r
                ON r.patient_id = b.patient_id AND r.local_date = b.local_date
            ORDER BY b.patient_id, b.local_date
            """
        )
        progress.step(8, "the adherence rollup")

        # Open and acknowledged alerts for about a third of the patients.
        cursor.execute(
            """
            INSERT INTO symptoms_alert (patient_id, therapist_id, kind, severity, period_key,
                message, created_at, emailed_at, email_attempts, acknowledged_at,
                acknowledged_by_id)
            SELECT p.id, p.therapist_id, k.kind,
                   CASE WHEN k.kind = 'red_flag' THEN 'urgent' ELSE 'routine' END,
                   'bench-' || k.n, 'Generated for the benchmark.',
                   now() - (k.n || ' days')::interval, now(), 0,
                   CASE WHEN k.n > 2 THEN now() END,
                   CASE WHEN k.n > 2 THEN p.therapist_id END
            FROM patients_patient p
            CROSS JOIN LATERAL (
                SELECT n, (ARRAY['high_pain', 'no_sessions', 'pain_rising', 'phase_overdue',
                                 'peripheralising', 'red_flag'])[1 + (hashtext('k' || p.id || n)
                                 & 2147483647) % 6] AS kind
                FROM generate_series(1, (hashtext('a' || p.id) & 7)) AS n
            ) k
            WHERE (hashtext('a' || p.id) & 7) BETWEEN 1 AND 4
            """
        )
        cursor.execute("DROP TABLE bench_days")
        cursor.execute("SET session_replication_role = DEFAULT")
        progress.step(2, "alerts")
        cursor.execute("VACUUM ANALYZE")
        progress.step(8, "vacuum and analyze")
        cursor.execute("SELECT count(*) FROM symptoms_sessionlog")
        (sessions,) = cursor.fetchone()
        cursor.execute("SELECT count(*) FROM symptoms_dailyadherence")
        (rollup_rows,) = cursor.fetchone()
    return {
        "therapist_id": therapists[0].pk,
        "admin_id": admin.pk,
        "sessions": sessions,
        "rollup_rows": rollup_rows,
        "patients": PATIENTS,
    }


TOTAL_WEIGHT = 100


def _drop_indexes(cursor, tables: list[str]) -> dict[str, list[str]]:
    """Drop the tables' secondary indexes and unique constraints; return how to rebuild them."""
    saved: dict[str, list[str]] = {}
    for table in tables:
        saved[table] = []
        cursor.execute(
            """
            SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint
            WHERE conrelid = %s::regclass AND contype = 'u'
            """,
            [table],
        )
        for name, definition in cursor.fetchall():
            saved[table].append(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
            cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
        cursor.execute(
            """
            SELECT indexname, indexdef FROM pg_indexes i
            WHERE tablename = %s AND indexname NOT IN (
                SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass
            )
            """,
            [table, table],
        )
        for name, definition in cursor.fetchall():
            saved[table].append(definition)
            cursor.execute(f'DROP INDEX "{name}"')
    return saved


def _create_indexes(cursor, statements: list[str]) -> None:
    for statement in statements:
        cursor.execute(statement)


def verify_rollup(sample: int = 25) -> int:
    """Rebuild a sample of patients with the services and compare: the data is honest."""
    from django.db import transaction

    from patients.models import Patient
    from symptoms.models import DailyAdherence
    from symptoms.services import adherence_rebuild_patient

    fields = ["local_date", "phase", "prescribed", "done", "extra", "reps", "pain_last"]
    fields += ["pain_min", "pain_max", "location", "last_session_at"]
    rng = random.Random(SEED)  # noqa: S311 - a sample, not a secret
    ids = sorted(Patient.objects.values_list("pk", flat=True))
    checked = 0
    for patient_id in rng.sample(ids, sample):
        patient = Patient.objects.get(pk=patient_id)
        rows = DailyAdherence.objects.filter(patient=patient).order_by("local_date")
        generated = list(rows.values_list(*fields))
        with transaction.atomic():
            adherence_rebuild_patient(patient=patient, days=DAYS + 1)
            rebuilt = list(rows.values_list(*fields))
            transaction.set_rollback(True)
        if generated != rebuilt:
            diff = next((a, b) for a, b in zip(generated, rebuilt, strict=False) if a != b)
            raise AssertionError(f"Rollup of patient {patient_id} differs from a rebuild: {diff}")
        checked += 1
    return checked
