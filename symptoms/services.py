"""Writes for what patients log: sessions, pain, warning signs, and the alerts they raise.

The only place these rows are created or changed. Every function is atomic and
safe to call twice with the same input: a double tap, a resubmitted form or a
retried request changes nothing the second time.
"""

from __future__ import annotations

import datetime as dt
import enum
import functools
import logging
import uuid
from dataclasses import dataclass
from functools import partial

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import connection, transaction
from django.db.models import Count, F, Max, OuterRef, Q, Subquery, Sum
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts import rawsql
from accounts.ids import uuid7
from accounts.models import User
from accounts.sessions import verified_session_params, verified_session_sql, verified_session_width
from patients.models import Assignment, Patient, PhaseChange
from patients.services import patient_local_today
from patients.zones import LocalToday, zone_named
from programs.models import PrescribedExercise, TemplatePhase
from programs.phases import Phase
from symptoms import adherence, alerts
from symptoms.alerts import HIGH_PAIN_SCORE, PAIN_RISE_POINTS, REPS_SORENESS_LIMIT  # noqa: F401
from symptoms.models import (
    LOCATION_RANK,
    Alert,
    AlertDigest,
    DailyAdherence,
    PainLocation,
    PainReport,
    PainTrend,
    RedFlagAction,
    RedFlagReport,
    SessionLog,
    SessionSource,
)

logger = logging.getLogger(__name__)

# Only urgent alerts (red flags) are emailed at once; every other alert goes
# to the therapist in the daily digest (``alert_digests_create``).


def _local_now(patient: Patient) -> tuple[dt.datetime, dt.date]:
    now = timezone.now()
    return now, patient_local_today(patient, now)


# --- Sessions -------------------------------------------------------------
#
# Logging a session is the patient's most frequent write, so it is written as
# plain SQL and costs one statement on PostgreSQL (two elsewhere):
#
# 1. The session INSERT is its own idempotency check: ``ON CONFLICT (patient,
#    idempotency_key) DO NOTHING RETURNING`` gives a row only when this call
#    made it. Its snapshot of the program (assignment, phase, sessions/day and
#    the reps of one session of that phase) is read inside the same INSERT.
# 2. The day's rollup row is brought up to date incrementally in the same
#    statement (a data-modifying CTE on PostgreSQL; a second statement in the
#    same transaction elsewhere): one session is added to what the row
#    holds, capping ``done`` at the row's ``prescribed``. On PostgreSQL an
#    UPDATE does it when the row is there; otherwise (and elsewhere always)
#    ``INSERT ... ON CONFLICT (patient, local_date) DO UPDATE``, where a new
#    row takes the day's prescription from the phase history, as
#    ``adherence_rebuild`` does.
#
# Two logs at once for one patient need no lock: the unique index on the
# session key lets only one of two equal keys in, and the second upsert of
# the rollup row waits for the first to commit and then adds to it.
# ``adherence_rebuild`` (program changes, repairs) locks the rows it rewrites
# first, so an increment either lands before it (and is counted by it) or
# after it (and adds to the rebuilt row).


class _Program(enum.Enum):
    CURRENT = "current"


CURRENT_PROGRAM = _Program.CURRENT
"""``session_log(assignment=...)``: the patient's active program, whichever it is then."""


@functools.cache
def _tables() -> dict[str, str]:
    quote = connection.ops.quote_name
    return {
        "session": quote(SessionLog._meta.db_table),
        "rollup": quote(DailyAdherence._meta.db_table),
        "pain": quote(PainReport._meta.db_table),
        "alert": quote(Alert._meta.db_table),
        "assignment": quote(Assignment._meta.db_table),
        "change": quote(PhaseChange._meta.db_table),
        "prescribed": quote(PrescribedExercise._meta.db_table),
        "template_phase": quote(TemplatePhase._meta.db_table),
    }


# The prescription in effect on %(local_date)s, from the phase history: the last
# change effective on or before the day, in the order they happened (see
# symptoms.adherence.prescriptions_for); a program's end prescribes nothing.
_PRESCRIPTION_SQL = """
    SELECT CASE WHEN pc.kind = %(ended)s THEN '' ELSE pc.to_phase END AS phase,
           CASE WHEN pc.kind = %(ended)s THEN 0 ELSE pc.to_sessions_per_day END AS sessions
    FROM {change} pc JOIN {assignment} pa ON pa.id = pc.assignment_id
    WHERE pa.patient_id = %(patient)s AND pc.effective_on <= %(local_date)s
    ORDER BY pc.effective_on DESC, pc.changed_at DESC, pc.id DESC
    LIMIT 1
"""

# The one row the INSERT selects from. With asynchronous commit it also sets
# synchronous_commit off until the end of the statement's own transaction:
# is_local, so the connection's next transaction waits for its flush again.
_ONE_ROW = "SELECT 1 AS one"
_ONE_ROW_ASYNC_COMMIT = "SELECT set_config('synchronous_commit', 'off', true) AS one"

_PROGRAM_JOINS = {
    "current": "a.patient_id = %(patient)s AND a.status = %(active)s",
    "given": "a.id = %(assignment)s",
    "none": "1 = 0",
}

_SESSION_INSERT_SQL = """
    INSERT INTO {session} (public_id, patient_id, assignment_id, local_date, logged_at, phase,
                           sessions_prescribed, reps_done, source, idempotency_key, created_at)
    SELECT %(public_id)s, %(patient)s, a.id, %(local_date)s, %(now)s,
           COALESCE(a.current_phase, %(no_phase)s), COALESCE(a.sessions_per_day, 0),
           COALESCE((SELECT SUM(pe.sets * pe.reps)
                     FROM {prescribed} pe JOIN {template_phase} tp ON tp.id = pe.template_phase_id
                     WHERE tp.template_id = a.template_id AND tp.phase = a.current_phase), 0),
           %(source)s, %(key)s, %(now)s
    FROM ({one}) one LEFT JOIN {assignment} a ON {program}
    WHERE {guard}
    ON CONFLICT (patient_id, idempotency_key) DO NOTHING
    RETURNING TRUE AS created, {returning}
"""

