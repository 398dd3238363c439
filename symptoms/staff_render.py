"""HTML for the review page: the table, its filters, the alert items, the page around them.

The review page renders 50 rich rows (bars, a sparkline, alerts with their
forms). Through the template engine that cost ~40 ms a page; assembled here,
with memos, it costs a fraction of a millisecond, which is what keeps the
page within a few times one database query (``make bench-review``).

Memos (per process, bounded), each keyed by everything its HTML shows:

- ``_Cells`` per language and display time zone: translated labels, and the
  cells many patients share (phase and day, adherence figures, "today");
- in it, each patient's sparkline cell, alert items and whole row
  (``_Cells.row``), split where the request's CSRF token and address go;
- the page chrome (``symptoms/staff/review.html`` and its base), rendered
  once per language and deployment with markers for the signed-in name, the
  CSRF token and the results (``review_page``).

Escaping: every text that comes from the database or a user (names, alert
messages, query strings) goes through ``esc``; numbers, ids and constants do
not need it.
"""

from __future__ import annotations

import functools
import html
from collections.abc import Iterable, Sequence

from django.conf import settings
from django.template.loader import render_to_string
from django.urls import get_script_prefix, reverse
from django.utils.safestring import SafeString, mark_safe
from django.utils.timezone import get_current_timezone, get_current_timezone_name, localtime
from django.utils.translation import get_language, ngettext
from django.utils.translation import gettext as _

from symptoms import adherence, charts
from symptoms.models import Alert, AlertKind, PainLocation, PainTrend

HX = 'hx-target="#results" hx-swap="outerHTML" hx-push-url="true"'
_PK = 987654321
_UUID = "00000000-0000-4000-8000-000000000000"


def esc(value) -> str:
    """HTML-escape text (quotes too): safe inside element content and attribute values."""
    return html.escape(str(value), quote=True)


def _safe(text: str) -> SafeString:
    return mark_safe(text)  # noqa: S308 - built by this module; every text value went through esc


def form_inputs(csrf_token: str, next_url: str) -> str:
    """The hidden inputs of every Acknowledge form: the CSRF token and where to go back."""
    return (
        f'<input type="hidden" name="csrfmiddlewaretoken" value="{esc(csrf_token)}">'
        f'<input type="hidden" name="next" value="{esc(next_url)}">'
    )


def acknowledge_form(
    ack_url: str, pk: int, kind: str, inputs: str, label: str, *, full: bool = False
) -> str:
    """An open alert's Acknowledge button: a form, so that it works without JavaScript.

    ``ack_url`` is the acknowledge URL with ``_PK`` for the alert's id; ``kind``
    and ``label`` are HTML already (escaped); ``inputs`` are ``form_inputs``.
    """
    url = ack_url.replace(str(_PK), str(pk))
    keep = '<input type="hidden" name="full" value="1">' if full else ""
    return (
        f'<form method="post" action="{url}" hx-post="{url}" '
        f'hx-target="#alert-{pk}" hx-swap="outerHTML">{inputs}{keep}'
        f'<button type="submit" class="small-button">{label}'
        f'<span class="visually-hidden"> {kind}</span></button></form>'
    )


