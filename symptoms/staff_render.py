"""HTML for the review table, its filters and the alert items, built in Python.

The review page renders 50 rich rows (bars, a sparkline, alerts with their
forms). Through the template engine that cost ~40 ms a page; assembled here
it costs a few, which is what keeps the page within a few times one database
query (``make bench-review``). The page chrome stays in templates.

Escaping: every text that comes from the database or a user (names, alert
messages, query strings) goes through ``esc``; numbers, ids and constants do
not need it. Translations and URL prefixes are looked up once per render.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence

from django.urls import reverse
from django.utils.safestring import SafeString, mark_safe
from django.utils.timezone import localtime
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from symptoms import charts
from symptoms.models import Alert, AlertKind, PainLocation, PainTrend

HX = 'hx-target="#results" hx-swap="outerHTML" hx-push-url="true"'
_PK = 987654321
_UUID = "00000000-0000-4000-8000-000000000000"


def esc(value) -> str:
    """HTML-escape text (quotes too): safe inside element content and attribute values."""
    return html.escape(str(value), quote=True)


def _safe(text: str) -> SafeString:
    return mark_safe(text)  # noqa: S308 - built by this module; every text value went through esc


class Renderer:
    """Per-request: translated labels, URL patterns and the CSRF token, looked up once."""

    def __init__(self, *, next_url: str, csrf_token: str):
        self.next_url = esc(next_url)
        self.csrf = esc(csrf_token)
        self.kinds = {value: esc(label) for value, label in AlertKind.choices}
        self.ack_url = reverse("staff:alert_acknowledge", kwargs={"pk": _PK})
        self.patient_url = reverse("staff:patient", kwargs={"public_id": _UUID})
        self.t = {
            "urgent": esc(_("Urgent")),
            "ack": esc(_("Acknowledge")),
            "acked": _("Acknowledged by %(who)s, %(when)s"),
        }

    def when(self, value) -> str:
        local = localtime(value)
        return (
            f'<time datetime="{local.isoformat()}">{charts.day_label(local)} '
            f"{local.hour:02d}:{local.minute:02d}</time>"
        )

    def alert(self, alert: Alert, *, full: bool = False) -> str:
        kind = self.kinds.get(alert.kind, esc(alert.kind))
        urgent = (
            f"<strong>{self.t['urgent']}:</strong> "
            if alert.severity == Alert.Severity.URGENT
            else ""
        )
        done = " alert-done" if alert.acknowledged_at else ""
        message = f'<span class="alert-message">{esc(alert.message)}</span>' if full else ""
        if alert.acknowledged_at:
            local = localtime(alert.acknowledged_at)
            who = alert.acknowledged_by.get_full_name() if alert.acknowledged_by_id else ""
            text = self.t["acked"] % {
                "who": who,
                "when": f"{charts.day_label(local)} {local.hour:02d}:{local.minute:02d}",
            }
            action = f'<span class="alert-ack">{esc(text)}</span>'
        else:
            url = self.ack_url.replace(str(_PK), str(alert.pk))
            keep = '<input type="hidden" name="full" value="1">' if full else ""
            action = (
                f'<form method="post" action="{url}" hx-post="{url}" '
                f'hx-target="#alert-{alert.pk}" hx-swap="outerHTML">'
                f'<input type="hidden" name="csrfmiddlewaretoken" value="{self.csrf}">'
                f'<input type="hidden" name="next" value="{self.next_url}">{keep}'
                f'<button type="submit" class="small-button">{self.t["ack"]}'
                f'<span class="visually-hidden"> {kind}</span></button></form>'
            )
        return (
            f'<li class="alert alert-{esc(alert.severity)}{done}" id="alert-{alert.pk}">'
            f'<span class="alert-kind">{urgent}{kind}</span>{message}'
            f'<span class="alert-when">{self.when(alert.created_at)}</span>{action}</li>'
        )

    def alerts(self, alerts: Sequence[Alert], *, full: bool = False) -> str:
        items = "".join(self.alert(alert, full=full) for alert in alerts)
        return f'<ul class="alerts{" alerts-full" if full else ""}">{items}</ul>'

    # --- the table -------------------------------------------------------------------------

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

    def body(self, rows, *, show_therapist: bool) -> str:
        locations = {value: esc(label) for value, label in PainLocation.choices}
        label = {
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
        trends = {
            PainTrend.CENTRALISING: f' <span class="trend good">{esc(_("centralising"))}</span>',
            PainTrend.PERIPHERALISING: (
                f' <span class="trend bad">{esc(_("peripheralising"))}</span>'
            ),
        }
        none_30 = f'<span class="muted">{esc(_("none in 30 days"))}</span>'
        none_14 = f'<span class="muted">{esc(_("none in 14 days"))}</span>'
        no_alerts = f'<span class="muted">{esc(_("none"))}</span>'
        no_program = f'<span class="muted">{esc(_("No program"))}</span>'
        today_text = _("today %(done)d of %(prescribed)d")
        out = []
        for row in rows:
            patient = row.patient
            if row.phase:
                overdue = "overdue" if row.phase.overdue else ""
                phase = f'<span class="{overdue}">{esc(row.phase.label)}</span>'
            else:
                phase = no_program
            spark_label = charts.spark_label(row.spark)
            where = (
                locations.get(row.location, "") + trends.get(row.trend, "")
                if row.location
                else none_14
            )
            logged_today = row.today_done + row.today_extra
            today = (
                '<span class="today">'
                + esc(today_text % {"done": logged_today, "prescribed": row.today_prescribed})
                + "</span>"
                if row.today_prescribed or logged_today
                else ""
            )
            therapist = (
                f'<td data-label="{label["therapist"]}">'
                f"{esc(patient.therapist.get_full_name())}</td>"
                if show_therapist
                else ""
            )
            url = self.patient_url.replace(_UUID, str(patient.public_id))
            out.append(
                f'<tr class="{"at-risk" if row.at_risk else ""}">'
                f'<th scope="row" class="col-name" data-label="{label["patient"]}">'
                f'<a href="{url}">{esc(patient.user.get_full_name())}</a></th>{therapist}'
                f'<td data-label="{label["phase"]}" colspan="2" class="col-phase">{phase}</td>'
                f"{self._adherence(label['week'], row.week)}"
                f"{self._adherence(label['month'], row.month)}"
                f'<td data-label="{label["pain"]}" class="col-pain">'
                f"{charts.sparkline(row.spark, label=spark_label)}"
                f'<span class="visually-hidden">{esc(spark_label)}</span></td>'
                f'<td data-label="{label["where"]}" class="col-where">{where}</td>'
                f'<td data-label="{label["last"]}" class="col-last">'
                f"{self.when(row.last_session_at) if row.last_session_at else none_30}{today}</td>"
                f'<td data-label="{label["alerts"]}" class="col-alerts">'
                f"{self.alerts(row.alerts) if row.alerts else no_alerts}</td></tr>"
            )
        return "<tbody>" + "".join(out) + "</tbody>"


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