# One more session on the day: logged = done + extra + 1, done = min(logged,
# prescribed), extra = the rest (symptoms.adherence.split_sessions), on the
# row ``r``. {reps}, {at}: the session's reps and time, as the statement
# using this names them.
_ROLLUP_ONE_MORE_SQL = """
        done = CASE WHEN r.done + r.extra < r.prescribed THEN r.done + r.extra + 1
                    ELSE r.prescribed END,
        extra = CASE WHEN r.done + r.extra < r.prescribed THEN 0
                     ELSE r.done + r.extra + 1 - r.prescribed END,
        reps = r.reps + {reps},
        last_session_at = CASE WHEN r.last_session_at IS NULL OR r.last_session_at < {at}
                               THEN {at} ELSE r.last_session_at END,
        updated_at = {at}
"""

# The day's row gets one more session; a new row (the day's first session)
# takes the day's prescription. {when} limits it to the days the statement
# has not already brought up to date.
_ROLLUP_ADD_SESSION_SQL = """
    INSERT INTO {rollup} AS r (patient_id, local_date, phase, prescribed, done, extra, reps,
                               location, last_session_at, updated_at)
    SELECT %(patient)s, %(local_date)s, COALESCE(p.phase, ''), COALESCE(p.sessions, 0),
           CASE WHEN COALESCE(p.sessions, 0) > 0 THEN 1 ELSE 0 END,
           CASE WHEN COALESCE(p.sessions, 0) > 0 THEN 0 ELSE 1 END,
           s.reps_done, '', %(now)s, %(now)s
    FROM {source} s LEFT JOIN ({prescription}) p ON TRUE
    WHERE {when}
    ON CONFLICT (patient_id, local_date) DO UPDATE SET {one_more}
"""

# On PostgreSQL the row that is already there (every session of the day but
# the first) is updated directly: cheaper than the INSERT's conflict path,
# and the phase history is then not read at all. Only when there is no row
# yet does the INSERT run; if another log made the row meanwhile, its
# ON CONFLICT adds to that row as before.
_ROLLUP_UPDATE_SQL = """
    UPDATE {rollup} r SET {one_more}
    FROM logged s
    WHERE r.patient_id = %(patient)s AND r.local_date = %(local_date)s
    RETURNING 1
"""


# PostgreSQL: both in one statement, so a log needs no transaction of its own.
# A replay gets the row it already made from the same statement, when that
# row was committed before the statement began (nearly always).
_SESSION_LOG_PG_SQL = """
    WITH logged AS ({session}), bumped AS ({bump}), rolled AS ({rollup})
    SELECT created, {logged_columns} FROM logged
    UNION ALL
    SELECT FALSE, {found_columns} FROM {session_table} s
    WHERE s.patient_id = %(patient)s AND s.idempotency_key = %(key)s
      AND NOT EXISTS (SELECT 1 FROM logged)
"""

# The same with the patient taken from the browser's session, checked in the
# statement (accounts.sessions.verified_session_sql) as ``who``. One row:
# who's columns, then the new session's (created, *columns), NULL for a
# replay, whose row is then read by ``find``. No row if the session signs in
# no such patient: nothing was written. %(patient)s is who's patient.
_SESSION_LOG_SIGNED_IN_PG_SQL = """
    WITH who AS MATERIALIZED ({who}), logged AS ({session}), bumped AS ({bump}),
         rolled AS ({rollup})
    SELECT who.*, logged.* FROM who LEFT JOIN logged ON TRUE
"""
_WHO_PATIENT = "(SELECT patient_id FROM who)"

_SESSION_FIND_SQL = """
    SELECT FALSE, {found_columns} FROM {session_table} s
    WHERE s.patient_id = %(patient)s AND s.idempotency_key = %(key)s
"""


@dataclass(frozen=True)
class _SessionLogSQL:
    log: str  # (created, *columns) of the new row; on PostgreSQL, or of a replay's row
    rollup: str | None  # run after ``log`` made a row, where ``log`` does not do it itself
    find: str  # (created, *columns) of the row a replay's key already has
    columns: rawsql.Columns


@functools.cache
def _session_log_sql(
    vendor: str, program: str, async_commit: bool = False, signed_in: bool = False
) -> _SessionLogSQL:
    """The statements of a log; ``signed_in``: the patient is the session's (PostgreSQL)."""
    tables = _tables()
    quote = connection.ops.quote_name
    fields = SessionLog._meta.concrete_fields
    returning = ", ".join(quote(field.column) for field in fields)  # the INSERT's own row
    session = _SESSION_INSERT_SQL.format(
        program=_PROGRAM_JOINS[program],
        returning=returning,
        one=_ONE_ROW_ASYNC_COMMIT if async_commit else _ONE_ROW,
        guard="EXISTS (SELECT 1 FROM who)" if signed_in else "TRUE",
        **tables,
    )
    prescription = _PRESCRIPTION_SQL.format(**tables)
    found = rawsql.Columns.of(SessionLog, "s")
    find = _SESSION_FIND_SQL.format(found_columns=found.sql, session_table=tables["session"])
    add_conflicting = _ROLLUP_ONE_MORE_SQL.format(
        reps="excluded.reps", at="excluded.last_session_at"
    )
    if vendor == "postgresql":
        rollup = _ROLLUP_ADD_SESSION_SQL.format(
            source="logged",
            prescription=prescription,
            when="NOT EXISTS (SELECT 1 FROM bumped)",
            one_more=add_conflicting,
            **tables,
        )
        add_found = _ROLLUP_ONE_MORE_SQL.format(reps="s.reps_done", at="%(now)s")
        bump = _ROLLUP_UPDATE_SQL.format(one_more=add_found, **tables)
        parts = {
            "session": session,
            "bump": bump,
            "rollup": rollup,
            "logged_columns": rawsql.Columns.of(SessionLog, "logged").sql,
            "found_columns": found.sql,
            "session_table": tables["session"],
        }
        if signed_in:
            log = _SESSION_LOG_SIGNED_IN_PG_SQL.format(who=verified_session_sql(), **parts)
            log = log.replace("%(patient)s", _WHO_PATIENT)
        else:
            log = _SESSION_LOG_PG_SQL.format(**parts)
        return _SessionLogSQL(log=rawsql.compact(log), rollup=None, find=find, columns=found)
    if signed_in:
        raise ValueError("A log with the session's own check is PostgreSQL's alone.")
    rollup = _ROLLUP_ADD_SESSION_SQL.format(
        source="(SELECT %(reps)s AS reps_done)",
        prescription=prescription,
        when="TRUE",
        one_more=add_conflicting,
        **tables,
    )
    return _SessionLogSQL(log=session, rollup=rollup, find=find, columns=found)


