"""Progress charts as server-rendered SVG, each with a plain-words summary.

No JavaScript and no inline styles: colours are SVG presentation attributes,
so a strict Content-Security-Policy is fine. Every chart carries <title> and
<desc>; the summary sentence beside it says the same thing for screen readers
and for anyone who would rather read than look.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence
from dataclasses import dataclass

from django.utils.formats import date_format
from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import get_language, ngettext
from django.utils.translation import gettext as _

from symptoms.models import LOCATION_RANK, PainLocation
from symptoms.selectors import DayProgress

WIDTH = 360
LEFT = 36  # room for the y-axis labels
RIGHT = 10
INK = "#1f3a5f"
GRID = "#c9d3df"
MUTED = "#5b6b7f"
PAIN = "#b3261e"
DONE = "#1f6f50"
PRESCRIBED = "#dfe7ef"


def short_location_labels() -> dict[str, str]:
    """Short row labels for the location chart (translated at call time)."""
    return {
        PainLocation.NONE: _("No pain"),
        PainLocation.BACK_CENTRE: _("Back, middle"),
        PainLocation.BACK_SIDE: _("Back, side"),
        PainLocation.BUTTOCK: _("Buttock"),
        PainLocation.THIGH: _("Thigh"),
        PainLocation.BELOW_KNEE: _("Below knee"),
    }


@dataclass(frozen=True)
class Chart:
    svg: SafeString
    summary: str


def _x(index: int, count: int, left: int = LEFT) -> float:
    span = WIDTH - left - RIGHT
    if count <= 1:
        return left + span / 2
    return round(left + span * index / (count - 1), 1)


def _svg(*, height: int, title: str, desc: str, body: Sequence[str], ident: str) -> SafeString:
    return mark_safe(  # noqa: S308 - every dynamic value below is escaped
        f'<svg class="chart" viewBox="0 0 {WIDTH} {height}" role="img" '
        f'aria-labelledby="{ident}-title {ident}-desc" xmlns="http://www.w3.org/2000/svg">'
        f'<title id="{ident}-title">{escape(title)}</title>'
        f'<desc id="{ident}-desc">{escape(desc)}</desc>' + "".join(body) + "</svg>"
    )


Marker = tuple[dt.date, str]  # a phase change: its date and a label
MARKER = "#8a5a00"


def _markers(
    days: Sequence[DayProgress], markers: Sequence[Marker], top: float, bottom: float, x_of
) -> list[str]:
    """A dashed vertical line, labelled, at each marker's day (phase changes)."""
    index = {day.date: i for i, day in enumerate(days)}
    parts = []
    latest = dict(markers)  # several changes on one day: the last one holds for the day
    for when, label in latest.items():
        if when not in index:
            continue
        x = x_of(index[when])
        parts.append(
            format_html(
                '<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{}" stroke-width="1.5" '
                'stroke-dasharray="4 3"><title>{}</title></line>'
                '<text x="{}" y="{}" font-size="11" fill="{}">{}</text>',
                x,
                top,
                x,
                bottom,
                MARKER,
                _("%(day)s: %(label)s") % {"day": day_label(when), "label": label},
                x + 3,
                top + 10,
                MARKER,
                label,
            )
        )
    return parts


def day_label(day) -> str:
    """ "21 Nov": ``date_format(day, "j M")``, with the month names looked up once per language."""
    return f"{day.day} {_month_names(get_language())[day.month]}"


def month_names() -> dict[int, str]:
    """Short month names in the active language, by month number."""
    return _month_names(get_language())


@functools.cache
def _month_names(language: str | None) -> dict[int, str]:
    return {month: date_format(dt.date(2000, month, 1), "M") for month in range(1, 13)}


def _x_axis(days: Sequence[DayProgress], y: int, left: int = LEFT) -> list[str]:
    """First and last date under the chart."""
    if not days:
        return []
    parts = [
        format_html(
            '<text x="{}" y="{}" font-size="15" fill="{}">{}</text>',
            left,
            y,
            MUTED,
            day_label(days[0].date),
        )
    ]
    if len(days) > 1:
        parts.append(
            format_html(
                '<text x="{}" y="{}" font-size="15" fill="{}" text-anchor="end">{}</text>',
                WIDTH - RIGHT,
                y,
                MUTED,
                day_label(days[-1].date),
            )
        )
    return parts


