"""The alert rules, in one place. Pure functions over stored facts; services write.

Every alert is stored once per (patient, kind, period key): the key names the
condition's occurrence, so the same ongoing condition never alerts twice.

- red_flag: a warning sign is reported (urgent: emailed at once). Key: the report.
- peripheralising: the pain reaches further from the spine than at the previous
  report. Key: the local date.
- high_pain: a pain score of 8 or more. Key: the local date.
- pain_rising: a score 2 or more points above the lowest score reported in the
  3 local days before it and earlier that day. Key: the local date.
- too_many_reps: more than 100 repetitions logged in one local day. Key: the date.
- no_sessions: 3 complete local days in a row on a program without a session.
  Key: the streak's first day (one alert per streak, however long it lasts).
- no_improvement: 14 or more days on a program and the latest pain score is not
  below the first one on it. Key: the program (once per program).
- phase_overdue: the day in phase is beyond the phase's typical maximum (acute
  5, sub-acute 14, recovery 28 days). Key: the program, phase and phase start.

Everything except red flags is routine: it goes to the therapist in one
daily digest email, not an email each.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from django.utils.translation import gettext as _

from programs.phases import Phase, guideline_for
from symptoms.models import AlertKind, AlertSeverity, PainLocation

HIGH_PAIN_SCORE = 8
PAIN_RISE_POINTS = 2
PAIN_RISE_DAYS = 3  # the three local days before the report's, and earlier that day
REPS_SORENESS_LIMIT = 100
NO_SESSIONS_DAYS = 3
NO_IMPROVEMENT_DAYS = 14

URGENT_KINDS = frozenset({AlertKind.RED_FLAG})


def severity_of(kind: str) -> str:
    return AlertSeverity.URGENT if kind in URGENT_KINDS else AlertSeverity.ROUTINE


@dataclass(frozen=True)
class AlertSpec:
    kind: str
    period_key: str
    message: str

    @property
    def severity(self) -> str:
        return severity_of(self.kind)


# --- Rules checked when the patient logs pain ---------------------------------------


def rise_window_start(local_date: dt.date) -> dt.date:
    """The first local date whose reports a new report is compared with."""
    return local_date - dt.timedelta(days=PAIN_RISE_DAYS)


def rise_baseline(earlier_scores: Iterable[int]) -> int | None:
    """The lowest of the scores reported in the rise window before this report."""
    return min(earlier_scores, default=None)


def pain_rising(*, score: int, baseline: int | None) -> bool:
    """Pain up by 2 or more points over 3 days: above the window's lowest score by 2+."""
    return baseline is not None and score - baseline >= PAIN_RISE_POINTS


def high_pain(score: int) -> bool:
    return score >= HIGH_PAIN_SCORE


def too_many_reps(reps_today: int) -> bool:
    return reps_today > REPS_SORENESS_LIMIT


def pain_alerts(
    *,
    local_date: dt.date,
    score: int,
    location_label: str,
    trend: str,
    previous_location: str,
    baseline: int | None,
    reps_today: int,
) -> list[AlertSpec]:
    """The alerts one new pain report raises (``location_label`` may carry the note)."""
    from symptoms.models import PainTrend

    period = local_date.isoformat()
    specs: list[AlertSpec] = []
    if trend == PainTrend.PERIPHERALISING:
        specs.append(
            AlertSpec(
                AlertKind.PERIPHERALISING,
                period,
                _("Pain has spread further from the spine: %(before)s → %(now)s (%(score)d/10).")
                % {
                    "before": PainLocation(previous_location).label,
                    "now": location_label,
                    "score": score,
                },
            )
        )
    if high_pain(score):
        specs.append(
            AlertSpec(
                AlertKind.HIGH_PAIN,
                period,
                _("Pain score %(score)d/10 logged (%(where)s).")
                % {"score": score, "where": location_label},
            )
        )
    if pain_rising(score=score, baseline=baseline):
        specs.append(
            AlertSpec(
                AlertKind.PAIN_RISING,
                period,
                _("Pain rose to %(now)d/10, up from %(before)d/10 within the last %(days)d days.")
                % {"before": baseline, "now": score, "days": PAIN_RISE_DAYS},
            )
        )
    if too_many_reps(reps_today):
        specs.append(
            AlertSpec(
                AlertKind.TOO_MANY_REPS,
                period,
                _("%(reps)d repetitions logged today (more than 100).") % {"reps": reps_today},
            )
        )
    return specs