def _log_params(now: dt.datetime, local_date: dt.date, key: uuid.UUID, source: str) -> dict:
    """The parameters every log statement takes, but the patient."""
    return {
        "public_id": _uuid_param(uuid7()),
        "key": _uuid_param(key),
        "local_date": connection.ops.adapt_datefield_value(local_date),
        "now": connection.ops.adapt_datetimefield_value(now),
        "source": source if source in _SOURCES else SessionSource.APP,
        "no_phase": Phase.ACUTE,  # a session without a program still needs a valid phase
        "active": Assignment.Status.ACTIVE,
        "ended": PhaseChange.Kind.ENDED,
    }


def session_log(
    *,
    patient: Patient,
    idempotency_key: uuid.UUID,
    assignment: Assignment | _Program | None = CURRENT_PROGRAM,
    source: str = SessionSource.APP,
) -> tuple[SessionLog, bool]:
    """Record one session done now. Returns (session, created).

    The same ``idempotency_key`` always gives back the same row, however many
    times and however concurrently it is sent. ``assignment`` is the program
    the session is logged against: by default the patient's active one (read
    in the INSERT itself), or a given one, or None for no program. The
    session keeps a snapshot of its phase, sessions/day and reps.
    """
    now, local_date = _local_now(patient)
    params = _log_params(now, local_date, idempotency_key, source)
    params["patient"] = patient.pk
    if assignment is CURRENT_PROGRAM:
        program = "current"
    elif assignment is None:
        program = "none"
    else:
        program = "given"
        params["assignment"] = assignment.pk
    sql = _session_log_sql(connection.vendor, program, _async_commit())
    if sql.rollup is None:  # one statement: atomic on its own
        with connection.cursor() as cursor:
            cursor.execute(sql.log, params)
            row = cursor.fetchone()
    else:
        with transaction.atomic(savepoint=False), connection.cursor() as cursor:
            cursor.execute(sql.log, params)
            row = cursor.fetchone()
            if row is not None:
                params["reps"] = row[1 + _REPS_INDEX]
                cursor.execute(sql.rollup, params)
    if row is None:
        # A replay whose row the statement could not see: a request with the
        # same key committed while this one waited for it. A new statement does.
        row = rawsql.fetch_one(sql.find, params)
    session = sql.columns.load(row, 1)
    session.patient = patient  # the same row: no query when it is used
    return session, bool(row[0])


def session_log_signed_in(
    *,
    session_key: str,
    zone: str,
    idempotency_key: uuid.UUID,
    source: str = SessionSource.APP,
) -> tuple[SessionLog, bool, tuple] | None:
    """``session_log`` for the patient the browser session ``session_key`` signs
    in, found and checked in the log's own statement: a tap in one round trip
    (PostgreSQL; None elsewhere).

    The statement logs only if Django would accept the session now (not
    expired, the user active, the same backend and password as at sign-in:
    accounts.sessions.verified_session_sql), the user is a patient, and their
    time zone is ``zone``, the one the log form was made for: the day the
    session counts on is worked out from it beforehand. Otherwise it writes
    nothing and this returns None, and the caller goes the usual way (the
    session read, then ``session_log``). Returns (session, created, the
    session's row for ``SessionStore.adopt``), the program being the active one.

    As the first statement of a request it is run as its own health check
    (rawsql.fetch_one_first): if the kept connection turns out dead it runs
    once more, which the key makes harmless.
    """
    if connection.vendor != "postgresql" or len(zone) > 64:
        return None
    try:
        zone_info = zone_named(zone)
    except (KeyError, ValueError):  # ZoneInfoNotFoundError is a KeyError
        return None
    now = timezone.now()
    params = _log_params(now, now.astimezone(zone_info).date(), idempotency_key, source)
    params.update(verified_session_params(session_key, zone))
    sql = _session_log_sql(connection.vendor, "current", _async_commit(), signed_in=True)
    row = rawsql.fetch_one_first(sql.log, params)
    if row is None:
        return None
    width = verified_session_width()
    signed_in, row = row[:width], row[width:]
    if row[0] is None:
        # A replay whose row the statement could not see (see session_log).
        params["patient"] = signed_in[-1]
        row = rawsql.fetch_one(sql.find, params)
    return sql.columns.load(row, 1), bool(row[0]), signed_in


def _async_commit() -> bool:
    """Commit this log without waiting for the disk flush (SESSION_LOG_ASYNC_COMMIT).

    PostgreSQL only, and only when the log statement is its own transaction:
    inside someone's ``atomic()`` block the setting would last until that
    block commits and cover its other writes too, so there the log waits
    for the flush like everything else.

    Why: under load the flush is about half of what a tap costs the
    database (``make bench-pages``; pgbench on the statement alone: 4,300
    against 7,600 a second). What it risks: a tap is lost only if the
    database server itself crashes in the fraction of a second before the
    WAL writer (every 200 ms) or any other commit flushes it; nothing is
    ever half-written. The patient then sees one session fewer and the next
    reminder is not skipped. The pain report that follows a tap waits for
    its flush, which flushes the tap too.
    """
    return (
        settings.SESSION_LOG_ASYNC_COMMIT
        and connection.vendor == "postgresql"
        and not connection.in_atomic_block
    )


_REPS_INDEX = [field.attname for field in SessionLog._meta.concrete_fields].index("reps_done")


def _uuid_param(value: uuid.UUID):
    return _UUID_FIELD.get_db_prep_value(value, connection)


_UUID_FIELD = SessionLog._meta.get_field("public_id")
_SOURCES = frozenset(SessionSource.values)