class Renderer:
    """Per-request: the CSRF token and the page address, with the per-language cells."""

    def __init__(self, *, next_url: str, csrf_token: str):
        self.inputs = form_inputs(csrf_token, next_url)
        self.ack_url = reverse("staff:alert_acknowledge", kwargs={"pk": _PK})
        self.patient_url = reverse("staff:patient", kwargs={"public_id": _UUID})
        self.cells = _cells(get_language(), get_current_timezone_name())

    def when(self, value) -> str:
        return self.cells.when(value)

    def _form(self, pk: int, kind: str, *, full: bool) -> str:
        return acknowledge_form(self.ack_url, pk, kind, self.inputs, self.cells.ack, full=full)

    def alert(self, alert, *, full: bool = False) -> str:
        cells = self.cells
        if not full and not alert.acknowledged_at:
            # The review table: many open alerts a page, their head memoised.
            head, kind = cells.alert_head(alert.pk, alert.kind, alert.severity, alert.created_at)
            return f"{head}{self._form(alert.pk, kind, full=False)}</li>"
        kind = cells.kinds.get(alert.kind, esc(alert.kind))
        urgent = cells.urgent if alert.severity == Alert.Severity.URGENT else ""
        done = " alert-done" if alert.acknowledged_at else ""
        message = f'<span class="alert-message">{esc(alert.message)}</span>' if full else ""
        if alert.acknowledged_at:
            local = localtime(alert.acknowledged_at)
            who = alert.acknowledged_by.get_full_name() if alert.acknowledged_by_id else ""
            text = _("Acknowledged by %(who)s, %(when)s") % {
                "who": who,
                "when": f"{charts.day_label(local)} {local.hour:02d}:{local.minute:02d}",
            }
            action = f'<span class="alert-ack">{esc(text)}</span>'
        else:
            action = self._form(alert.pk, kind, full=full)
        return (
            f'<li class="alert alert-{esc(alert.severity)}{done}" id="alert-{alert.pk}">'
            f'<span class="alert-kind">{urgent}{kind}</span>{message}'
            f'<span class="alert-when">{self.when(alert.created_at)}</span>{action}</li>'
        )

    def alerts(self, alerts: Sequence, *, full: bool = False) -> str:
        items = "".join(self.alert(alert, full=full) for alert in alerts)
        return f'<ul class="alerts{" alerts-full" if full else ""}">{items}</ul>'

    # --- the table -------------------------------------------------------------------------

    def body(self, rows, *, show_therapist: bool) -> str:
        """The ``<tbody>``: one ``<tr>`` per ``staff_selectors.ReviewRow``.

        Each row's HTML is memoised (``_Cells.row``) on everything it shows,
        split where this request's CSRF token and address go; the cells inside
        it have their own memos, shared between patients.
        """
        cells = self.cells
        memo = cells.rows
        patient_url, ack_url, inputs = self.patient_url, self.ack_url, self.inputs
        out = []
        for row in rows:
            patient, phase, week, month, pain = (
                row.patient,
                row.phase,
                row.week,
                row.month,
                row.pain,
            )
            # Everything the row shows, as plain values (cheap to hash).
            key = (
                patient_url,
                ack_url,
                patient.public_id,
                patient.name,
                patient.therapist_name if show_therapist else None,
                phase.phase if phase else None,
                phase.day if phase else None,
                week.done,
                week.prescribed,
                week.extra,
                month.done,
                month.prescribed,
                month.extra,
                pain.first,
                pain.scores,
                pain.places,
                row.today_done,
                row.today_prescribed,
                row.today_extra,
                row.last_session_at,
                tuple(
                    (alert.pk, alert.kind, alert.severity, alert.created_at) for alert in row.alerts
                ),
            )
            parts = memo.get(key)
            if parts is None:
                parts = cells.row(row, key, show_therapist=show_therapist)
            out.append(inputs.join(parts))
        return f"<tbody>{''.join(out)}</tbody>"


_INPUTS = "\x00form-inputs\x00"  # where a memoised row takes this request's form_inputs


