"""Plain-words formatting for the patient's pages."""

from __future__ import annotations

from django import template
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

register = template.Library()


@register.filter
def duration(seconds: int) -> str:
    """10 → "10 seconds", 120 → "2 minutes", 90 → "1 min 30 s"."""
    seconds = int(seconds or 0)
    if seconds >= 60 and seconds % 60 == 0:
        minutes = seconds // 60
        return ngettext("%(n)d minute", "%(n)d minutes", minutes) % {"n": minutes}
    if seconds > 60:
        return _("%(m)d min %(s)d s") % {"m": seconds // 60, "s": seconds % 60}
    return ngettext("%(n)d second", "%(n)d seconds", seconds) % {"n": seconds}


@register.filter
def dose(item) -> str:
    """A prescribed exercise in words: "10 times, hold 10 seconds each"."""
    if item.sets > 1:
        reps = _("%(sets)d sets of %(reps)d") % {"sets": item.sets, "reps": item.reps}
    else:
        reps = ngettext("%(n)d time", "%(n)d times", item.reps) % {"n": item.reps}
    if not item.hold_seconds:
        return reps
    if item.reps == 1 and item.sets == 1:
        return _("Stay for %(time)s") % {"time": duration(item.hold_seconds)}
    return _("%(reps)s, hold %(time)s each") % {"reps": reps, "time": duration(item.hold_seconds)}