def _lock_patient(patient: Patient) -> None:
    """Serialise this patient's pain reports and rollup rebuilds (row lock until commit).

    ``FOR NO KEY UPDATE``, not ``FOR UPDATE``: a session INSERT checks its
    foreign key to the patient with ``FOR KEY SHARE`` when it commits (Django's
    constraints are deferred), which ``FOR UPDATE`` would block. A rebuild or
    pain report holding that lock while waiting for the log's rollup row
    would then deadlock with the log.
    """
    if connection.features.has_select_for_update:  # SQLite serialises every write anyway
        with connection.cursor() as cursor:
            cursor.execute(_LOCK_PATIENT_SQL.format(patient=_patient_table()), [patient.pk])


_LOCK_PATIENT_SQL = "SELECT id FROM {patient} WHERE id = %s FOR NO KEY UPDATE"


@functools.cache
def _patient_table() -> str:
    return connection.ops.quote_name(Patient._meta.db_table)


def reps_on(*, patient: Patient, local_date: dt.date) -> int:
    total = SessionLog.objects.filter(patient=patient, local_date=local_date).aggregate(
        total=Sum("reps_done")
    )["total"]
    return total or 0


# --- Pain -------------------------------------------------------------------


@dataclass(frozen=True)
class PainFeedback:
    """What to tell the patient after they log pain. Built from stored rows only."""

    report: PainReport
    reps_today: int

    @property
    def centralising(self) -> bool:
        return self.report.trend == PainTrend.CENTRALISING

    @property
    def peripheralising(self) -> bool:
        return self.report.trend == PainTrend.PERIPHERALISING

    @property
    def pain_rising(self) -> bool:
        return alerts.pain_rising(score=self.report.score, baseline=self.report.rise_baseline)

    @property
    def high_pain(self) -> bool:
        return alerts.high_pain(self.report.score)

    @property
    def must_stop(self) -> bool:
        """Stop the exercises and contact the therapist."""
        return self.peripheralising or self.pain_rising

    @property
    def too_many_reps(self) -> bool:
        return alerts.too_many_reps(self.reps_today)

    @property
    def offer_warning_check(self) -> bool:
        return self.high_pain or self.peripheralising


def pain_trend(*, location: str, previous_location: str | None) -> str:
    if not previous_location:
        return PainTrend.FIRST
    now_rank, before_rank = LOCATION_RANK[location], LOCATION_RANK[previous_location]
    if now_rank < before_rank:
        return PainTrend.CENTRALISING
    if now_rank > before_rank:
        return PainTrend.PERIPHERALISING
    return PainTrend.UNCHANGED


# The pain facts a new report is compared with, in one read: this session's
# report if it has one already, the patient's previous report, and the lowest
# score since the start of the "pain rising" window.
_PAIN_FACTS_SQL = """
    SELECT (SELECT id FROM {pain} WHERE session_id = %(session)s),
           prev.score, prev.location,
           (SELECT MIN(score) FROM {pain}
            WHERE patient_id = %(patient)s AND local_date >= %(since)s)
    FROM (SELECT 1 AS one) one
    LEFT JOIN (SELECT score, location FROM {pain} WHERE patient_id = %(patient)s
               ORDER BY reported_at DESC, id DESC LIMIT 1) prev ON TRUE
"""

# One more pain report on the day (reports of a patient are serialised by the
# patient row lock, so this one is the day's latest). Returns the day's reps.
_ROLLUP_ADD_PAIN_SQL = """
    INSERT INTO {rollup} (patient_id, local_date, phase, prescribed, done, extra, reps,
                          pain_first, pain_last, pain_min, pain_max, location,
                          last_session_at, updated_at)
    SELECT %(patient)s, %(local_date)s, COALESCE(p.phase, ''), COALESCE(p.sessions, 0), 0, 0, 0,
           %(score)s, %(score)s, %(score)s, %(score)s, %(location)s, NULL, %(now)s
    FROM (SELECT 1 AS one) one LEFT JOIN ({prescription}) p ON TRUE
    WHERE TRUE
    ON CONFLICT (patient_id, local_date) DO UPDATE SET
        pain_first = COALESCE({rollup}.pain_first, excluded.pain_first),
        pain_last = excluded.pain_last,
        pain_min = CASE WHEN {rollup}.pain_min IS NULL OR excluded.pain_min < {rollup}.pain_min
                        THEN excluded.pain_min ELSE {rollup}.pain_min END,
        pain_max = CASE WHEN {rollup}.pain_max IS NULL OR excluded.pain_max > {rollup}.pain_max
                        THEN excluded.pain_max ELSE {rollup}.pain_max END,
        location = CASE WHEN {new_rank} > {old_rank}
                        THEN excluded.location ELSE {rollup}.location END,
        updated_at = excluded.updated_at
    RETURNING reps
"""


def _location_rank_sql(column: str) -> str:
    """LOCATION_RANK as SQL (-1 for no location yet). The values are our own constants."""
    cases = " ".join(f"WHEN '{value}' THEN {rank}" for value, rank in LOCATION_RANK.items())
    return f"(CASE {column} {cases} ELSE -1 END)"


@functools.cache
def _pain_sql() -> tuple[str, str]:
    tables = _tables()
    rollup = _ROLLUP_ADD_PAIN_SQL.format(
        prescription=_PRESCRIPTION_SQL.format(**tables),
        new_rank=_location_rank_sql("excluded.location"),
        old_rank=_location_rank_sql(f"{tables['rollup']}.location"),
        **tables,
    )
    return _PAIN_FACTS_SQL.format(**tables), rollup


