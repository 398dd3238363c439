"""Staff pages: the adherence review, one patient's detail, alert acknowledgement, export.

Mounted at ``/staff/`` (``symptoms/staff_urls.py``). Therapists see their own
patients, clinic admins everyone; anything else is a 404, and signed-out
visitors go to the admin sign-in. Every read of patient records is audited.
Pages work without JavaScript; htmx swaps only the part that changed (the
review's results, built by ``staff_render``; an acknowledged alert).
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from django import forms
from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpRequest, HttpResponse, QueryDict, StreamingHttpResponse
from django.middleware.csrf import get_token
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import get_language, gettext_lazy
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from accounts.models import is_clinic_admin
from audit.models import AuditAction
from audit.services import audit_record
from patients.models import PhaseChange
from patients.selectors import patient_active_assignment
from patients.services import patient_local_today
from patients.zones import LocalToday
from programs.phases import Phase
from symptoms import adherence, charts, services
from symptoms import staff_render as html
from symptoms import staff_selectors as selectors

# --- Access ----------------------------------------------------------------------------


def staff_required(view: Callable) -> Callable:
    """Therapists and clinic admins only. Signed out: the admin sign-in; others: 404."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path(), reverse("admin:login"))
        if not selectors.is_clinical_staff(request.user):
            raise Http404("Not found.")
        return view(request, *args, **kwargs)

    return wrapper


# --- The review page ---------------------------------------------------------------------

PHASE_FILTER_CHOICES = [
    ("", gettext_lazy("Any phase")),
    *Phase.choices,
    ("none", gettext_lazy("No program")),
]


class TherapistChoiceForm(forms.Form):
    """A form with a "therapist" field: the choices for a clinic admin, gone for a therapist."""

    def __init__(self, *args, therapists=(), **kwargs):
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        if therapists:
            self.fields["therapist"].choices = [("", _("All therapists"))] + [
                (str(t.pk), t.get_full_name()) for t in therapists
            ]
        else:
            del self.fields["therapist"]


class ReviewFilterForm(TherapistChoiceForm):
    q = forms.CharField(label=gettext_lazy("Name or email"), required=False, max_length=100)
    therapist = forms.TypedChoiceField(
        label=gettext_lazy("Therapist"), required=False, coerce=int, empty_value=None
    )
    phase = forms.ChoiceField(
        label=gettext_lazy("Phase"), required=False, choices=PHASE_FILTER_CHOICES
    )
    at_risk = forms.BooleanField(
        label=gettext_lazy("At risk (under 80% over 7 days)"), required=False
    )
    alerts = forms.BooleanField(label=gettext_lazy("Has open alerts"), required=False)
    sort = forms.ChoiceField(
        label=gettext_lazy("Sort by"),
        required=False,
        choices=[(key, gettext_lazy(label)) for key, label in selectors.SORT_LABELS.items()],
    )
    desc = forms.BooleanField(label=gettext_lazy("Descending"), required=False)

    def filters(self) -> selectors.ReviewFilters:
        data = self.cleaned_data if self.is_valid() else {}
        return selectors.ReviewFilters(
            therapist=data.get("therapist"),
            phase=data.get("phase") or "",
            at_risk=bool(data.get("at_risk")),
            has_alerts=bool(data.get("alerts")),
            search=(data.get("q") or "").strip(),
            sort=data.get("sort") or "name",
            descending=bool(data.get("desc")),
        )


def _query_without(query: QueryDict, *names: str, **extra) -> str:
    query = query.copy()
    for name in (*names, *extra):
        query.pop(name, None)
    for name, value in extra.items():
        if value not in (None, "", False):
            query[name] = value
    return query.urlencode()


MAX_PAGE_NUMBER = 100_000  # far beyond any clinic; past the end shows page 1