class _Cells:
    """Review-table cells for one language and one display time zone, memoised.

    Every memo is keyed by everything its cell shows (the figures, the
    phase and day, the pain scores and their dates), so a cached cell is the
    cell that would be built; each memo is bounded.
    """

    def __init__(self):
        self.zone = get_current_timezone()
        self.months = charts.month_names()
        self.label = {
            key: esc(text)
            for key, text in {
                "patient": _("Patient"),
                "therapist": _("Therapist"),
                "phase": _("Phase"),
                "week": _("7-day adherence"),
                "month": _("30-day adherence"),
                "pain": _("Pain, 14 days"),
                "where": _("Pain reaches"),
                "last": _("Last session"),
                "alerts": _("Open alerts"),
            }.items()
        }
        self.locations = {value: esc(label) for value, label in PainLocation.choices}
        self.trends = {
            PainTrend.CENTRALISING: f' <span class="trend good">{esc(_("centralising"))}</span>',
            PainTrend.PERIPHERALISING: (
                f' <span class="trend bad">{esc(_("peripheralising"))}</span>'
            ),
        }
        self.none_30 = f'<span class="muted">{esc(_("none in 30 days"))}</span>'
        self.none_14 = f'<span class="muted">{esc(_("none in 14 days"))}</span>'
        self.no_alerts = f'<span class="muted">{esc(_("none"))}</span>'
        self.no_program = (
            f'<td data-label="{self.label["phase"]}" colspan="2" class="col-phase">'
            f'<span class="muted">{esc(_("No program"))}</span></td>'
        )
        self.today_text = _("today %(done)d of %(prescribed)d")
        self.kinds = {value: esc(label) for value, label in AlertKind.choices}
        self.urgent = f"<strong>{esc(_('Urgent'))}:</strong> "
        self.ack = esc(_("Acknowledge"))
        self.phase = functools.lru_cache(maxsize=2048)(self._phase)
        self.week = functools.lru_cache(maxsize=2048)(
            functools.partial(self._adherence, self.label["week"])
        )
        self.month = functools.lru_cache(maxsize=4096)(
            functools.partial(self._adherence, self.label["month"])
        )
        self.pain = functools.lru_cache(maxsize=1024)(self._pain)
        self.today = functools.lru_cache(maxsize=1024)(self._today)
        self.alert_head = functools.lru_cache(maxsize=1024)(self._alert_head)
        self.rows: dict[tuple, tuple[str, ...]] = {}  # see row()

    ROWS_KEPT = 2048  # about 3 KB each: a few MB per language and time zone

    def row(self, row, key: tuple, *, show_therapist: bool) -> tuple[str, ...]:
        """One review row, split where each Acknowledge form takes this request's inputs.

        Kept in ``self.rows`` under ``key``, which holds every value the row
        shows (``Renderer.body``); emptied when it grows past ``ROWS_KEPT``.
        """
        patient_url, ack_url, alerts = key[0], key[1], key[-1]
        patient, week, pain = row.patient, row.week, row.pain
        label = self.label
        therapist = (
            f'<td data-label="{label["therapist"]}">{esc(patient.therapist_name)}</td>'
            if show_therapist
            else ""
        )
        logged_today = row.today_done + row.today_extra
        today = (
            self.today(logged_today, row.today_prescribed)
            if row.today_prescribed or logged_today
            else ""
        )
        last = self.when(row.last_session_at) if row.last_session_at else self.none_30
        if alerts:
            items = "".join(
                self.alert_item(ack_url, pk, kind, severity, created_at)
                for pk, kind, severity, created_at in alerts
            )
            alerts_html = f'<ul class="alerts">{items}</ul>'
        else:
            alerts_html = self.no_alerts
        latest = pain.latest_place
        where = (
            self.locations.get(latest[1], "") + self.trends.get(pain.trend, "")
            if latest
            else self.none_14
        )
        url = patient_url.replace(_UUID, patient.public_id)
        at_risk = "at-risk" if week.adherent is False else ""
        html_row = (
            f'<tr class="{at_risk}">'
            f'<th scope="row" class="col-name" data-label="{label["patient"]}">'
            f'<a href="{url}">{esc(patient.name)}</a></th>{therapist}'
            f"{self.phase(row.phase)}{self.week(week)}{self.month(row.month)}{self.pain(pain)}"
            f'<td data-label="{label["where"]}" class="col-where">{where}</td>'
            f'<td data-label="{label["last"]}" class="col-last">{last}{today}</td>'
            f'<td data-label="{label["alerts"]}" class="col-alerts">{alerts_html}</td></tr>'
        )
        parts = tuple(html_row.split(_INPUTS))
        if len(self.rows) >= self.ROWS_KEPT:
            self.rows.clear()
        self.rows[key] = parts
        return parts

    def alert_item(self, ack_url: str, pk: int, kind: str, severity: str, created_at) -> str:
        """An open alert of the table, with markers for the CSRF token and the page address."""
        head, name = self.alert_head(pk, kind, severity, created_at)
        form = acknowledge_form(ack_url, pk, name, _INPUTS, self.ack)
        return f"{head}{form}</li>"

    def _phase(self, progress) -> str:
        if progress is None:
            return self.no_program
        overdue = "overdue" if progress.overdue else ""
        return (
            f'<td data-label="{self.label["phase"]}" colspan="2" class="col-phase">'
            f'<span class="{overdue}">{esc(progress.label)}</span></td>'
        )

    def _adherence(self, label: str, result) -> str:
        extra = (
            '<span class="extra">'
            + esc(
                ngettext("+%(extra)d extra", "+%(extra)d extra", result.extra)
                % {"extra": result.extra}
            )
            + "</span>"
            if result.extra
            else ""
        )
        low = " low" if result.adherent is False else ""
        return (
            f'<td data-label="{label}" class="col-adh">'
            f"{charts.bar(result.percent, adherent=result.adherent)}"
            f'<span class="figure{low}">{esc(result.label)}</span>{extra}</td>'
        )

    def _pain(self, pain) -> str:
        spark = pain.points
        spark_label = charts.spark_label(spark)
        return (
            f'<td data-label="{self.label["pain"]}" class="col-pain">'
            f"{charts.sparkline(spark, label=spark_label)}"
            f'<span class="visually-hidden">{esc(spark_label)}</span></td>'
        )

    def _today(self, done: int, prescribed: int) -> str:
        return (
            '<span class="today">'
            + esc(self.today_text % {"done": done, "prescribed": prescribed})
            + "</span>"
        )

    def when(self, value) -> str:
        """A time in the display time zone (``localtime``), as "21 Nov 07:50"."""
        local = value.astimezone(self.zone)
        return (
            f'<time datetime="{local.isoformat()}">{local.day} {self.months[local.month]} '
            f"{local.hour:02d}:{local.minute:02d}</time>"
        )

    def _alert_head(self, pk: int, kind: str, severity: str, created_at) -> tuple[str, str]:
        """An open alert's item up to its form, and its kind (for the button's name)."""
        name = self.kinds.get(kind, esc(kind))
        urgent = self.urgent if severity == Alert.Severity.URGENT else ""
        return (
            f'<li class="alert alert-{esc(severity)}" id="alert-{pk}">'
            f'<span class="alert-kind">{urgent}{name}</span>'
            f'<span class="alert-when">{self.when(created_at)}</span>',
            name,
        )