@transaction.atomic
def pain_report_for_session(
    *, session: SessionLog, score: int, location: str, note: str = ""
) -> tuple[PainFeedback, bool]:
    """Record the pain after a session, once. Returns (feedback, created).

    Compares with the patient's previous report: pain moving toward the spine
    is centralising (good); further down the leg is peripheralising, which
    raises an alert, as do a score of 8 or more and a clear rise.
    """
    patient = session.patient
    if not 0 <= score <= 10:
        raise ValueError("score must be 0-10")
    if location not in PainLocation.values:
        raise ValueError("unknown location")
    # Serialise this patient's pain reports (lock the patient row), so two
    # arriving at once each compare with the right previous report.
    _lock_patient(patient)
    now, local_date = _local_now(patient)
    facts_sql, rollup_sql = _pain_sql()
    params = {
        "session": session.pk,
        "patient": patient.pk,
        "since": connection.ops.adapt_datefield_value(alerts.rise_window_start(local_date)),
    }
    with connection.cursor() as cursor:
        cursor.execute(facts_sql, params)
        existing_id, previous_score, previous_location, baseline = cursor.fetchone()
    if existing_id is not None:
        existing = PainReport.objects.get(pk=existing_id)
        return PainFeedback(
            existing, reps_on(patient=patient, local_date=existing.local_date)
        ), False
    report = PainReport.objects.create(
        patient=patient,
        session=session,
        reported_at=now,
        local_date=local_date,
        score=score,
        location=location,
        trend=pain_trend(location=location, previous_location=previous_location),
        previous_score=previous_score,
        previous_location=previous_location or "",
        rise_baseline=baseline,
        note=(note or "").strip()[:2000],
    )
    params.update(
        local_date=connection.ops.adapt_datefield_value(local_date),
        now=connection.ops.adapt_datetimefield_value(now),
        score=score,
        location=location,
        ended=PhaseChange.Kind.ENDED,
    )
    with connection.cursor() as cursor:
        cursor.execute(rollup_sql, params)
        (reps_today,) = cursor.fetchone()
    feedback = PainFeedback(report, reps_today)
    where = report.get_location_display()
    if report.note:
        where = _("%(where)s; the patient wrote: “%(note)s”") % {
            "where": where,
            "note": report.note[:300],
        }
    for spec in alerts.pain_alerts(
        local_date=local_date,
        score=score,
        location_label=where,
        trend=report.trend,
        previous_location=report.previous_location,
        baseline=baseline,
        reps_today=feedback.reps_today,
    ):
        alert_raise(
            patient=patient,
            kind=spec.kind,
            severity=spec.severity,
            period_key=spec.period_key,
            message=spec.message,
        )
    return feedback, True


# --- Warning signs ------------------------------------------------------------


@transaction.atomic
def red_flag_report_create(
    *,
    patient: Patient,
    bladder: bool = False,
    bowel: bool = False,
    saddle_numbness: bool = False,
    leg_weakness: bool = False,
) -> RedFlagReport:
    """Store a warning-sign report and alert the therapist by email at once."""
    if not (bladder or bowel or saddle_numbness or leg_weakness):
        raise ValueError("A red-flag report needs at least one sign.")
    action = RedFlagAction.EMERGENCY if (bladder or bowel) else RedFlagAction.CALL_DOCTOR
    report = RedFlagReport.objects.create(
        patient=patient,
        reported_at=timezone.now(),
        bladder=bladder,
        bowel=bowel,
        saddle_numbness=saddle_numbness,
        leg_weakness=leg_weakness,
        action=action,
    )
    signs = [
        str(RedFlagReport._meta.get_field(name).verbose_name)
        for name in ("bladder", "bowel", "saddle_numbness", "leg_weakness")
        if getattr(report, name)
    ]
    alert_raise(
        patient=patient,
        kind=Alert.Kind.RED_FLAG,
        severity=alerts.severity_of(Alert.Kind.RED_FLAG),
        period_key=str(report.public_id),
        message=_("Warning signs reported: %(signs)s. The patient was told: %(action)s.")
        % {"signs": ", ".join(signs), "action": report.get_action_display()},
    )
    return report


# --- Alerts -------------------------------------------------------------------


_ALERT_INSERT_SQL = """
    INSERT INTO {alert} (patient_id, therapist_id, kind, severity, period_key, message,
                         created_at, email_attempts)
    VALUES (%(patient)s, %(therapist)s, %(kind)s, %(severity)s, %(period_key)s, %(message)s,
            %(now)s, 0)
    ON CONFLICT (patient_id, kind, period_key) DO NOTHING
    RETURNING id
"""


def alert_raise(
    *, patient: Patient, kind: str, severity: str, period_key: str, message: str
) -> Alert | None:
    """Create the alert once per (patient, kind, period). Returns it if new.

    A new urgent alert is emailed by a Celery task after the surrounding
    transaction commits; routine ones wait for the daily digest. One
    statement: the unique constraint decides, also against a concurrent writer.
    """
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            _ALERT_INSERT_SQL.format(alert=_tables()["alert"]),
            {
                "patient": patient.pk,
                "therapist": patient.therapist_id,
                "kind": kind,
                "severity": severity,
                "period_key": period_key,
                "message": message,
                "now": connection.ops.adapt_datetimefield_value(now),
            },
        )
        row = cursor.fetchone()
    if row is None:
        return None  # raised before (or by a concurrent writer)
    alert = Alert(
        id=row[0],
        patient=patient,
        therapist_id=patient.therapist_id,
        kind=kind,
        severity=severity,
        period_key=period_key,
        message=message,
        created_at=now,
    )
    alert._state.adding = False
    alert._state.db = connection.alias
    if severity == Alert.Severity.URGENT:
        # Celery's ``delay_on_commit`` without its one weakness: if the broker
        # is down, the error must not turn the patient's page (the emergency
        # instruction!) into a 500 after the report is already saved. The
        # alert keeps ``emailed_at`` empty, so a sweep can still send it.
        transaction.on_commit(partial(_enqueue_alert_email, alert.pk), robust=True)
    return alert


def _enqueue_alert_email(alert_id: int) -> None:
    from symptoms.tasks import alert_send_email

    alert_send_email.delay(alert_id)


def alert_email_send(*, alert_id: int) -> bool:
    """Email the therapist about one alert, once. True if this call sent it.

    ``emailed_at`` is stamped only after the mail server accepted the message,
    so a failure leaves it empty for the task's retry.
    """
    alert = (
        Alert.objects.select_related("patient__user", "therapist")
        .filter(pk=alert_id, emailed_at__isnull=True)
        .first()
    )
    if alert is None:
        return False
    context = {
        "alert": alert,
        "patient": alert.patient,
        "admin_url": settings.SITE_URL
        + reverse("admin:patients_patient_change", args=[alert.patient.pk]),
        "urgent": alert.severity == Alert.Severity.URGENT,
    }
    prefix = _("URGENT") if context["urgent"] else _("Alert")
    message = EmailMultiAlternatives(
        subject=f"[{prefix}] {alert.get_kind_display()}: {alert.patient}",
        body=render_to_string("symptoms/email/alert.txt", context),
        to=[alert.therapist.email],
    )
    message.attach_alternative(render_to_string("symptoms/email/alert.html", context), "text/html")
    message.send()
    return (
        Alert.objects.filter(pk=alert.pk, emailed_at__isnull=True).update(emailed_at=timezone.now())
        == 1
    )


