"""Reads for the staff pages (review, patient detail, export), scoped to the asking user.

Everything here reads the per-patient-per-day rollup (``DailyAdherence``),
never the session log, and makes a fixed number of queries whatever the
number of rows shown.

The review list is the hot path (a therapist opens it many times a day), so
it is plain SQL, portable between PostgreSQL and SQLite, instead of ORM
querysets (whose compilation alone cost more than the database's work):

1. ``review_query``: the page of patients, filtered and sorted, each with
   their active phase and open alerts (``LIMIT``/``OFFSET``; a ``COUNT(*)``
   only when there is more than one page). Sorting or filtering by adherence
   adds the time zones in scope (one query) and a derived table of every
   patient's window, which also counts the rows (``COUNT(*) OVER ()``).
2. ``review_rows``: the rollup of those patients, aggregated by the
   database in one statement: the 7- and 30-day sums and today's, windows on
   each patient's own local date, the last session, and the sparkline's 14
   days packed into two integers (``PainDays``).

The export has the database write each day's CSV columns
(``export_line_sql``) and streams them through a server-side cursor.
"""

# The SQL below is built from constant fragments and table names taken from the
# models; every value (ids, dates, search text) is passed as a parameter.
# ruff: noqa: S608

from __future__ import annotations

import datetime as dt
import functools
import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from django.db import connection
from django.db.models import F
from django.http import Http404

from accounts.models import THERAPISTS_GROUP, User, is_clinic_admin
from patients.models import Assignment, Patient, PhaseChange
from patients.selectors import patients_for_staff
from patients.zones import LocalToday
from programs.phases import PHASE_ORDER
from symptoms import adherence
from symptoms.models import LOCATION_RANK, Alert, DailyAdherence, PainReport, PainTrend

SPARK_DAYS = 14
PAGE_SIZE = 50

SORT_LABELS = {
    "name": "Patient",
    "therapist": "Therapist",
    "phase": "Phase",
    "day": "Day in phase",
    "adherence7": "7-day adherence",
    "adherence30": "30-day adherence",
    "last_session": "Last session",
    "alerts": "Open alerts",
}


def is_clinical_staff(user) -> bool:
    return bool(
        user.is_authenticated
        and user.is_active
        and user.is_staff
        and (is_clinic_admin(user) or getattr(user, "is_therapist", False))
    )


class TherapistChoice(NamedTuple):
    pk: int
    full_name: str
    email: str

    def get_full_name(self) -> str:
        return self.full_name or self.email


def therapists_for_filter(user: User) -> list[TherapistChoice]:
    """The therapists a clinic admin can filter by (therapists see only themselves)."""
    if not is_clinic_admin(user):
        return []
    t = _tables()
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT u.id, u.full_name, u.email FROM {t['user']} u "
            "WHERE u.is_active AND u.is_staff AND EXISTS ("
            f"SELECT 1 FROM {t['user_groups']} ug JOIN {t['group']} g ON g.id = ug.group_id "
            "WHERE ug.user_id = u.id AND g.name = %s) "
            "ORDER BY u.full_name, u.email",
            [THERAPISTS_GROUP],
        )
        return [TherapistChoice(*row) for row in cursor.fetchall()]


# --- Values from plain SQL ----------------------------------------------------------------
# PostgreSQL returns typed values; SQLite returns text for UUIDs and for
# timestamps computed by an expression (MAX(...)), and naive datetimes.


def _uuid_text(value) -> str:
    """A UUID's canonical text (PostgreSQL gives it; SQLite stores 32 hex digits)."""
    text = str(value)
    return text if len(text) == 36 else str(uuid.UUID(text))


def _alerts(text: str | None) -> list[OpenAlert]:
    """Open alerts from "id kind severity created_at" items, comma separated; newest first."""
    if not text:
        return []
    alerts = []
    for item in text.split(","):
        pk, kind, severity, created_at = item.split(" ", 3)
        alerts.append(OpenAlert(int(pk), kind, severity, _aware(created_at)))
    alerts.sort(key=lambda alert: (alert.created_at, alert.pk), reverse=True)
    return alerts


def _aware(value) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value


def _date(value) -> dt.date | None:
    if value is None or isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