_CELLS: dict[tuple[str | None, str], _Cells] = {}


def _cells(language: str | None, zone: str) -> _Cells:
    """The cells of one language and display time zone (a handful per process)."""
    cells = _CELLS.get((language, zone))
    if cells is None:
        cells = _CELLS[(language, zone)] = _Cells()
    return cells


def alert_item(alert: Alert, *, next_url: str, csrf_token: str, full: bool = False) -> SafeString:
    return _safe(Renderer(next_url=next_url, csrf_token=csrf_token).alert(alert, full=full))


def alert_list(
    alerts: Sequence[Alert], *, next_url: str, csrf_token: str, full: bool = False
) -> SafeString:
    return _safe(Renderer(next_url=next_url, csrf_token=csrf_token).alerts(alerts, full=full))


def review_body(rows, *, show_therapist: bool, next_url: str, csrf_token: str) -> SafeString:
    renderer = Renderer(next_url=next_url, csrf_token=csrf_token)
    return _safe(renderer.body(rows, show_therapist=show_therapist))


# --- The filters and the header ------------------------------------------------------------------


def _select(name: str, label: str, choices: Iterable[tuple], value) -> str:
    value = "" if value in (None, "") else str(value)
    options = "".join(
        f'<option value="{esc(key)}"{" selected" if str(key) == value else ""}>{esc(text)}</option>'
        for key, text in choices
    )
    return (
        f'<div class="field"><label for="id_{name}">{esc(label)}</label>'
        f'<select name="{name}" id="id_{name}">{options}</select></div>'
    )


def _checkbox(name: str, label: str, checked: bool) -> str:
    return (
        f'<div class="field field-check"><input type="checkbox" name="{name}" id="id_{name}"'
        f'{" checked" if checked else ""}><label for="id_{name}">{esc(label)}</label></div>'
    )


def filters_form(form, action: str) -> SafeString:
    """The filter form (a ``ReviewFilterForm``), submitted by GET; htmx on change."""
    data = form.cleaned_data if form.is_bound and form.is_valid() else {}
    fields = form.fields
    parts = [
        f'<div class="field field-wide"><label for="id_q">{esc(fields["q"].label)}</label>'
        f'<input type="text" name="q" id="id_q" maxlength="100" value="{esc(data.get("q") or "")}">'
        "</div>"
    ]
    if "therapist" in fields:
        parts.append(
            _select(
                "therapist",
                fields["therapist"].label,
                fields["therapist"].choices,
                data.get("therapist"),
            )
        )
    parts += [
        _select("phase", fields["phase"].label, fields["phase"].choices, data.get("phase")),
        _checkbox("at_risk", fields["at_risk"].label, bool(data.get("at_risk"))),
        _checkbox("alerts", fields["alerts"].label, bool(data.get("alerts"))),
        _select("sort", fields["sort"].label, fields["sort"].choices, data.get("sort")),
        _checkbox("desc", fields["desc"].label, bool(data.get("desc"))),
    ]
    action = esc(action)
    return _safe(
        f'<form method="get" action="{action}" class="filters" role="search" hx-get="{action}" '
        f'{HX} hx-trigger="change, submit">{"".join(parts)}'
        f'<button type="submit" class="button">{esc(_("Show"))}</button></form>'
    )