def pain_chart(
    days: Sequence[DayProgress],
    *,
    markers: Sequence[Marker] = (),
    summary: str | None = None,
    ident: str = "pain-chart",
) -> Chart:
    """Pain 0-10 over time: a line through each day's last score."""
    top, bottom, height = 12, 172, 196
    scored = [(i, d) for i, d in enumerate(days) if d.pain_score is not None]
    summary = pain_summary(days) if summary is None else summary
    body: list[str] = _markers(days, markers, top, bottom, lambda i: _x(i, len(days)))
    for value in (0, 5, 10):
        y = round(bottom - (bottom - top) * value / 10, 1)
        body.append(
            format_html(
                '<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{}" stroke-width="1"/>'
                '<text x="{}" y="{}" font-size="15" fill="{}" text-anchor="end">{}</text>',
                LEFT,
                y,
                WIDTH - RIGHT,
                y,
                GRID,
                LEFT - 6,
                y + 4,
                MUTED,
                value,
            )
        )
    points = [
        (_x(i, len(days)), round(bottom - (bottom - top) * d.pain_score / 10, 1)) for i, d in scored
    ]
    if len(points) > 1:
        body.append(
            format_html(
                '<polyline points="{}" fill="none" stroke="{}" stroke-width="3" '
                'stroke-linejoin="round" stroke-linecap="round"/>',
                " ".join(f"{x},{y}" for x, y in points),
                PAIN,
            )
        )
    for (x, y), (_i, day) in zip(points, scored, strict=True):
        body.append(
            format_html(
                '<circle cx="{}" cy="{}" r="4.5" fill="{}"><title>{}</title></circle>',
                x,
                y,
                PAIN,
                _("%(day)s: pain %(score)d out of 10")
                % {"day": day_label(day.date), "score": day.pain_score},
            )
        )
    body += _x_axis(days, height - 4)
    return Chart(
        svg=_svg(
            height=height,
            title=_("Pain score, 0 to 10, by day"),
            desc=summary,
            body=body,
            ident=ident,
        ),
        summary=summary,
    )


def pain_summary(days: Sequence[DayProgress]) -> str:
    scored = [d for d in days if d.pain_score is not None]
    if not scored:
        return _("No pain scores logged yet.")
    first, last = scored[0], scored[-1]
    if len(scored) == 1:
        return _("You logged pain %(score)d out of 10 on %(day)s.") % {
            "score": first.pain_score,
            "day": day_label(first.date),
        }
    span = (last.date - first.date).days
    values = {
        "first": first.pain_score,
        "last": last.pain_score,
        "days": span,
    }
    if last.pain_score < first.pain_score:
        text = ngettext(
            "Pain went down from %(first)d to %(last)d over %(days)d day.",
            "Pain went down from %(first)d to %(last)d over %(days)d days.",
            span,
        )
    elif last.pain_score > first.pain_score:
        text = ngettext(
            "Pain went up from %(first)d to %(last)d over %(days)d day.",
            "Pain went up from %(first)d to %(last)d over %(days)d days.",
            span,
        )
    else:
        text = ngettext(
            "Pain stayed at %(last)d over %(days)d day.",
            "Pain stayed at %(last)d over %(days)d days.",
            span,
        )
    return text % values


def sessions_chart(
    days: Sequence[DayProgress],
    *,
    markers: Sequence[Marker] = (),
    summary: str | None = None,
    ident: str = "sessions-chart",
) -> Chart:
    """Sessions done per day (solid) against sessions prescribed (pale)."""
    top, bottom, height = 10, 150, 174
    most = max([d.sessions_prescribed for d in days] + [d.sessions_done for d in days] + [1])
    span = WIDTH - LEFT - RIGHT
    slot = span / max(len(days), 1)
    bar = max(min(slot * 0.7, 28), 1.5)
    summary = sessions_summary(days) if summary is None else summary
    body: list[str] = []
    for value in sorted({0, most}):
        y = round(bottom - (bottom - top) * value / most, 1)
        body.append(
            format_html(
                '<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{}" stroke-width="1"/>'
                '<text x="{}" y="{}" font-size="15" fill="{}" text-anchor="end">{}</text>',
                LEFT,
                y,
                WIDTH - RIGHT,
                y,
                GRID,
                LEFT - 6,
                y + 4,
                MUTED,
                value,
            )
        )
    for index, day in enumerate(days):
        x = round(LEFT + slot * index + (slot - bar) / 2, 1)
        label = _("%(day)s: %(done)d of %(prescribed)d sessions") % {
            "day": day_label(day.date),
            "done": day.sessions_done,
            "prescribed": day.sessions_prescribed,
        }
        if day.sessions_prescribed:
            h = round((bottom - top) * day.sessions_prescribed / most, 1)
            body.append(
                format_html(
                    '<rect x="{}" y="{}" width="{}" height="{}" fill="{}" rx="2"/>',
                    x,
                    round(bottom - h, 1),
                    round(bar, 1),
                    h,
                    PRESCRIBED,
                )
            )
        if day.sessions_done:
            h = round((bottom - top) * day.sessions_done / most, 1)
            body.append(
                format_html(
                    '<rect x="{}" y="{}" width="{}" height="{}" fill="{}" rx="2">'
                    "<title>{}</title></rect>",
                    x,
                    round(bottom - h, 1),
                    round(bar, 1),
                    h,
                    DONE,
                    label,
                )
            )
    body += _markers(days, markers, top, bottom, lambda i: round(LEFT + slot * (i + 0.5), 1))
    body += _x_axis(days, height - 4)
    return Chart(
        svg=_svg(
            height=height,
            title=_("Sessions done each day, against sessions prescribed"),
            desc=summary,
            body=body,
            ident=ident,
        ),
        summary=summary,
    )