@functools.cache
def _tables() -> dict[str, str]:
    return {
        "patient": Patient._meta.db_table,
        "user": User._meta.db_table,
        "assignment": Assignment._meta.db_table,
        "rollup": DailyAdherence._meta.db_table,
        "alert": Alert._meta.db_table,
        "user_groups": User.groups.through._meta.db_table,
        "group": User.groups.field.related_model._meta.db_table,
    }


def _placeholders(values: Sequence) -> str:
    return ", ".join(["%s"] * len(values))


# --- The review list --------------------------------------------------------------------


@dataclass(frozen=True)
class ReviewFilters:
    therapist: int | None = None
    phase: str = ""  # a Phase value, "none" (no program) or "" (any)
    at_risk: bool = False
    has_alerts: bool = False
    search: str = ""
    sort: str = "name"
    descending: bool = False


@dataclass(slots=True)
class OpenAlert:
    """An open alert as a review row shows it (no model instance: 50 rows, many alerts)."""

    pk: int
    kind: str
    severity: str
    created_at: dt.datetime
    message: str = ""
    acknowledged_at: None = None
    acknowledged_by_id: None = None


@dataclass(slots=True)
class ReviewPatient:
    """What a review row needs of a patient (read in one statement, no model instances)."""

    pk: int
    public_id: str  # the UUID's canonical text
    timezone: str
    therapist_id: int
    full_name: str
    email: str
    therapist_full_name: str
    therapist_email: str
    phase: str | None  # the active program's current phase, None without a program
    phase_started_on: dt.date | None
    alerts: list[OpenAlert]  # open alerts, newest first

    @property
    def name(self) -> str:
        """As ``User.get_full_name``: the full name, else the email address."""
        return self.full_name or self.email

    @property
    def therapist_name(self) -> str:
        return self.therapist_full_name or self.therapist_email


@dataclass
class ReviewQuery:
    """The SQL of one review list: rows in order (``page``) and how many (``count``)."""

    select: str
    select_params: list
    source: str  # FROM ... WHERE ..., shared by the page and the count
    source_params: list
    order: str
    count_source: str
    count_params: list
    count_in_page: bool = False  # the page's statement counts all rows (COUNT(*) OVER ())
    total: int | None = field(default=None, init=False)

    def page(self, limit: int, offset: int) -> list[ReviewPatient]:
        total = ", COUNT(*) OVER ()" if self.count_in_page else ""
        with connection.cursor() as cursor:
            # LIMIT and OFFSET written in (integers): a prepared statement's generic
            # plan then knows how few rows are wanted, and PostgreSQL can keep it
            # instead of planning each time.
            cursor.execute(
                f"SELECT {self.select}{total} {self.source} ORDER BY {self.order} "
                f"LIMIT {int(limit)} OFFSET {int(offset)}",
                [*self.select_params, *self.source_params],
            )
            rows = cursor.fetchall()
        if self.count_in_page and rows:
            self.total = rows[0][-1]
        return [
            ReviewPatient(
                pk,
                _uuid_text(public_id),
                zone,
                therapist_id,
                name,
                email,
                therapist_name,
                therapist_email,
                phase,
                _date(started),
                _alerts(alerts),
            )
            for (
                pk,
                public_id,
                zone,
                therapist_id,
                name,
                email,
                therapist_name,
                therapist_email,
                phase,
                started,
                alerts,
                *_sort,
            ) in rows
        ]

    def count(self) -> int:
        if self.total is not None:
            return self.total
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT COUNT(*) {self.count_source}", self.count_params)
            return cursor.fetchone()[0]


def _zone_groups(zones: Iterable[str], today: LocalToday) -> dict[dt.date, list[str]]:
    groups: dict[dt.date, list[str]] = {}
    for zone in sorted(set(zones)):
        groups.setdefault(today(zone), []).append(zone)
    return groups


def _per_zone_date(groups: dict[dt.date, list[str]], offset: int, column: str) -> tuple[str, list]:
    """SQL for each patient's local today minus ``offset`` days (``column``: their zone)."""
    if len(groups) == 1:
        (day,) = groups
        return "%s", [day - dt.timedelta(days=offset)]
    sql, params = [], []
    for day, zones in sorted(groups.items()):
        sql.append(f"WHEN {column} IN ({_placeholders(zones)}) THEN %s")
        params += [*zones, day - dt.timedelta(days=offset)]
    return f"CASE {' '.join(sql)} END", params