def header(columns: Sequence[dict]) -> SafeString:
    cells = []
    for column in columns:
        sort = arrow = ""
        if column["current"]:
            direction = "descending" if column["descending"] else "ascending"
            sort = f' aria-sort="{direction}"'
            arrow = f' <span aria-hidden="true">{"▼" if column["descending"] else "▲"}</span>'
        query = esc(column["query"])
        cells.append(
            f'<th scope="col"{sort} class="col-{esc(column["key"])}">'
            f'<a href="?{query}" hx-get="?{query}" {HX}>{esc(column["label"])}{arrow}</a></th>'
        )
        if column["key"] == "adherence30":
            cells.append(
                f'<th scope="col" class="col-pain">{esc(_("Pain, 14 days"))}</th>'
                f'<th scope="col" class="col-where">{esc(_("Pain reaches"))}</th>'
            )
    return _safe(f"<thead><tr>{''.join(cells)}</tr></thead>")


# --- The results and the page around them ----------------------------------------------------


def results(*, filters_html: str, thead: str, tbody: str, page, page_query: str) -> SafeString:
    """The part htmx swaps: filters, the count, the table and the page links."""
    total = page.count
    count = ngettext("%(total)s patient", "Patients %(first)s-%(last)s of %(total)s", total) % {
        "total": total,
        "first": page.start_index,
        "last": page.end_index,
    }
    if page.object_list:
        table = f'<table class="review">{thead}{tbody}</table>'
    else:
        table = f'<p class="empty">{esc(_("No patients match."))}</p>'
    pages = ""
    if page.num_pages > 1:
        prefix = f"?{esc(page_query)}&amp;" if page_query else "?"
        links = []
        if page.has_previous:
            url = f"{prefix}page={page.previous_page_number}"
            links.append(f'<a href="{url}" hx-get="{url}" {HX} rel="prev">{esc(_("Previous"))}</a>')
        links.append(
            "<span>"
            + esc(
                _("Page %(number)s of %(total)s") % {"number": page.number, "total": page.num_pages}
            )
            + "</span>"
        )
        if page.has_next:
            url = f"{prefix}page={page.next_page_number}"
            links.append(f'<a href="{url}" hx-get="{url}" {HX} rel="next">{esc(_("Next"))}</a>')
        pages = f'<nav class="pages" aria-label="{esc(_("Pages"))}">{"".join(links)}</nav>'
    return _safe(
        f'<div id="results" class="results">{filters_html}'
        f'<p class="count">{esc(count)}</p>{table}{pages}</div>'
    )


_CSRF = "\x00csrf\x00"
_USER = "\x00user\x00"
_RESULTS = "\x00results\x00"


class _Request:
    """What the page chrome (``symptoms/staff/base.html``) reads of the request."""

    class user:  # stands in for request.user
        get_full_name = _USER

    class resolver_match:
        url_name = "review"


@functools.lru_cache(maxsize=16)
def _review_skeleton(language: str | None, debug: bool, script_prefix: str) -> str:
    """``symptoms/staff/review.html`` rendered once, with markers for what varies.

    The page around the results depends on the language and the deployment
    (static and URL prefixes, DEBUG for the htmx script) only; the signed-in
    name, the CSRF token and the results go in per request (``review_page``).
    """
    return render_to_string(
        "symptoms/staff/review.html",
        {
            "request": _Request,
            "csrf_token": _CSRF,
            "LANGUAGE_CODE": language,
            "help_text": adherence.HELP_TEXT,
            "results": _safe(_RESULTS),
        },
    )


def review_page(*, user_name: str, csrf_token: str, results_html: str) -> str:
    """The whole review page: the cached chrome around this request's results."""
    skeleton = _review_skeleton(get_language(), settings.DEBUG, get_script_prefix())
    return (
        skeleton.replace(_CSRF, esc(csrf_token))
        .replace(_USER, esc(user_name))
        .replace(_RESULTS, results_html)
    )


def forget_row_memos() -> None:
    """Forget every patient's rendered row, pain cell and alert items (kept are the cells
    many patients share: phases, adherence figures, bars; and the page chrome)."""
    for cells in _CELLS.values():
        cells.rows.clear()
        cells.pain.cache_clear()
        cells.alert_head.cache_clear()