def alert_acknowledge(*, alert: Alert, user: User) -> bool:
    """Mark an alert seen by ``user``. False if it already was."""
    return alert_acknowledge_many(alert_ids=[alert.pk], user=user) == 1


def alert_acknowledge_many(*, alert_ids: list[int], user: User) -> int:
    """Acknowledge several alerts at once (the caller has scoped the ids)."""
    return Alert.objects.filter(pk__in=alert_ids, acknowledged_at__isnull=True).update(
        acknowledged_at=timezone.now(), acknowledged_by=user
    )


# --- Urgent alerts whose email never went (the broker or SMTP was down) -------------------

URGENT_RESEND_AFTER = dt.timedelta(minutes=2)  # leave the immediate task time to run
URGENT_RESEND_WITHIN = dt.timedelta(days=2)  # older than this: the admin and page show it
URGENT_RESEND_MAX_ATTEMPTS = 5


def alert_urgent_resend_due(*, now: dt.datetime | None = None) -> list[int]:
    """Claim urgent alerts still unsent, one attempt each; the caller enqueues them.

    Bounded: each alert is re-sent by the sweep at most URGENT_RESEND_MAX_ATTEMPTS
    times (a conditional UPDATE claims each attempt, so two sweeps never double it).
    """
    now = now or timezone.now()
    candidates = list(
        Alert.objects.filter(
            severity=Alert.Severity.URGENT,
            emailed_at__isnull=True,
            created_at__lte=now - URGENT_RESEND_AFTER,
            created_at__gte=now - URGENT_RESEND_WITHIN,
            email_attempts__lt=URGENT_RESEND_MAX_ATTEMPTS,
        ).values_list("pk", "email_attempts")[:200]
    )
    claimed = []
    for pk, attempts in candidates:
        if Alert.objects.filter(pk=pk, email_attempts=attempts, emailed_at__isnull=True).update(
            email_attempts=attempts + 1
        ):
            claimed.append(pk)
    return claimed


# --- The daily digest of routine alerts ---------------------------------------------------

DIGEST_SENDING_TIMEOUT = dt.timedelta(minutes=10)
DIGEST_MAX_ATTEMPTS = 8


def _digest_claimable() -> Q:
    return Q(
        severity=Alert.Severity.ROUTINE,
        digest__isnull=True,
        emailed_at__isnull=True,
        acknowledged_at__isnull=True,
    )


def alert_digests_create(*, now: dt.datetime | None = None) -> list[int]:
    """Today's digest for every therapist with new routine alerts, once a day.

    Runs from the digest hour (``ALERT_DIGEST_HOUR``, clinic time) on. The
    digest row is unique per therapist and clinic date; its alerts are
    claimed into it when it is created, so each alert is in exactly one
    digest, and alerts raised later wait for tomorrow's.
    """
    now = now or timezone.now()
    local = timezone.localtime(now)
    if local.hour < settings.ALERT_DIGEST_HOUR:
        return []
    today = local.date()
    therapist_ids = list(
        Alert.objects.filter(_digest_claimable())
        .values_list("therapist_id", flat=True)
        .distinct()
        .order_by()
    )
    created_ids = []
    for therapist_id in therapist_ids:
        with transaction.atomic():
            digest, created = AlertDigest.objects.get_or_create(
                therapist_id=therapist_id, day=today
            )
            if not created:
                continue
            claimed = Alert.objects.filter(_digest_claimable(), therapist_id=therapist_id).update(
                digest=digest
            )
            if claimed:
                created_ids.append(digest.pk)
            else:
                digest.delete()
    return created_ids


def alert_digests_due() -> list[int]:
    """Digests not sent yet (new, or a failed send), for the task to (re)send."""
    return list(
        AlertDigest.objects.filter(sent_at__isnull=True, attempts__lt=DIGEST_MAX_ATTEMPTS)
        .order_by("created_at")
        .values_list("pk", flat=True)[:500]
    )


def alert_digest_send(*, digest_id: int, now: dt.datetime | None = None) -> bool:
    """Send one digest email, once. True if this call sent it.

    A send is claimed by a conditional UPDATE on ``sending_since`` (a crashed
    sender's claim expires), and ``sent_at`` plus every alert's ``emailed_at``
    are stamped only after the mail server accepted the message.
    """
    now = now or timezone.now()
    claimed = (
        AlertDigest.objects.filter(pk=digest_id, sent_at__isnull=True)
        .filter(Q(sending_since__isnull=True) | Q(sending_since__lt=now - DIGEST_SENDING_TIMEOUT))
        .update(sending_since=now, attempts=F("attempts") + 1)
    )
    if not claimed:
        return False
    digest = AlertDigest.objects.select_related("therapist").get(pk=digest_id)
    items = list(
        digest.alerts.select_related("patient__user").order_by(
            "patient__user__full_name", "patient_id", "created_at"
        )
    )
    try:
        if items:
            _send_digest_email(digest=digest, items=items)
    except Exception:
        AlertDigest.objects.filter(pk=digest_id).update(sending_since=None)
        raise
    sent_at = timezone.now()
    AlertDigest.objects.filter(pk=digest_id, sent_at__isnull=True).update(
        sent_at=sent_at, sending_since=None
    )
    Alert.objects.filter(digest=digest, emailed_at__isnull=True).update(emailed_at=sent_at)
    return True


def _send_digest_email(*, digest: AlertDigest, items: list[Alert]) -> None:
    by_patient: dict[int, dict] = {}
    for alert in items:
        entry = by_patient.setdefault(
            alert.patient_id,
            {
                "patient": alert.patient,
                "url": settings.SITE_URL
                + reverse("staff:patient", kwargs={"public_id": alert.patient.public_id}),
                "alerts": [],
            },
        )
        entry["alerts"].append(alert)
    context = {
        "digest": digest,
        "therapist": digest.therapist,
        "patients": list(by_patient.values()),
        "count": len(items),
        "review_url": settings.SITE_URL + reverse("staff:review"),
    }
    message = EmailMultiAlternatives(
        subject=_("Daily alert digest: %(count)d new alert(s) for %(day)s")
        % {"count": len(items), "day": digest.day.isoformat()},
        body=render_to_string("symptoms/email/digest.txt", context),
        to=[digest.therapist.email],
    )
    message.attach_alternative(render_to_string("symptoms/email/digest.html", context), "text/html")
    message.send()