def _adherence_source(
    days: int, scope: str, scope_params: list, zones: list[str], today: LocalToday
) -> tuple[str, list]:
    """A derived table: each patient's done and prescribed over the ``days`` complete days.

    The window sits on each patient's own local date (``adherence.window``);
    ``scope`` (SQL on ``r.patient_id``) limits it to the patients in scope.
    """
    t = _tables()
    groups = _zone_groups(zones, today) or {today.now.date(): ["UTC"]}
    since, since_params = _per_zone_date(groups, days, "rp.timezone")
    until, until_params = _per_zone_date(groups, 0, "rp.timezone")
    # Several local dates: each row's window from its patient's zone.
    join = f" JOIN {t['patient']} rp ON rp.id = r.patient_id" if len(groups) > 1 else ""
    sql = (
        f"SELECT r.patient_id AS patient_id, SUM(r.done) AS done, SUM(r.prescribed) AS prescribed "
        f"FROM {t['rollup']} r{join} "
        f"WHERE r.local_date >= %s AND r.local_date < %s "
        f"AND r.local_date >= {since} AND r.local_date < {until}{scope} "
        f"GROUP BY r.patient_id"
    )
    earliest = min(groups) - dt.timedelta(days=days)
    params = [earliest, max(groups), *since_params, *until_params, *scope_params]
    return sql, params