# --- Rules checked by the periodic evaluation -----------------------------------------


@dataclass(frozen=True)
class ProgramFacts:
    """What the time-based rules need to know about one patient on an active program."""

    program_key: str  # the assignment's public id
    started_on: dt.date
    phase: str
    phase_started_on: dt.date
    today: dt.date  # the patient's local date
    last_session_on: dt.date | None  # the last local day with a session, any program
    first_pain: tuple[dt.date, int] | None  # first score on this program
    last_pain: tuple[dt.date, int] | None  # latest score on this program


def no_sessions_streak_start(facts: ProgramFacts) -> dt.date | None:
    """The first day of a run of 3+ complete days on the program without a session."""
    start = facts.started_on
    if facts.last_session_on is not None:
        start = max(start, facts.last_session_on + dt.timedelta(days=1))
    return start if (facts.today - start).days >= NO_SESSIONS_DAYS else None


def no_improvement(facts: ProgramFacts) -> bool:
    """14 or more days on the program, and the latest pain score is not below the first."""
    if (facts.today - facts.started_on).days < NO_IMPROVEMENT_DAYS:
        return False
    if facts.first_pain is None or facts.last_pain is None:
        return False
    return facts.last_pain[0] > facts.first_pain[0] and facts.last_pain[1] >= facts.first_pain[1]


def phase_day(facts: ProgramFacts) -> int:
    return (facts.today - facts.phase_started_on).days + 1


def phase_overdue(facts: ProgramFacts) -> bool:
    typical_max = guideline_for(facts.phase).typical_max_days
    return typical_max is not None and phase_day(facts) > typical_max


def time_alerts(facts: ProgramFacts) -> list[AlertSpec]:
    specs: list[AlertSpec] = []
    streak = no_sessions_streak_start(facts)
    if streak is not None:
        days = (facts.today - streak).days
        specs.append(
            AlertSpec(
                AlertKind.NO_SESSIONS,
                streak.isoformat(),
                _("No sessions logged for %(days)d days (since %(date)s).")
                % {"days": days, "date": streak.isoformat()},
            )
        )
    if no_improvement(facts):
        assert facts.first_pain is not None and facts.last_pain is not None
        specs.append(
            AlertSpec(
                AlertKind.NO_IMPROVEMENT,
                f"program:{facts.program_key}",
                _(
                    "No improvement after %(days)d days on the program: pain %(first)d/10 on "
                    "%(first_date)s, %(last)d/10 on %(last_date)s."
                )
                % {
                    "days": (facts.today - facts.started_on).days,
                    "first": facts.first_pain[1],
                    "first_date": facts.first_pain[0].isoformat(),
                    "last": facts.last_pain[1],
                    "last_date": facts.last_pain[0].isoformat(),
                },
            )
        )
    if phase_overdue(facts):
        guideline = guideline_for(facts.phase)
        specs.append(
            AlertSpec(
                AlertKind.PHASE_OVERDUE,
                f"program:{facts.program_key}:{facts.phase}:{facts.phase_started_on.isoformat()}",
                _("%(phase)s phase on day %(day)d; it typically lasts %(typical)s.")
                % {
                    "phase": Phase(facts.phase).label,
                    "day": phase_day(facts),
                    "typical": guideline.typical_duration,
                },
            )
        )
    return specs
