"""The phase guideline table, exactly as the clinical source gives it.

| phase       | sessions/day | reps/session | typical duration |
| acute       | 6-10         | 10           | 3-5 days         |
| sub-acute   | 4-6          | 10           | 1-2 weeks        |
| recovery    | 3-4          | 10           | 2-4 weeks        |
| maintenance | 2-3          | 10           | ongoing          |

These are clinical facts, not data a clinic edits, so they live in code and
the database enforces them with check constraints built from this table.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import models
from django.utils.translation import gettext_lazy as _


class Phase(models.TextChoices):
    ACUTE = "acute", _("Acute")
    SUB_ACUTE = "sub_acute", _("Sub-acute")
    RECOVERY = "recovery", _("Recovery")
    MAINTENANCE = "maintenance", _("Maintenance")


@dataclass(frozen=True)
class PhaseGuideline:
    phase: Phase
    sessions_min: int
    sessions_max: int
    reps_per_session: int
    typical_min_days: int | None  # None: ongoing, no end
    typical_max_days: int | None
    typical_duration: str

    @property
    def sessions_range(self) -> range:
        return range(self.sessions_min, self.sessions_max + 1)

    @property
    def sessions_label(self) -> str:
        return f"{self.sessions_min}-{self.sessions_max}"

    def allows(self, sessions_per_day: int) -> bool:
        return self.sessions_min <= sessions_per_day <= self.sessions_max


GUIDELINES: dict[str, PhaseGuideline] = {
    Phase.ACUTE: PhaseGuideline(Phase.ACUTE, 6, 10, 10, 3, 5, "3-5 days"),
    Phase.SUB_ACUTE: PhaseGuideline(Phase.SUB_ACUTE, 4, 6, 10, 7, 14, "1-2 weeks"),
    Phase.RECOVERY: PhaseGuideline(Phase.RECOVERY, 3, 4, 10, 14, 28, "2-4 weeks"),
    Phase.MAINTENANCE: PhaseGuideline(Phase.MAINTENANCE, 2, 3, 10, None, None, "ongoing"),
}

PHASE_ORDER: list[str] = [Phase.ACUTE, Phase.SUB_ACUTE, Phase.RECOVERY, Phase.MAINTENANCE]


def guideline_for(phase: str) -> PhaseGuideline:
    return GUIDELINES[Phase(phase)]


def next_phase(phase: str) -> str | None:
    index = PHASE_ORDER.index(Phase(phase))
    return PHASE_ORDER[index + 1] if index + 1 < len(PHASE_ORDER) else None


def sessions_per_day_condition(phase_field: str, sessions_field: str) -> models.Q:
    """A Q that holds only when sessions/day lies inside the phase's range."""
    condition = models.Q()
    for guideline in GUIDELINES.values():
        condition |= models.Q(
            **{
                phase_field: guideline.phase.value,
                f"{sessions_field}__gte": guideline.sessions_min,
                f"{sessions_field}__lte": guideline.sessions_max,
            }
        )
    return condition