@dataclass
class ReviewPage:
    """A page of the review list; counts all rows only when there is more than one page.

    (A therapist's list usually fits one page, so its COUNT(*) is skipped.)
    """

    number: int
    object_list: list
    count: int
    size: int
    has_next: bool

    @classmethod
    def of(cls, query: selectors.ReviewQuery, number, size: int) -> ReviewPage:
        try:
            # Bounded: a huge ?page= would overflow the database's OFFSET.
            number = min(max(1, int(number)), MAX_PAGE_NUMBER)
        except (TypeError, ValueError):
            number = 1
        fetched = query.page(size + 1, (number - 1) * size)
        if not fetched and number > 1:  # past the end: the first page
            number, fetched = 1, query.page(size + 1, 0)
        has_next = len(fetched) > size
        rows = fetched[:size]
        count = query.count() if has_next or number > 1 else len(rows)
        return cls(number=number, object_list=rows, count=count, size=size, has_next=has_next)

    @property
    def num_pages(self) -> int:
        return max(1, -(-self.count // self.size))

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def previous_page_number(self) -> int:
        return self.number - 1

    @property
    def next_page_number(self) -> int:
        return self.number + 1

    @property
    def start_index(self) -> int:
        return (self.number - 1) * self.size + 1 if self.object_list else 0

    @property
    def end_index(self) -> int:
        return (self.number - 1) * self.size + len(self.object_list)


@dataclass(frozen=True)
class ReviewControls:
    """What the review page's query string decides: filters, their form, the sortable header."""

    filters: selectors.ReviewFilters
    filters_html: str
    thead: str
    page_query: str  # the query string without the page number


@functools.lru_cache(maxsize=256)
def _review_controls(
    query_string: str, therapists: tuple, language: str | None, action: str
) -> ReviewControls:
    """The same query string, therapist list and language give the same controls (memoised)."""
    data = QueryDict(query_string)
    form = ReviewFilterForm(data or None, therapists=therapists)
    filters = form.filters()
    columns = []
    for key, label in selectors.SORT_LABELS.items():
        if key == "therapist" and not therapists:
            continue
        current = filters.sort == key
        descending = not filters.descending if current else False
        columns.append(
            {
                "key": key,
                "label": _(label),
                "current": current,
                "descending": filters.descending if current else None,
                "query": _query_without(data, "page", sort=key, desc="1" if descending else ""),
            }
        )
    return ReviewControls(
        filters=filters,
        filters_html=html.filters_form(form, action),
        thead=html.header(columns),
        page_query=_query_without(data, "page"),
    )


@require_GET
@staff_required
def review(request: HttpRequest) -> HttpResponse:
    """One row per patient: phase, adherence, pain, location, last session, open alerts."""
    user = request.user
    therapists = tuple(selectors.therapists_for_filter(user))
    controls = _review_controls(
        request.GET.urlencode(), therapists, get_language(), reverse("staff:review")
    )
    filters = controls.filters
    today = LocalToday()
    query = selectors.review_query(user, filters, today)
    page = ReviewPage.of(query, request.GET.get("page"), selectors.PAGE_SIZE)
    rows = selectors.review_rows(page.object_list, today)
    audit_record(
        request=request,
        action=AuditAction.LIST,
        detail={
            "view": "staff review",
            "patients": sorted(row.patient.public_id for row in rows),
        },
    )
    csrf_token = get_token(request)
    results = html.results(
        filters_html=controls.filters_html,
        thead=controls.thead,
        tbody=html.review_body(
            rows,
            show_therapist=bool(therapists),
            next_url=request.get_full_path(),
            csrf_token=csrf_token,
        ),
        page=page,
        page_query=controls.page_query,
    )
    htmx = getattr(request, "htmx", None)
    if htmx and not htmx.history_restore_request:
        content = results  # htmx swaps only the results
    else:
        content = html.review_page(
            user_name=user.get_full_name(), csrf_token=csrf_token, results_html=results
        )
    response = HttpResponse(content)
    patch_vary_headers(response, ["HX-Request"])
    response.review_rows = rows  # what the page shows, for tests
    return response


# --- One patient ---------------------------------------------------------------------------

DETAIL_RANGES = (30, 90, 180)


@require_GET
@staff_required
def patient_detail(request: HttpRequest, public_id) -> HttpResponse:
    """Pain, sessions against prescribed, how far the pain reaches, phases, alerts, notes."""
    patient = selectors.patient_for_review(request.user, public_id)
    try:
        days = int(request.GET.get("days", 90))
    except ValueError:
        days = 90
    if days not in DETAIL_RANGES:
        days = 90
    today = patient_local_today(patient)
    first = today - dt.timedelta(days=days - 1)
    rollup = selectors.patient_rollup(patient, first, today)
    history = selectors.patient_phase_history(patient)
    assignment = patient_active_assignment(patient)
    chart_days = charts.days_from_rollup(rollup, first, today)
    alerts = selectors.patient_alerts(patient)
    markers = [
        (
            change.effective_on,
            _("Ended") if change.kind == PhaseChange.Kind.ENDED else change.get_to_phase_display(),
        )
        for change in history
        if first <= change.effective_on <= today and change.kind != PhaseChange.Kind.SESSIONS_SET
    ]
    rows = [(r.local_date, r.prescribed, r.done, r.extra) for r in rollup]
    context = {
        "patient": patient,
        "assignment": assignment,
        "phase": adherence.phase_progress(
            phase=assignment.current_phase, started_on=assignment.phase_started_on, today=today
        )
        if assignment
        else None,
        "today": today,
        "days": days,
        "ranges": DETAIL_RANGES,
        "week": adherence.adherence_over(rows, today=today, days=adherence.WINDOW_SHORT),
        "month": adherence.adherence_over(rows, today=today, days=adherence.WINDOW_LONG),
        "pain": charts.pain_chart(
            chart_days,
            markers=markers,
            summary=charts.staff_pain_summary(chart_days),
            ident="staff-pain",
        ),
        "sessions": charts.sessions_chart(
            chart_days,
            markers=markers,
            summary=charts.staff_sessions_summary(chart_days, today=today),
            ident="staff-sessions",
        ),
        "location": charts.location_chart(
            chart_days,
            markers=markers,
            summary=charts.staff_location_summary(chart_days),
            ident="staff-location",
        ),
        "history": list(reversed(history)),
        "alerts": alerts,
        "alerts_html": html.alert_list(
            alerts,
            next_url=request.get_full_path(),
            csrf_token=get_token(request),
            full=True,
        ),
        "notes": selectors.patient_notes(patient),
        "help_text": adherence.HELP_TEXT,
    }
    audit_record(request=request, action=AuditAction.VIEW, patient=patient, obj=patient)
    return render(request, "symptoms/staff/patient.html", context)


# --- Acknowledging an alert ------------------------------------------------------------------


@require_POST
@staff_required
def alert_acknowledge(request: HttpRequest, pk: int) -> HttpResponse:
    alert = selectors.alert_for_staff(request.user, pk)
    if services.alert_acknowledge(alert=alert, user=request.user):
        audit_record(
            request=request,
            action=AuditAction.CHANGE,
            patient=alert.patient,
            obj=alert,
            detail={"acknowledged": alert.get_kind_display()},
        )
    alert.refresh_from_db()
    if getattr(request, "htmx", None):
        return HttpResponse(
            html.alert_item(
                alert,
                next_url=request.POST.get("next", ""),
                csrf_token=get_token(request),
                full=request.POST.get("full") == "1",
            )
        )
    next_url = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(
        next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        next_url = reverse("staff:review")
    return redirect(next_url)


# --- CSV export -------------------------------------------------------------------------------

EXPORT_MAX_DAYS = 366
EXPORT_CHUNK = 2000
CSV_COLUMNS = [
    "patient_id",
    "patient_name",
    "patient_email",
    "therapist_email",
    "date",
    "phase",
    "sessions_prescribed",
    "sessions_done",
    "sessions_extra",
    "adherence_percent",
    "adherent",
    "reps",
    "pain_last",
    "pain_max",
    "most_distal_location",
]


class ExportForm(TherapistChoiceForm):
    start = forms.DateField(
        label=gettext_lazy("From"), widget=forms.DateInput(attrs={"type": "date"})
    )
    end = forms.DateField(label=gettext_lazy("To"), widget=forms.DateInput(attrs={"type": "date"}))
    therapist = forms.TypedChoiceField(
        label=gettext_lazy("Therapist"), required=False, coerce=int, empty_value=None
    )

    def clean(self):
        data = super().clean()
        start, end = data.get("start"), data.get("end")
        if start and end:
            if end < start:
                raise forms.ValidationError(_("The end date must be on or after the start date."))
            if (end - start).days + 1 > EXPORT_MAX_DAYS:
                raise forms.ValidationError(
                    _("Export at most %(days)d days at a time (you asked for %(asked)d).")
                    % {"days": EXPORT_MAX_DAYS, "asked": (end - start).days + 1}
                )
        return data


@require_GET
@staff_required
def export(request: HttpRequest) -> HttpResponse:
    """The export form; with valid dates (``?start=&end=``) the CSV itself, streamed."""
    therapists = selectors.therapists_for_filter(request.user)
    if not request.GET:
        yesterday = timezone.localdate() - dt.timedelta(days=1)
        form = ExportForm(
            initial={"start": yesterday - dt.timedelta(days=29), "end": yesterday},
            therapists=therapists,
        )
        return render(request, "symptoms/staff/export.html", {"form": form})
    form = ExportForm(request.GET, therapists=therapists)
    if not form.is_valid():
        return render(request, "symptoms/staff/export.html", {"form": form}, status=400)
    start, end = form.cleaned_data["start"], form.cleaned_data["end"]
    therapist = form.cleaned_data.get("therapist")
    audit_record(
        request=request,
        action=AuditAction.EXPORT,
        detail={
            "export": "adherence per patient per day",
            "start": start.isoformat(),
            "end": end.isoformat(),
            "therapist": therapist,
            "scope": "clinic" if is_clinic_admin(request.user) else "own patients",
        },
    )
    rows = selectors.export_rows(
        request.user, first=start, last=end, therapist=therapist, chunk=EXPORT_CHUNK
    )
    response = StreamingHttpResponse(_csv_lines(rows), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = (
        f'attachment; filename="adherence-{start.isoformat()}-{end.isoformat()}.csv"'
    )
    response["Cache-Control"] = "no-store"
    return response


class _Echo:
    def write(self, value: str) -> str:
        return value


def _cell(value) -> str:
    """Neutralise spreadsheet formulas in text cells (CSV injection)."""
    text = "" if value is None else str(value)
    if text[:1] in {"=", "+", "-", "@", "\t", "\r"}:
        return "'" + text
    return text


def _csv_lines(batches) -> Iterator[str]:
    """CSV text, one chunk per batch of rollup rows.

    The patient's columns go through the csv module once per patient (quoting,
    formula neutralising); the day's columns come written by the database
    (``selectors.export_line_sql``): numbers, ISO dates and fixed identifiers
    (phase, location), which need no quoting.
    """
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_COLUMNS)
    prefixes: dict[int, str] = {}
    for info, rows in batches:
        out = []
        for patient_id, line in rows:
            prefix = prefixes.get(patient_id)
            if prefix is None:
                if len(prefixes) > 5000:
                    prefixes.clear()
                public_id, name, email, therapist_email = info[patient_id]
                prefix = writer.writerow(
                    [public_id, _cell(name), _cell(email), _cell(therapist_email), ""]
                )[:-2]  # ends with the separator for the next column, without the line end
                prefixes[patient_id] = prefix
            out.append(f"{prefix}{line}\r\n")
        yield "".join(out)
