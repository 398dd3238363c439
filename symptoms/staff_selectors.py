"""Reads for the staff pages (review, patient detail, export), scoped to the asking user.

Everything here reads the per-patient-per-day rollup (``DailyAdherence``),
never the session log, and makes a fixed number of queries whatever the
number of rows shown: the patients of one page, then one query each for
their rollup rows and their open alerts.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db.models import (
    Case,
    Count,
    DateField,
    Exists,
    F,
    FilteredRelation,
    FloatField,
    IntegerField,
    Max,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Cast, NullIf
from django.http import Http404
from django.utils import timezone

from accounts.models import THERAPISTS_GROUP, User, is_clinic_admin
from patients.models import Assignment, Patient, PhaseChange
from patients.selectors import patients_for_staff
from programs.phases import PHASE_ORDER
from symptoms import adherence
from symptoms.models import LOCATION_RANK, Alert, DailyAdherence, PainReport, PainTrend

SPARK_DAYS = 14
PAGE_SIZE = 50
# What a review row shows: loading nothing else keeps 50 rows cheap.
ROW_FIELDS = (
    "public_id",
    "timezone",
    "therapist_id",
    "user_id",
    "user__full_name",
    "user__email",
    "therapist__full_name",
    "therapist__email",
)

SORTS = {
    "name": ("user__full_name", "user__email", "pk"),
    "therapist": ("therapist__full_name", "therapist__email", "user__full_name", "pk"),
    "phase": ("_phase_rank", "user__full_name", "pk"),
    "day": ("_phase_started", "user__full_name", "pk"),  # longest in phase first
    "adherence7": ("_adh7", "user__full_name", "pk"),
    "adherence30": ("_adh30", "user__full_name", "pk"),
    "last_session": ("_last_session", "user__full_name", "pk"),
    "alerts": ("_open_alerts", "user__full_name", "pk"),
}
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


def therapists_for_filter(user: User) -> list[User]:
    """The therapists a clinic admin can filter by (therapists see only themselves)."""
    if not is_clinic_admin(user):
        return []
    return list(
        User.objects.filter(is_active=True, is_staff=True, groups__name=THERAPISTS_GROUP)
        .order_by("full_name", "email")
        .only("pk", "full_name", "email")
    )


# --- Local dates ------------------------------------------------------------------------


class LocalToday:
    """Each time zone's local date at one instant (cached per zone)."""

    def __init__(self, now: dt.datetime | None = None):
        self.now = now or timezone.now()
        self._cache: dict[str, dt.date] = {}

    def __call__(self, zone: str) -> dt.date:
        if zone not in self._cache:
            self._cache[zone] = self.now.astimezone(zoneinfo.ZoneInfo(zone)).date()
        return self._cache[zone]


def _per_zone_date(zones: Iterable[str], today: LocalToday, offset: int) -> Case | Value:
    """An SQL expression: the patient's local today minus ``offset`` days."""
    groups: dict[dt.date, list[str]] = {}
    for zone in zones:
        groups.setdefault(today(zone) - dt.timedelta(days=offset), []).append(zone)
    if not groups:
        return Value(today.now.date(), output_field=DateField())
    whens = [When(timezone__in=sorted(zs), then=Value(day)) for day, zs in sorted(groups.items())]
    return Case(*whens, default=Value(None), output_field=DateField())


# --- The review list --------------------------------------------------------------------


@dataclass
class ReviewFilters:
    therapist: int | None = None
    phase: str = ""  # a Phase value, "none" (no program) or "" (any)
    at_risk: bool = False
    has_alerts: bool = False
    search: str = ""
    sort: str = "name"
    descending: bool = False

    @property
    def needs_adherence(self) -> bool:
        return self.at_risk or self.sort in {"adherence7", "adherence30"}


