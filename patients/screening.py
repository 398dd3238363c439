"""Which screening answers make a program unsafe to assign.

From the clinical sources: no lying on the stomach in pregnancy; spinal
stenosis needs a doctor's clearance before extension work; current red-flag
symptoms need medical attention first. Spinal arthritis or facet joint
problems may not suit extension: a warning, not a refusal.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.translation import gettext as _

from patients.models import Patient
from programs.models import ProgramTemplate
from programs.selectors import template_extension_exercises


@dataclass(frozen=True)
class Concern:
    code: str
    message: str
    blocking: bool


def screening_concerns(*, patient: Patient, template: ProgramTemplate) -> list[Concern]:
    concerns: list[Concern] = []
    risky = template_extension_exercises(template)
    prone = [exercise for exercise in risky if exercise.is_prone]
    if patient.has_red_flags:
        concerns.append(
            Concern(
                "red_flags",
                _(
                    "The patient reports warning signs (bladder or bowel control, groin "
                    "numbness or severe leg weakness). They need medical assessment before "
                    "any exercise program."
                ),
                blocking=True,
            )
        )
    if patient.is_pregnant and prone:
        names = ", ".join(exercise.name for exercise in prone)
        concerns.append(
            Concern(
                "pregnancy",
                _(
                    "The patient is pregnant and this program has exercises lying on the "
                    "stomach (%(names)s). Choose a program without them, such as the "
                    "flexion-bias program."
                )
                % {"names": names},
                blocking=True,
            )
        )
    if patient.spinal_stenosis == Patient.Stenosis.NOT_CLEARED and risky:
        concerns.append(
            Concern(
                "stenosis",
                _(
                    "The patient has spinal stenosis without a doctor's clearance and this "
                    "program has extension exercises. Get clearance first or choose the "
                    "flexion-bias program."
                ),
                blocking=True,
            )
        )
    if patient.spinal_arthritis_or_facet and risky:
        concerns.append(
            Concern(
                "facet",
                _(
                    "The patient has spinal arthritis or facet joint problems; extension "
                    "exercises may not suit them. Watch their first sessions closely."
                ),
                blocking=False,
            )
        )
    return concerns