def review_query(
    user: User, filters: ReviewFilters, today: LocalToday | None = None
) -> ReviewQuery:
    """The patients this user may review, filtered and sorted (see ``ReviewQuery``).

    Scope as ``patients.selectors.patients_for_staff``: clinic admins every
    patient, therapists their own, anyone else nobody. Adherence is computed
    for every patient in scope only when a filter or the sort needs it (one
    more query, for the time zones in scope); otherwise each page's figures
    come from ``review_rows``.
    """
    today = today or LocalToday()
    t = _tables()
    where: list[str] = []
    where_params: list = []
    name_params: list = []  # for the therapist's name and email, when they are the user's
    therapist = None
    if not is_clinical_staff(user):
        where.append("1 = 0")
    elif not is_clinic_admin(user):
        therapist = user.pk
    elif filters.therapist:
        therapist = filters.therapist
    if therapist is not None:
        where.append("p.therapist_id = %s")
        where_params.append(therapist)
        # One therapist's patients (tens to hundreds): look each name up by primary key.
        # Joining the user table instead makes PostgreSQL scan all of it.
        names = {
            column: f"(SELECT {field} FROM {t['user']} WHERE id = p.{key})"
            for column, key, field in (
                ("patient_name", "user_id", "full_name"),
                ("patient_email", "user_id", "email"),
                ("therapist_name", "therapist_id", "full_name"),
                ("therapist_email", "therapist_id", "email"),
            )
        }
        if therapist == user.pk:  # their own patients: the therapist is the user
            names["therapist_name"], names["therapist_email"] = "%s", "%s"
            name_params = [user.full_name, user.email]
        name_joins = ""
    else:
        # The clinic: walk the patients in name order (index on user (full_name, email)).
        names = {
            "patient_name": "u.full_name",
            "patient_email": "u.email",
            "therapist_name": "tu.full_name",
            "therapist_email": "tu.email",
        }
        name_joins = (
            f" JOIN {t['user']} u ON u.id = p.user_id JOIN {t['user']} tu ON tu.id = p.therapist_id"
        )
    assignment_join = f" LEFT JOIN {t['assignment']} a ON a.patient_id = p.id AND a.status = %s"
    assignment_params = [Assignment.Status.ACTIVE.value]

    needs_names = needs_assignment = False
    if filters.phase == "none":
        where.append("a.id IS NULL")
        needs_assignment = True
    elif filters.phase:
        where.append("a.current_phase = %s")
        where_params.append(filters.phase)
        needs_assignment = True
    if filters.search:
        pattern = f"%{connection.ops.prep_for_like_query(filters.search)}%"
        where.append(
            f"(UPPER({names['patient_name']}) LIKE UPPER(%s) ESCAPE '\\' "
            f"OR UPPER({names['patient_email']}) LIKE UPPER(%s) ESCAPE '\\')"
        )
        where_params += [pattern, pattern]
        needs_names = True
    if filters.has_alerts:
        where.append(
            f"EXISTS (SELECT 1 FROM {t['alert']} al "
            "WHERE al.patient_id = p.id AND al.acknowledged_at IS NULL)"
        )

    adherence_join, adherence_params = "", []
    windows = []  # the adherence windows the filter or the sort needs, in days
    if filters.at_risk or filters.sort == "adherence7":
        windows.append(adherence.WINDOW_SHORT)
    if filters.sort == "adherence30":
        windows.append(adherence.WINDOW_LONG)
    if windows:
        zone_sql, zone_params = f"SELECT DISTINCT timezone FROM {t['patient']}", []
        scope, scope_params = "", []
        if therapist is not None:
            zone_sql += " WHERE therapist_id = %s"
            zone_params = [therapist]
            scope = f" AND r.patient_id IN (SELECT id FROM {t['patient']} WHERE therapist_id = %s)"
            scope_params = [therapist]
        with connection.cursor() as cursor:
            cursor.execute(zone_sql, zone_params)
            zones = [zone for (zone,) in cursor.fetchall()]
        for days in windows:
            derived, params = _adherence_source(days, scope, scope_params, zones, today)
            adherence_join += f" LEFT JOIN ({derived}) adh{days} ON adh{days}.patient_id = p.id"
            adherence_params += params
        if filters.at_risk:
            ratio, days = adherence.ADHERENT_FROM, adherence.WINDOW_SHORT
            where.append(
                f"adh{days}.done * {ratio.denominator} < adh{days}.prescribed * {ratio.numerator}"
            )

    joined = "string_agg" if connection.vendor == "postgresql" else "group_concat"
    select = [
        "p.id",
        "CAST(p.public_id AS TEXT)",
        "p.timezone",
        "p.therapist_id",
        *(f"{sql} AS {alias}" for alias, sql in names.items()),
        "a.current_phase",
        "a.phase_started_on",
        # The open alerts, "id kind severity created_at" each (see _alerts).
        f"(SELECT {joined}(CAST(al.id AS TEXT) || ' ' || al.kind || ' ' || al.severity "
        f"|| ' ' || CAST(al.created_at AS TEXT), ',') FROM {t['alert']} al "
        "WHERE al.patient_id = p.id AND al.acknowledged_at IS NULL)",
    ]
    select_params: list = list(name_params)
    sort = filters.sort if filters.sort in SORT_KEYS else "name"
    descending = filters.descending
    if sort == "phase":
        whens = " ".join("WHEN %s THEN %s" for _ in PHASE_ORDER)
        select.append(f"CASE a.current_phase {whens} ELSE %s END AS phase_rank")
        for rank, phase in enumerate(PHASE_ORDER):
            select_params += [str(phase), rank]
        select_params.append(len(PHASE_ORDER))
    elif sort == "day":
        descending = not descending  # ascending "day in phase": the most recent start first
    elif sort in {"adherence7", "adherence30"}:
        days = adherence.WINDOW_SHORT if sort == "adherence7" else adherence.WINDOW_LONG
        select.append(
            f"adh{days}.done * 100.0 / NULLIF(adh{days}.prescribed, 0) AS adherence_ratio"
        )
    elif sort == "last_session":
        select.append(
            f"(SELECT r.last_session_at FROM {t['rollup']} r WHERE r.patient_id = p.id "
            "AND r.last_session_at IS NOT NULL ORDER BY r.local_date DESC LIMIT 1) AS last_session"
        )
    elif sort == "alerts":
        select.append(
            f"(SELECT NULLIF(COUNT(*), 0) FROM {t['alert']} al "
            "WHERE al.patient_id = p.id AND al.acknowledged_at IS NULL) AS open_alerts"
        )
    first, *rest = SORT_KEYS[sort]
    direction = "DESC" if descending else "ASC"
    nulls = "" if first in NOT_NULL_SORT_KEYS else " NULLS LAST"
    order = ", ".join([f"{first} {direction}{nulls}", *(f"{key} ASC" for key in rest)])

    joins = name_joins + assignment_join + adherence_join
    condition = f" WHERE {' AND '.join(where)}" if where else ""
    source = f"FROM {t['patient']} p{joins}{condition}"
    source_params = [*assignment_params, *adherence_params, *where_params]
    # The count joins only what its conditions need.
    count_joins = (
        (name_joins if needs_names and therapist is None else "")
        + (assignment_join if needs_assignment else "")
        + (adherence_join if filters.at_risk else "")
    )
    count_params = [
        *(assignment_params if needs_assignment else []),
        *(adherence_params if filters.at_risk else []),
        *where_params,
    ]
    return ReviewQuery(
        select=", ".join(select),
        select_params=select_params,
        source=source,
        source_params=source_params,
        order=order,
        count_source=f"FROM {t['patient']} p{count_joins}{condition}",
        count_params=count_params,
        # Adherence makes the database read every patient in scope anyway: it
        # counts them in the same statement.
        count_in_page=bool(windows),
    )