def _adherence_ratio(days: int) -> Subquery:
    """Percent done/prescribed over the ``days`` complete days before the patient's today."""
    rows = (
        DailyAdherence.objects.filter(
            patient_id=OuterRef("pk"),
            local_date__gte=OuterRef(f"_from{days}"),
            local_date__lt=OuterRef("_today"),
        )
        .order_by()
        .values("patient_id")
        .annotate(
            ratio=Cast(Sum("done"), FloatField())
            * 100.0
            / NullIf(Cast(Sum("prescribed"), FloatField()), 0.0)
        )
        .values("ratio")
    )
    return Subquery(rows, output_field=FloatField())


def review_patients(
    user: User, filters: ReviewFilters, today: LocalToday | None = None
) -> QuerySet[Patient]:
    """The patients this user may review, filtered and sorted, not yet sliced.

    Adherence is computed in SQL (from the rollup) only when a filter or the
    sort needs it; otherwise each page's figures come from ``review_rows``.
    """
    today = today or LocalToday()
    patients = (
        patients_for_staff(user)
        .only(*ROW_FIELDS)
        .annotate(
            _active=FilteredRelation(
                "assignments", condition=Q(assignments__status=Assignment.Status.ACTIVE)
            )
        )
        .annotate(
            _phase=F("_active__current_phase"),
            _phase_started=F("_active__phase_started_on"),
        )
    )
    if filters.therapist and is_clinic_admin(user):
        patients = patients.filter(therapist_id=filters.therapist)
    if filters.phase == "none":
        patients = patients.filter(_phase__isnull=True)
    elif filters.phase:
        patients = patients.filter(_phase=filters.phase)
    if filters.search:
        patients = patients.filter(
            Q(user__full_name__icontains=filters.search) | Q(user__email__icontains=filters.search)
        )
    open_alerts = Alert.objects.filter(patient_id=OuterRef("pk"), acknowledged_at__isnull=True)
    if filters.has_alerts:
        patients = patients.filter(Exists(open_alerts))
    if filters.needs_adherence:
        zones = list(patients.order_by().values_list("timezone", flat=True).distinct())
        patients = patients.annotate(
            _today=_per_zone_date(zones, today, 0),
            _from7=_per_zone_date(zones, today, adherence.WINDOW_SHORT),
            _from30=_per_zone_date(zones, today, adherence.WINDOW_LONG),
        ).annotate(_adh7=_adherence_ratio(7), _adh30=_adherence_ratio(30))
        if filters.at_risk:
            patients = patients.filter(_adh7__lt=float(adherence.ADHERENT_FROM * 100))
    sort = filters.sort if filters.sort in SORTS else "name"
    if sort == "phase":
        patients = patients.annotate(
            _phase_rank=Case(
                *[When(_phase=phase, then=Value(rank)) for rank, phase in enumerate(PHASE_ORDER)],
                default=Value(len(PHASE_ORDER)),
                output_field=IntegerField(),
            )
        )
    elif sort == "last_session":
        patients = patients.annotate(
            _last_session=Subquery(
                DailyAdherence.objects.filter(
                    patient_id=OuterRef("pk"), last_session_at__isnull=False
                )
                .order_by("-local_date")
                .values("last_session_at")[:1]
            )
        )
    elif sort == "alerts":
        patients = patients.annotate(
            _open_alerts=Subquery(
                open_alerts.order_by().values("patient_id").annotate(n=Count("pk")).values("n"),
                output_field=IntegerField(),
            )
        )
    keys = SORTS[sort]
    descending = filters.descending
    if sort == "day":  # "day in phase" ascending means the most recent phase start first
        descending = not descending
    ordering = []
    for index, key in enumerate(keys):
        expression = F(key)
        if index == 0:
            ordering.append(
                expression.desc(nulls_last=True) if descending else expression.asc(nulls_last=True)
            )
        else:
            ordering.append(expression.asc())
    return patients.order_by(*ordering)