def sessions_summary(days: Sequence[DayProgress]) -> str:
    if not days:
        return _("No sessions logged yet.")
    done = sum(d.sessions_done for d in days)
    prescribed = sum(d.sessions_prescribed for d in days)
    full_days = sum(
        1 for d in days if d.sessions_prescribed and d.sessions_done >= d.sessions_prescribed
    )
    text = ngettext(
        "Over the last %(count)d day you did %(done)d of %(prescribed)d sessions.",
        "Over the last %(count)d days you did %(done)d of %(prescribed)d sessions.",
        len(days),
    ) % {"count": len(days), "done": done, "prescribed": prescribed}
    if not full_days:
        return text
    return (
        text
        + " "
        + ngettext(
            "You did every session on %(full)d day.",
            "You did every session on %(full)d days.",
            full_days,
        )
        % {"full": full_days}
    )


def location_chart(
    days: Sequence[DayProgress],
    *,
    markers: Sequence[Marker] = (),
    summary: str | None = None,
    ident: str = "location-chart",
) -> Chart:
    """How far the pain reached each day, one row per place, spine at the top."""
    labels = short_location_labels()
    rows = PainLocation.values
    label_width = 108
    top, row_height = 14, 26
    bottom = top + row_height * (len(rows) - 1)
    height = bottom + 32
    summary = location_summary(days) if summary is None else summary
    body: list[str] = _markers(days, markers, top, bottom, lambda i: _x(i, len(days), label_width))
    for rank, value in enumerate(rows):
        y = top + row_height * rank
        body.append(
            format_html(
                '<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{}" stroke-width="1"/>'
                '<text x="{}" y="{}" font-size="15" fill="{}" text-anchor="end">{}</text>',
                label_width,
                y,
                WIDTH - RIGHT,
                y,
                GRID,
                label_width - 6,
                y + 4,
                INK,
                labels[value],
            )
        )
    located = [(i, d) for i, d in enumerate(days) if d.location is not None]
    points = [
        (_x(i, len(days), label_width), top + row_height * LOCATION_RANK[d.location])
        for i, d in located
    ]
    if len(points) > 1:
        body.append(
            format_html(
                '<polyline points="{}" fill="none" stroke="{}" stroke-width="3" '
                'stroke-linejoin="round"/>',
                " ".join(f"{x},{y}" for x, y in points),
                INK,
            )
        )
    for (x, y), (_i, day) in zip(points, located, strict=True):
        body.append(
            format_html(
                '<circle cx="{}" cy="{}" r="5" fill="{}"><title>{}</title></circle>',
                x,
                y,
                INK,
                _("%(day)s: %(where)s")
                % {"day": day_label(day.date), "where": PainLocation(day.location).label},
            )
        )
    body += _x_axis(days, height - 4, label_width)
    return Chart(
        svg=_svg(
            height=height,
            title=_("How far the pain reached each day, nearest the spine at the top"),
            desc=summary,
            body=body,
            ident=ident,
        ),
        summary=summary,
    )


def location_summary(days: Sequence[DayProgress]) -> str:
    located = [d for d in days if d.location is not None]
    if not located:
        return _("No pain locations logged yet.")
    first, last = located[0], located[-1]
    values = {
        "before": PainLocation(first.location).label,
        "now": PainLocation(last.location).label,
    }
    if len(located) == 1 or first.location == last.location:
        return _("Your pain still reaches the same place: %(now)s.") % values
    if LOCATION_RANK[last.location] < LOCATION_RANK[first.location]:
        if last.location == PainLocation.NONE:
            return _("At first your pain reached: %(before)s. Now you have no pain.") % values
        return (
            _("Your pain has moved toward your spine: %(before)s → %(now)s. That is a good sign.")
            % values
        )
    return (
        _(
            "Your pain now reaches further from your spine: %(before)s → %(now)s. "
            "Please tell your therapist."
        )
        % values
    )