# The ORDER BY of each sort: output columns of ``review_query``'s SELECT.
SORT_KEYS = {
    "name": ("patient_name", "patient_email", "p.id"),
    "therapist": ("therapist_name", "therapist_email", "patient_name", "p.id"),
    "phase": ("phase_rank", "patient_name", "p.id"),
    "day": ("a.phase_started_on", "patient_name", "p.id"),  # longest in phase first
    "adherence7": ("adherence_ratio", "patient_name", "p.id"),
    "adherence30": ("adherence_ratio", "patient_name", "p.id"),
    "last_session": ("last_session", "patient_name", "p.id"),
    "alerts": ("open_alerts", "patient_name", "p.id"),
}
# Never NULL: sorted without NULLS LAST, so that PostgreSQL can read them off an index.
NOT_NULL_SORT_KEYS = {"patient_name", "therapist_name", "phase_rank"}


@dataclass(frozen=True, slots=True)
class PainDays:
    """The sparkline's days: each day's last pain score and how far the pain reached.

    The database packs them (``_rollup_sql``) into two integers, a small field
    per day: day ``k`` (0 = ``first``) holds its score + 1 at bits
    ``4k..4k+3`` and its location's rank + 1 (``LOCATION_RANK``) at bits
    ``3k..3k+2``; 0 means nothing that day. 14 days fit in 56 and 42 bits.
    Hashable, so the table's pain cell is memoised on it.
    """

    first: dt.date
    scores: int
    places: int

    MAX_SCORE = 10
    SCORE_BITS = 4
    PLACE_BITS = 3
    PLACE_CODES = {place: rank + 1 for place, rank in LOCATION_RANK.items()}
    PLACES = {code: place for place, code in PLACE_CODES.items()}

    @property
    def points(self) -> list[tuple[dt.date, int | None]]:
        """(day, score or None) for each of the days."""
        scores = self.scores
        return [
            (day, code - 1 if (code := (scores >> (4 * index)) & 15) else None)
            for index, day in enumerate(_spark_days(self.first))
        ]

    def _place(self, index: int) -> tuple[dt.date, str]:
        code = (self.places >> (3 * index)) & 7
        return self.first + dt.timedelta(days=index), self.PLACES[code]

    @property
    def latest_place(self) -> tuple[dt.date, str] | None:
        """The last day with a location, and the location."""
        if not self.places:
            return None
        return self._place((self.places.bit_length() - 1) // 3)

    @property
    def trend(self) -> str:
        """A ``PainTrend``: the latest location against the earliest, "" with none."""
        places = self.places
        if not places:
            return ""
        earliest = ((places & -places).bit_length() - 1) // 3
        latest = (places.bit_length() - 1) // 3
        if earliest == latest:
            return PainTrend.FIRST
        before = LOCATION_RANK[self._place(earliest)[1]]
        now = LOCATION_RANK[self._place(latest)[1]]
        if now < before:
            return PainTrend.CENTRALISING
        if now > before:
            return PainTrend.PERIPHERALISING
        return PainTrend.UNCHANGED


assert len(LOCATION_RANK) < 2**PainDays.PLACE_BITS
assert PainDays.MAX_SCORE + 1 < 2**PainDays.SCORE_BITS
assert SPARK_DAYS * PainDays.SCORE_BITS < 63


@dataclass
class ReviewRow:
    patient: ReviewPatient
    today: dt.date
    phase: adherence.PhaseProgress | None
    week: adherence.Adherence
    month: adherence.Adherence
    today_done: int
    today_prescribed: int
    today_extra: int
    pain: PainDays  # the last 14 days' scores and locations
    last_session_at: dt.datetime | None
    alerts: list[OpenAlert] = field(default_factory=list)

    @property
    def at_risk(self) -> bool:
        return self.week.adherent is False

    @property
    def spark(self) -> list[tuple[dt.date, int | None]]:
        return self.pain.points

    @property
    def location(self) -> str:
        """The latest day's most distal location in the 14 days, "" if none."""
        latest = self.pain.latest_place
        return latest[1] if latest else ""

    @property
    def location_on(self) -> dt.date | None:
        latest = self.pain.latest_place
        return latest[0] if latest else None

    @property
    def trend(self) -> str:
        """Centralising or peripheralising over the 14 days (a ``PainTrend``), "" if no location."""
        return self.pain.trend


def _in(column: str, name: str) -> str:
    """``column`` is one of the list parameter ``name`` (an array on PostgreSQL)."""
    if connection.vendor == "postgresql":
        return f"{column} = ANY(%({name})s)"
    return f"{column} IN (SELECT value FROM json_each(%({name})s))"


def _list_param(values: Sequence[int]):
    return list(values) if connection.vendor == "postgresql" else json.dumps(list(values))


def _day_index(column: str, first: str) -> str:
    """SQL: how many days ``column`` (a date) is after the date parameter ``first``."""
    if connection.vendor == "postgresql":
        return f"({column} - %({first})s)"
    return f"CAST(julianday({column}) - julianday(%({first})s) AS INTEGER)"


def _rollup_sql(ids: Sequence[int], day: dt.date, n: int) -> tuple[str, dict]:
    """One SELECT: the rollup of patients whose local today is ``day``, one row each.

    The 7- and 30-day windows are the complete days before ``day``
    (``adherence.window``). The sparkline's 14 days up to ``day`` come back
    packed into two integers (see ``PainDays``). ``n`` numbers the parameters
    (several SELECTs make one statement).
    """
    t = _tables()
    sums = []
    for condition in (
        f"r.local_date >= %(week{n})s AND r.local_date < %(day{n})s",
        f"r.local_date < %(day{n})s",
        f"r.local_date = %(day{n})s",
    ):
        for column in ("prescribed", "done", "extra"):
            sums.append(f"SUM(r.{column}) FILTER (WHERE {condition})")
    index = _day_index("r.local_date", f"spark{n}")
    # One row per patient and day (unique), so each day's field is added once: SUM is OR.
    score = (
        f"CASE WHEN r.pain_last BETWEEN 0 AND {PainDays.MAX_SCORE} THEN r.pain_last + 1 ELSE 0 END"
    )
    place = " ".join(f"WHEN %(place{code})s THEN {code}" for code in PainDays.PLACE_CODES.values())
    in_spark = f"FILTER (WHERE r.local_date >= %(spark{n})s AND r.local_date <= %(day{n})s)"
    sql = (
        f"SELECT r.patient_id, {', '.join(sums)}, MAX(r.last_session_at), "
        # (PostgreSQL sums BIGINTs as NUMERIC: cast back.)
        f"CAST(SUM(CAST({score} AS BIGINT) << ({PainDays.SCORE_BITS} * {index})) {in_spark} "
        "AS BIGINT), "
        f"CAST(SUM(CAST(CASE r.location {place} ELSE 0 END AS BIGINT) "
        f"<< ({PainDays.PLACE_BITS} * {index})) {in_spark} AS BIGINT) "
        f"FROM {t['rollup']} r WHERE {_in('r.patient_id', f'ids{n}')} "
        f"AND r.local_date >= %(month{n})s GROUP BY r.patient_id"
    )
    params = {
        f"day{n}": day,
        f"week{n}": day - dt.timedelta(days=adherence.WINDOW_SHORT),
        f"month{n}": day - dt.timedelta(days=adherence.WINDOW_LONG),
        f"spark{n}": day - dt.timedelta(days=SPARK_DAYS - 1),
        f"ids{n}": _list_param(ids),
        **{f"place{code}": place for place, code in PainDays.PLACE_CODES.items()},
    }
    return sql, params


@functools.lru_cache(maxsize=64)
def _spark_days(first: dt.date) -> tuple[dt.date, ...]:
    """The sparkline's days from ``first``."""
    return tuple(first + dt.timedelta(days=n) for n in range(SPARK_DAYS))


@functools.lru_cache(maxsize=4096)
def _phase_progress(phase: str, started_on: dt.date, day: dt.date) -> adherence.PhaseProgress:
    return adherence.phase_progress(phase=phase, started_on=started_on, today=day)


def review_rows(patients: list[ReviewPatient], today: LocalToday | None = None) -> list[ReviewRow]:
    """The figures for the patients of one page: two queries, whatever their number.

    The database sums each patient's 7- and 30-day windows (and today) from
    the rollup, windows placed on each patient's own local date (one SELECT
    per distinct local date, joined with UNION ALL: one statement), and hands
    back the last 14 days' pain and location; then the open alerts.
    """
    today = today or LocalToday()
    if not patients:
        return []
    local_today = {patient.pk: today(patient.timezone) for patient in patients}
    by_day: dict[dt.date, list[int]] = {}
    for pk, day in local_today.items():
        by_day.setdefault(day, []).append(pk)
    parts = [_rollup_sql(ids, day, n) for n, (day, ids) in enumerate(sorted(by_day.items()))]
    sql = " UNION ALL ".join(part for part, _ in parts)
    params = {name: value for _, values in parts for name, value in values.items()}
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        figures = {row[0]: row for row in cursor.fetchall()}

    nothing = (None,) * 13
    firsts = {day: day - dt.timedelta(days=SPARK_DAYS - 1) for day in by_day}
    rows = []
    for patient in patients:
        day = local_today[patient.pk]
        (_pk, p7, d7, e7, p30, d30, e30, pt, dt_, et, last, scores, places) = figures.get(
            patient.pk, nothing
        )
        rows.append(
            ReviewRow(
                patient=patient,
                today=day,
                phase=_phase_progress(patient.phase, patient.phase_started_on, day)
                if patient.phase
                else None,
                week=adherence.Adherence(done=d7 or 0, prescribed=p7 or 0, extra=e7 or 0),
                month=adherence.Adherence(done=d30 or 0, prescribed=p30 or 0, extra=e30 or 0),
                today_done=dt_ or 0,
                today_prescribed=pt or 0,
                today_extra=et or 0,
                pain=PainDays(firsts[day], scores or 0, places or 0),
                last_session_at=_aware(last),
                alerts=patient.alerts,
            )
        )
    return rows


# --- One patient --------------------------------------------------------------------------


def patient_for_review(user: User, public_id) -> Patient:
    """The patient, if this user may see them; 404 otherwise (never a hint it exists)."""
    patient = patients_for_staff(user).filter(public_id=public_id).first()
    if patient is None:
        raise Http404("No such patient.")
    return patient


def patient_rollup(patient: Patient, first: dt.date, last: dt.date) -> list[DailyAdherence]:
    return list(
        DailyAdherence.objects.filter(patient=patient, local_date__range=(first, last)).order_by(
            "local_date"
        )
    )


def patient_phase_history(patient: Patient) -> list[PhaseChange]:
    return list(
        PhaseChange.objects.filter(assignment__patient=patient)
        .select_related("assignment__template", "changed_by")
        .order_by("changed_at", "id")
    )


def patient_alerts(patient: Patient, limit: int = 50) -> list[Alert]:
    """Open alerts first (newest first), then the latest acknowledged ones."""
    return list(
        Alert.objects.filter(patient=patient)
        .select_related("acknowledged_by")
        .order_by(F("acknowledged_at").desc(nulls_first=True), "-created_at")[:limit]
    )


def patient_notes(patient: Patient, limit: int = 30) -> list[PainReport]:
    return list(
        PainReport.objects.filter(patient=patient)
        .exclude(note="")
        .order_by("-reported_at")
        .only("reported_at", "local_date", "score", "location", "note")[:limit]
    )


def alert_for_staff(user: User, pk: int) -> Alert:
    alert = (
        Alert.objects.filter(pk=pk, patient__in=patients_for_staff(user).values("pk"))
        .select_related("patient", "acknowledged_by")
        .first()
    )
    if alert is None:
        raise Http404("No such alert.")
    return alert


# --- The CSV export -------------------------------------------------------------------------


def export_line_sql() -> str:
    """SQL: the day's columns of an export line (after the patient's), as CSV text.

    date, phase, sessions prescribed, done, extra, adherence percent,
    adherent (yes/no), reps, pain last, pain max, most distal location:
    numbers, an ISO date and fixed identifiers, none needing CSV quoting.
    The percent and the verdict follow ``adherence.percent`` and
    ``adherence.is_adherent`` (integers, rounded down; "" without anything
    prescribed), which a test checks on every value.
    """
    ratio = adherence.ADHERENT_FROM

    def text(expression: str) -> str:
        return f"COALESCE(CAST({expression} AS TEXT), '')"

    percent = "CASE WHEN r.prescribed > 0 THEN r.done * 100 / r.prescribed END"
    adherent = (
        "CASE WHEN r.prescribed > 0 THEN CASE WHEN "
        f"r.done * {ratio.denominator} >= r.prescribed * {ratio.numerator} "
        "THEN 'yes' ELSE 'no' END ELSE '' END"
    )
    columns = [
        # YYYY-MM-DD: SQLite keeps dates as ISO text; PostgreSQL writes them so in
        # the ISO DateStyle, which psycopg needs anyway (and to_char costs twice as much).
        "CAST(r.local_date AS TEXT)",
        "r.phase",
        text("r.prescribed"),
        text("r.done"),
        text("r.extra"),
        text(percent),
        adherent,
        text("r.reps"),
        text("r.pain_last"),
        text("r.pain_max"),
        "r.location",
    ]
    return " || ',' || ".join(columns)


def export_rows(user: User, *, first: dt.date, last: dt.date, therapist: int | None, chunk: int):
    """Batches of (patient info by id, [(patient id, the day's CSV columns)]), ``chunk`` rows each.

    The rollup is read in (patient, date) order straight off its unique index
    through a server-side cursor, each day's columns already written as CSV
    text by the database (``export_line_sql``); names are fetched per batch
    for the patients in it only, so memory stays flat however large the clinic.
    """
    t = _tables()
    scope, params = "", [first, last]
    if not is_clinical_staff(user):
        scope = " AND 1 = 0"
    elif not is_clinic_admin(user) or therapist:
        scope = f" AND r.patient_id IN (SELECT id FROM {t['patient']} WHERE therapist_id = %s)"
        params.append(user.pk if not is_clinic_admin(user) else therapist)
    sql = (
        f"SELECT r.patient_id, {export_line_sql()} FROM {t['rollup']} r "
        f"WHERE r.local_date BETWEEN %s AND %s{scope} ORDER BY r.patient_id, r.local_date"
    )
    info: dict[int, tuple] = {}

    def with_names(batch: list[tuple]):
        ids = {row[0] for row in batch}
        missing = ids - info.keys()
        if missing:
            keep = {pk: info[pk] for pk in ids & info.keys()}  # memory stays per batch
            info.clear()
            info.update(keep)
            with connection.cursor() as names:
                names.execute(
                    f"SELECT p.id, CAST(p.public_id AS TEXT), u.full_name, u.email, tu.email "
                    f"FROM {t['patient']} p JOIN {t['user']} u ON u.id = p.user_id "
                    f"JOIN {t['user']} tu ON tu.id = p.therapist_id "
                    f"WHERE {_in('p.id', 'ids')}",
                    {"ids": _list_param(sorted(missing))},
                )
                for pk, public_id, name, email, therapist_email in names.fetchall():
                    info[pk] = (_uuid_text(public_id), name, email, therapist_email)
        return info, batch

    with connection.chunked_cursor() as cursor:
        cursor.execute(sql, params)
        while batch := cursor.fetchmany(chunk):
            yield with_names(batch)