@dataclass
class ReviewRow:
    patient: Patient
    today: dt.date
    phase: adherence.PhaseProgress | None
    week: adherence.Adherence
    month: adherence.Adherence
    today_done: int
    today_prescribed: int
    today_extra: int
    spark: list[tuple[dt.date, int | None]]
    location: str  # the latest day's most distal location, "" if none in the window
    location_on: dt.date | None
    trend: str  # a PainTrend value, or "" without a location
    last_session_at: dt.datetime | None
    alerts: list[Alert] = field(default_factory=list)

    @property
    def at_risk(self) -> bool:
        return self.week.adherent is False


def location_trend(located: list[tuple[dt.date, str]], *, since: dt.date) -> str:
    """Where the pain reaches on the latest day, against the earliest day since ``since``.

    Centralising (moving toward the spine) or peripheralising (further down
    the leg) over the sparkline's days; "first" with one day to go on; "" when
    the latest location is older than that.
    """
    recent = [(day, where) for day, where in located if day >= since]
    if not recent:
        return ""
    if len(recent) == 1:
        return PainTrend.FIRST
    before, now = LOCATION_RANK[recent[0][1]], LOCATION_RANK[recent[-1][1]]
    if now < before:
        return PainTrend.CENTRALISING
    if now > before:
        return PainTrend.PERIPHERALISING
    return PainTrend.UNCHANGED


def _days(first: dt.date, count: int) -> list[dt.date]:
    return [first + dt.timedelta(days=offset) for offset in range(count)]