NO_RELIEF_DAYS = 14


def no_relief_after_two_weeks(days: Sequence[DayProgress]) -> bool:
    """Two weeks or more of pain scores and no lower than at the start: see the therapist."""
    scored = [d for d in days if d.pain_score is not None]
    if len(scored) < 2:
        return False
    first, last = scored[0], scored[-1]
    return (last.date - first.date).days >= NO_RELIEF_DAYS and last.pain_score >= first.pain_score


# --- Staff views of the same charts: built from the rollup, summaries in the third person ----


def days_from_rollup(rollup, first: dt.date, last: dt.date) -> list[DayProgress]:
    """One DayProgress per day from the first day with a rollup row to ``last``.

    ``sessions_done`` is every session logged (done plus extra), so the bars
    show extra sessions above the prescribed ones.
    """
    by_day = {row.local_date: row for row in rollup}
    if not by_day:
        return []
    day = max(first, min(by_day))
    days = []
    while day <= last:
        row = by_day.get(day)
        days.append(
            DayProgress(
                date=day,
                sessions_done=row.done + row.extra if row else 0,
                sessions_prescribed=row.prescribed if row else 0,
                pain_score=row.pain_last if row else None,
                location=(row.location or None) if row else None,
            )
        )
        day += dt.timedelta(days=1)
    return days


def staff_pain_summary(days: Sequence[DayProgress]) -> str:
    scored = [d for d in days if d.pain_score is not None]
    if not scored:
        return _("No pain scores in this period.")
    first, last = scored[0], scored[-1]
    values = [d.pain_score for d in scored]
    return ngettext(
        "Pain %(first)d/10 on %(first_day)s, %(last)d/10 on %(last_day)s "
        "(lowest %(low)d, highest %(high)d; %(count)d day with a score).",
        "Pain %(first)d/10 on %(first_day)s, %(last)d/10 on %(last_day)s "
        "(lowest %(low)d, highest %(high)d; %(count)d days with a score).",
        len(scored),
    ) % {
        "first": first.pain_score,
        "first_day": day_label(first.date),
        "last": last.pain_score,
        "last_day": day_label(last.date),
        "low": min(values),
        "high": max(values),
        "count": len(scored),
    }


def staff_sessions_summary(days: Sequence[DayProgress], *, today: dt.date) -> str:
    from symptoms import adherence

    complete = [d for d in days if d.date < today]
    if not days:
        return _("Nothing prescribed or logged in this period.")
    rows = []
    for d in complete:
        done, extra = adherence.split_sessions(
            logged=d.sessions_done, prescribed=d.sessions_prescribed
        )
        rows.append((d.date, d.sessions_prescribed, done, extra))
    total = adherence.adherence_over(rows, today=today, days=len(complete) or 1)
    if total.prescribed:
        text = ngettext(
            "Over the %(count)d complete day shown: %(adherence)s of prescribed sessions done",
            "Over the %(count)d complete days shown: %(adherence)s of prescribed sessions done",
            len(complete),
        ) % {"count": len(complete), "adherence": total.label}
    else:
        text = _("Nothing prescribed before today in this period")
    if total.extra:
        text += ngettext(
            ", plus %(extra)d extra session", ", plus %(extra)d extra sessions", total.extra
        ) % {"extra": total.extra}
    text += "."
    todays = next((d for d in days if d.date == today), None)
    if todays is not None:
        text += " " + _("Today so far: %(done)d of %(prescribed)d.") % {
            "done": todays.sessions_done,
            "prescribed": todays.sessions_prescribed,
        }
    return text


def staff_location_summary(days: Sequence[DayProgress]) -> str:
    located = [d for d in days if d.location is not None]
    if not located:
        return _("No pain locations in this period.")
    first, last = located[0], located[-1]
    values = {
        "before": PainLocation(first.location).label,
        "before_day": day_label(first.date),
        "now": PainLocation(last.location).label,
        "now_day": day_label(last.date),
    }
    if len(located) == 1 or first.location == last.location:
        return _("The pain reached the same place at the start and at the end: %(now)s.") % values
    if LOCATION_RANK[last.location] < LOCATION_RANK[first.location]:
        return (
            _(
                "Centralising: the pain reached %(before)s on %(before_day)s and %(now)s on "
                "%(now_day)s."
            )
            % values
        )
    return (
        _(
            "Peripheralising: the pain reached %(before)s on %(before_day)s and %(now)s on "
            "%(now_day)s."
        )
        % values
    )