# --- The adherence rollup ------------------------------------------------------------------


def phase_changes_by_patient(patient_ids) -> dict[int, list[adherence.Change]]:
    """Every program change of these patients, in the order they happened (one query)."""
    result: dict[int, list[adherence.Change]] = {}
    rows = (
        PhaseChange.objects.filter(assignment__patient_id__in=patient_ids)
        .order_by("changed_at", "id")
        .values_list(
            "assignment__patient_id", "effective_on", "kind", "to_phase", "to_sessions_per_day"
        )
    )
    for patient_id, effective_on, kind, phase, sessions in rows:
        result.setdefault(patient_id, []).append(
            adherence.Change(effective_on, kind, phase, sessions)
        )
    return result


ROLLUP_FIELDS = [
    "phase",
    "prescribed",
    "done",
    "extra",
    "reps",
    "pain_first",
    "pain_last",
    "pain_min",
    "pain_max",
    "location",
    "last_session_at",
    "updated_at",
]


def adherence_rebuild(*, patient: Patient | int, first: dt.date, last: dt.date) -> int:
    """Recompute the rollup rows of ``first``..``last`` from the records themselves.

    The session log, the pain reports and the phase history are the source of
    truth; this makes the rollup agree with them for those days (a row for
    every day with something prescribed or logged, none for the others).
    Called inside the writer's transaction, after locking the patient row.
    Returns the number of rows written.
    """
    patient_id = patient if isinstance(patient, int) else patient.pk
    with transaction.atomic(savepoint=False):
        _rollup_lock(patient_id, first, last)
        return _adherence_rebuild(patient_id, first, last)


def _rollup_lock(patient_id: int, first: dt.date, last: dt.date) -> None:
    """Hold the rollup rows of ``first``..``last`` against session logs until commit.

    Logs add to a day's row without any other lock (``session_log``). A
    rebuild must not overwrite an increment whose session it did not read,
    so before reading anything it locks every row of the range: a log that
    already wrote one has committed by then (and its session is read), a log
    that has not yet written one waits and adds to the rebuilt row. Sessions
    are only logged on the patient's current local date, which is the last
    day of every caller's range (the day before it too, around midnight):
    rows for those are made to exist first, so a log about to create one
    waits as well. Rows left with nothing are deleted by the rebuild.

    One window remains, closed by the periodic ``adherence_recheck_changed``:
    a log whose statement began before a program change committed and that
    creates the day's row after this rebuild deleted it (the program ended
    that day) writes the prescription it read before the change.
    """
    if not connection.features.has_select_for_update:
        return  # SQLite: one writer at a time, nothing to interleave
    live = [day for day in (last - dt.timedelta(days=1), last) if day >= first]
    DailyAdherence.objects.bulk_create(
        [DailyAdherence(patient_id=patient_id, local_date=day) for day in live],
        ignore_conflicts=True,
    )
    list(
        DailyAdherence.objects.select_for_update()
        .filter(patient_id=patient_id, local_date__range=(first, last))
        .values_list("pk", flat=True)
    )


def _adherence_rebuild(patient_id: int, first: dt.date, last: dt.date) -> int:
    sessions = {
        row["local_date"]: row
        for row in SessionLog.objects.filter(patient_id=patient_id, local_date__range=(first, last))
        .values("local_date")
        .annotate(logged=Count("id"), reps=Sum("reps_done"), last_at=Max("logged_at"))
        .order_by()
    }
    pains: dict[dt.date, list[tuple[int, str]]] = {}
    for local_date, score, location in (
        PainReport.objects.filter(patient_id=patient_id, local_date__range=(first, last))
        .order_by("reported_at", "id")
        .values_list("local_date", "score", "location")
    ):
        pains.setdefault(local_date, []).append((score, location))
    prescriptions = adherence.prescriptions_for(
        phase_changes_by_patient([patient_id]).get(patient_id, []), first, last
    )
    rows = []
    for day, prescription in prescriptions.items():
        logged = sessions.get(day)
        scores = pains.get(day)
        if not (prescription.sessions or logged or scores):
            continue
        done, extra = adherence.split_sessions(
            logged=logged["logged"] if logged else 0, prescribed=prescription.sessions
        )
        rows.append(
            DailyAdherence(
                patient_id=patient_id,
                local_date=day,
                phase=prescription.phase,
                prescribed=prescription.sessions,
                done=done,
                extra=extra,
                reps=(logged["reps"] or 0) if logged else 0,
                pain_first=scores[0][0] if scores else None,
                pain_last=scores[-1][0] if scores else None,
                pain_min=min(s for s, _ in scores) if scores else None,
                pain_max=max(s for s, _ in scores) if scores else None,
                location=max((loc for _, loc in scores), key=LOCATION_RANK.__getitem__)
                if scores
                else "",
                last_session_at=logged["last_at"] if logged else None,
            )
        )
    if rows:
        DailyAdherence.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["patient", "local_date"],
            update_fields=ROLLUP_FIELDS,
        )
    if len(rows) != len(prescriptions):
        DailyAdherence.objects.filter(
            patient_id=patient_id, local_date__range=(first, last)
        ).exclude(local_date__in=[row.local_date for row in rows]).delete()
    return len(rows)


REBUILD_MAX_DAYS = 400


@transaction.atomic
def adherence_program_changed(*, patient: Patient) -> int:
    """Re-derive the rollup from the latest program change's date on (the cap may move)."""
    _lock_patient(patient)
    today = patient_local_today(patient)
    latest = (
        PhaseChange.objects.filter(assignment__patient=patient)
        .order_by("-effective_on")
        .values_list("effective_on", flat=True)
        .first()
    )
    if latest is None:
        return 0
    first = max(min(latest, today), today - dt.timedelta(days=REBUILD_MAX_DAYS))
    return adherence_rebuild(patient=patient, first=first, last=today)