def review_rows(patients: list[Patient], today: LocalToday | None = None) -> list[ReviewRow]:
    """The figures for the patients of one page: three queries, whatever their number.

    The database sums each patient's 7- and 30-day windows (and today) from
    the rollup, windows placed on each patient's own local date; then the
    last 14 days' pain and location come back for the sparkline; then the
    open alerts. ``patients`` come from ``review_patients`` (they carry the
    active phase).
    """
    today = today or LocalToday()
    if not patients:
        return []
    ids = [patient.pk for patient in patients]
    local_today = {patient.pk: today(patient.timezone) for patient in patients}
    zones_by_day: dict[dt.date, set[str]] = {}
    for patient in patients:
        zones_by_day.setdefault(local_today[patient.pk], set()).add(patient.timezone)
    single = len(zones_by_day) == 1  # the usual case: one clinic, one local date

    def per_zone(first_offset: int, last_offset: int) -> Q:
        """From ``first_offset`` to ``last_offset`` days before each patient's local today."""
        condition = Q()
        for day, zones in zones_by_day.items():
            dates = Q(
                local_date__range=(
                    day - dt.timedelta(days=first_offset),
                    day - dt.timedelta(days=last_offset),
                )
            )
            condition |= dates if single else dates & Q(patient__timezone__in=sorted(zones))
        return condition

    def in_window(days: int) -> Q:
        """The ``days`` complete days before each patient's today (see adherence.window)."""
        return per_zone(days, 1)

    def on_today() -> Q:
        return per_zone(0, 0)

    earliest = min(local_today.values()) - dt.timedelta(days=adherence.WINDOW_LONG)
    rollup = DailyAdherence.objects.filter(patient_id__in=ids, local_date__gte=earliest)
    week, month, now = (
        in_window(adherence.WINDOW_SHORT),
        in_window(adherence.WINDOW_LONG),
        on_today(),
    )
    sums = {
        row["patient_id"]: row
        for row in rollup.order_by()
        .values("patient_id")
        .annotate(
            p7=Sum("prescribed", filter=week),
            d7=Sum("done", filter=week),
            e7=Sum("extra", filter=week),
            p30=Sum("prescribed", filter=month),
            d30=Sum("done", filter=month),
            e30=Sum("extra", filter=month),
            pt=Sum("prescribed", filter=now),
            dt=Sum("done", filter=now),
            et=Sum("extra", filter=now),
            last=Max("last_session_at"),
        )
    }
    spark_from = {pk: day - dt.timedelta(days=SPARK_DAYS - 1) for pk, day in local_today.items()}
    pains: dict[int, list[tuple[dt.date, int | None, str]]] = {pk: [] for pk in ids}
    for patient_id, local_date, pain, location in (
        rollup.filter(local_date__gte=min(spark_from.values()))
        .exclude(pain_last__isnull=True, location="")
        .order_by("patient_id", "local_date")
        .values_list("patient_id", "local_date", "pain_last", "location")
    ):
        if local_date >= spark_from[patient_id]:
            pains[patient_id].append((local_date, pain, location))
    alerts_by_patient: dict[int, list[Alert]] = {pk: [] for pk in ids}
    for alert in Alert.objects.filter(patient_id__in=ids, acknowledged_at__isnull=True).order_by(
        "-created_at"
    ):
        alerts_by_patient[alert.patient_id].append(alert)

    empty: dict = {}
    rows = []
    for patient in patients:
        day = local_today[patient.pk]
        got = sums.get(patient.pk, empty)
        recent = pains[patient.pk]
        pain_by_day = {d: score for d, score, _ in recent if score is not None}
        located = [(d, where) for d, _, where in recent if where]
        first = spark_from[patient.pk]
        phase = getattr(patient, "_phase", None)
        rows.append(
            ReviewRow(
                patient=patient,
                today=day,
                phase=adherence.phase_progress(
                    phase=phase, started_on=patient._phase_started, today=day
                )
                if phase
                else None,
                week=adherence.Adherence(
                    done=got.get("d7") or 0, prescribed=got.get("p7") or 0, extra=got.get("e7") or 0
                ),
                month=adherence.Adherence(
                    done=got.get("d30") or 0,
                    prescribed=got.get("p30") or 0,
                    extra=got.get("e30") or 0,
                ),
                today_done=got.get("dt") or 0,
                today_prescribed=got.get("pt") or 0,
                today_extra=got.get("et") or 0,
                spark=[(d, pain_by_day.get(d)) for d in _days(first, SPARK_DAYS)],
                location=located[-1][1] if located else "",
                location_on=located[-1][0] if located else None,
                trend=location_trend(located, since=first),
                last_session_at=got.get("last"),
                alerts=alerts_by_patient[patient.pk],
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


def export_rows(user: User, *, first: dt.date, last: dt.date, therapist: int | None, chunk: int):
    """Batches of (patient info by id, rollup rows) for the export, ``chunk`` rows each.

    The rollup is read in (patient, date) order straight off its unique index
    through a server-side cursor; names are fetched per batch for the patients
    in it only, so memory stays flat however large the clinic.
    """
    rollup = DailyAdherence.objects.filter(local_date__range=(first, last))
    if not is_clinical_staff(user):
        rollup = rollup.none()
    elif not is_clinic_admin(user):
        rollup = rollup.filter(patient__therapist=user)
    elif therapist:
        rollup = rollup.filter(patient__therapist_id=therapist)
    rows = rollup.order_by("patient_id", "local_date").values_list(
        "patient_id",
        "local_date",
        "phase",
        "prescribed",
        "done",
        "extra",
        "reps",
        "pain_last",
        "pain_max",
        "location",
    )
    info: dict[int, tuple] = {}

    def with_names(batch: list[tuple]):
        ids = {row[0] for row in batch}
        missing = ids - info.keys()
        if missing:
            keep = {pk: info[pk] for pk in ids & info.keys()}  # memory stays per batch
            info.clear()
            info.update(keep)
            for pk, public_id, name, email, therapist_email in Patient.objects.filter(
                pk__in=missing
            ).values_list("pk", "public_id", "user__full_name", "user__email", "therapist__email"):
                info[pk] = (public_id, name, email, therapist_email)
        return info, batch

    batch: list[tuple] = []
    for row in rows.iterator(chunk_size=chunk):
        batch.append(row)
        if len(batch) >= chunk:
            yield with_names(batch)
            batch = []
    if batch:
        yield with_names(batch)