# --- The review page's little pictures ----------------------------------------------------------


SPARK_WIDTH, SPARK_HEIGHT, SPARK_PAD = 112, 28, 3


@functools.cache
def _spark_points(count: int) -> list[list[str]]:
    """ "x,y" for each of ``count`` positions and each score 0-10 (coordinates rounded to 0.1)."""
    step = (SPARK_WIDTH - 2 * SPARK_PAD) / max(count - 1, 1)
    return [
        [f"{round(SPARK_PAD + step * index, 1)},{_spark_y(score)}" for score in range(11)]
        for index in range(count)
    ]


def _spark_y(score: int) -> float:
    return round(SPARK_HEIGHT - SPARK_PAD - (SPARK_HEIGHT - 2 * SPARK_PAD) * score / 10, 1)


def sparkline(points: Sequence[tuple[dt.date, int | None]], *, label: str) -> SafeString:
    """Pain over the last days as a tiny line (0-10), with the label as its accessible name.

    Built from precomputed coordinates (50 a page): every value is a number or
    a constant, except the label, which is escaped.
    """
    width, height, pad = SPARK_WIDTH, SPARK_HEIGHT, SPARK_PAD
    table = _spark_points(len(points))
    coords = [
        table[index][score]
        if 0 <= score <= 10
        else f"{table[index][0].split(',')[0]},{_spark_y(score)}"
        for index, (_day, score) in enumerate(points)
        if score is not None
    ]
    base = height - pad
    body = f'<line x1="0" y1="{base}" x2="{width}" y2="{base}" stroke="{GRID}" stroke-width="1"/>'
    if len(coords) > 1:
        body += (
            f'<polyline points="{" ".join(coords)}" fill="none" stroke="{PAIN}" '
            'stroke-width="2" stroke-linejoin="round" stroke-linecap="round"/>'
        )
    if coords:
        x, y = coords[-1].split(",")
        body += f'<circle cx="{x}" cy="{y}" r="2.5" fill="{PAIN}"/>'
    return mark_safe(  # noqa: S308 - numbers and constants; the label is escaped
        f'<svg class="spark" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg">{body}</svg>'
    )


@functools.cache
def _spark_label_formats(language: str | None) -> tuple[str, str, str]:
    return (
        _("No pain scores in the last %(days)d days."),
        _("Pain %(score)d/10 on %(day)s."),
        _("Pain %(first)d/10 on %(first_day)s, %(last)d/10 on %(last_day)s."),
    )


def spark_label(points: Sequence[tuple[dt.date, int | None]]) -> str:
    """The sparkline in words: the first and the last score of the days."""
    language = get_language()
    none, one, two = _spark_label_formats(language)
    scored = [(day, score) for day, score in points if score is not None]
    if not scored:
        return none % {"days": len(points)}
    months = _month_names(language)
    if len(scored) == 1:
        day, score = scored[0]
        return one % {"score": score, "day": f"{day.day} {months[day.month]}"}
    (first_day, first), (last_day, last) = scored[0], scored[-1]
    return two % {
        "first": first,
        "first_day": f"{first_day.day} {months[first_day.month]}",
        "last": last,
        "last_day": f"{last_day.day} {months[last_day.month]}",
    }


@functools.lru_cache(maxsize=512)
def bar(percent: int | None, *, adherent: bool | None) -> SafeString:
    """A 0-100% bar with a tick at 80%; decorative (the figure is written next to it)."""
    width = 0 if percent is None else max(0, min(int(percent), 100))
    fill = DONE if adherent else PAIN
    return mark_safe(  # noqa: S308 - numbers and constants only
        '<svg class="bar" viewBox="0 0 100 8" preserveAspectRatio="none" aria-hidden="true" '
        'focusable="false" xmlns="http://www.w3.org/2000/svg">'
        f'<rect x="0" y="0" width="100" height="8" rx="2" fill="{PRESCRIBED}"/>'
        f'<rect x="0" y="0" width="{width}" height="8" rx="2" fill="{fill}"/>'
        f'<line x1="80" y1="0" x2="80" y2="8" stroke="{INK}" stroke-width="1"/></svg>'
    )