def adherence_rebuild_patient(
    *, patient: Patient, days: int = REBUILD_MAX_DAYS, now: dt.datetime | None = None
) -> int:
    """Backfill: rebuild the last ``days`` local days of one patient's rollup."""
    with transaction.atomic():
        _lock_patient(patient)
        today = patient_local_today(patient, now)
        return adherence_rebuild(
            patient=patient, first=today - dt.timedelta(days=days - 1), last=today
        )


# Programs changed this long ago (and not longer) have their last two days
# re-derived by the periodic task: see adherence_recheck_changed.
RECHECK_CHANGED_AFTER = dt.timedelta(minutes=5)
RECHECK_CHANGED_WITHIN = dt.timedelta(hours=2)


def adherence_recheck_changed(*, now: dt.datetime | None = None) -> int:
    """Re-derive today and yesterday for patients whose program changed lately.

    The safety net for one race the locks cannot close: a session log whose
    statement began before a program change committed, and which only wrote
    the day's rollup row after that change's own rebuild had deleted it (a
    program ended that day), creates the row with the prescription it read
    before the change. Any such log has long finished five minutes later,
    and the hourly task sees every change at least once between five
    minutes and two hours old. Returns the number of patients rebuilt.
    """
    now = now or timezone.now()
    patient_ids = set(
        PhaseChange.objects.filter(
            changed_at__range=(now - RECHECK_CHANGED_WITHIN, now - RECHECK_CHANGED_AFTER)
        ).values_list("assignment__patient_id", flat=True)
    )
    patients = Patient.objects.filter(pk__in=patient_ids).order_by("pk").only("pk", "timezone")
    for patient in patients:
        adherence_rebuild_patient(patient=patient, days=2, now=now)
    return len(patient_ids)


MATERIALISE_DAYS_BACK = 3


def adherence_materialise(
    *, now: dt.datetime | None = None, days_back: int = MATERIALISE_DAYS_BACK, batch: int = 2000
) -> int:
    """Rows for prescribed days nobody logged anything on (today and ``days_back`` before).

    Periodic. Existing rows are left alone (writers keep them current); a
    missing row is one where nothing was logged, so it holds zeros and the
    day's prescription. Beat down for longer than ``days_back``: run
    ``manage.py adherence_rebuild``. Also re-derives the last two days of
    programs changed lately (``adherence_recheck_changed``).
    """
    now = now or timezone.now()
    adherence_recheck_changed(now=now)
    local_today = LocalToday(now)
    written = 0
    active = (
        Assignment.objects.filter(status=Assignment.Status.ACTIVE)
        .order_by("patient_id")
        .values_list("patient_id", "patient__timezone", "started_on")
    )
    last_id = 0
    while True:
        chunk = list(active.filter(patient_id__gt=last_id)[:batch])
        if not chunk:
            return written
        last_id = chunk[-1][0]
        changes = phase_changes_by_patient([patient_id for patient_id, _, _ in chunk])
        rows = []
        for patient_id, zone, started_on in chunk:
            today = local_today(zone)
            first = max(started_on, today - dt.timedelta(days=days_back))
            for day, prescription in adherence.prescriptions_for(
                changes.get(patient_id, []), first, today
            ).items():
                if prescription.sessions:
                    rows.append(
                        DailyAdherence(
                            patient_id=patient_id,
                            local_date=day,
                            phase=prescription.phase,
                            prescribed=prescription.sessions,
                        )
                    )
        DailyAdherence.objects.bulk_create(rows, ignore_conflicts=True, batch_size=1000)
        written += len(rows)


# --- Time-based alert rules -----------------------------------------------------------------


def alerts_evaluate_time_rules(*, now: dt.datetime | None = None, batch: int = 1000) -> int:
    """Evaluate the time-based rules for every patient on a program. Returns alerts raised.

    Periodic (hourly, so each patient is checked soon after their own local
    midnight). Reads only the rollup, through index lookups per patient.
    """
    now = now or timezone.now()
    local_today = LocalToday(now)
    rollup = DailyAdherence.objects.filter(patient_id=OuterRef("patient_id"))
    on_program = rollup.filter(local_date__gte=OuterRef("started_on"), pain_first__isnull=False)
    active = (
        Assignment.objects.filter(status=Assignment.Status.ACTIVE)
        .order_by("pk")
        .annotate(
            last_session_on=Subquery(
                rollup.filter(Q(done__gt=0) | Q(extra__gt=0))
                .order_by("-local_date")
                .values("local_date")[:1]
            ),
            first_pain_on=Subquery(on_program.order_by("local_date").values("local_date")[:1]),
            first_pain=Subquery(on_program.order_by("local_date").values("pain_first")[:1]),
            last_pain_on=Subquery(on_program.order_by("-local_date").values("local_date")[:1]),
            last_pain=Subquery(on_program.order_by("-local_date").values("pain_last")[:1]),
        )
        .select_related("patient")
        .only(
            "pk",
            "public_id",
            "started_on",
            "current_phase",
            "phase_started_on",
            "patient__id",
            "patient__timezone",
            "patient__therapist_id",
        )
    )
    raised = 0
    last_pk = 0
    while True:
        chunk = list(active.filter(pk__gt=last_pk)[:batch])
        if not chunk:
            return raised
        last_pk = chunk[-1].pk
        for assignment in chunk:
            facts = alerts.ProgramFacts(
                program_key=str(assignment.public_id),
                started_on=assignment.started_on,
                phase=assignment.current_phase,
                phase_started_on=assignment.phase_started_on,
                today=local_today(assignment.patient.timezone),
                last_session_on=assignment.last_session_on,
                first_pain=(assignment.first_pain_on, assignment.first_pain)
                if assignment.first_pain_on
                else None,
                last_pain=(assignment.last_pain_on, assignment.last_pain)
                if assignment.last_pain_on
                else None,
            )
            for spec in alerts.time_alerts(facts):
                if alert_raise(
                    patient=assignment.patient,
                    kind=spec.kind,
                    severity=spec.severity,
                    period_key=spec.period_key,
                    message=spec.message,
                ):
                    raised += 1
