"""Reads for the programs app."""

from __future__ import annotations

import functools

from django.db.models import Q, QuerySet

from accounts.models import is_clinic_admin
from programs.models import Exercise, PrescribedExercise, ProgramTemplate


def template_visible_to(user) -> QuerySet[ProgramTemplate]:
    """Clinic-wide templates plus the user's own copies (all, for clinic admins)."""
    templates = ProgramTemplate.objects.all()
    if is_clinic_admin(user):
        return templates
    return templates.filter(Q(owner__isnull=True) | Q(owner=user))


def template_extension_exercises(template: ProgramTemplate) -> list[Exercise]:
    """Exercises in any phase that lie on the stomach or bend backward."""
    prescribed = (
        PrescribedExercise.objects.filter(template_phase__template=template)
        .filter(
            Q(exercise__position=Exercise.Position.PRONE)
            | Q(exercise__direction=Exercise.Direction.EXTENSION)
        )
        .select_related("exercise")
    )
    seen: dict[int, Exercise] = {}
    for item in prescribed:
        seen.setdefault(item.exercise_id, item.exercise)
    return list(seen.values())


def template_phase_exercises(template: ProgramTemplate, phase: str) -> list[PrescribedExercise]:
    """The exercises of one phase of a template, in order, with their library entries.

    Every patient page and every log needs these; they change only when a
    clinician edits the template or the library is updated. So they are kept
    in this process under the template's ``revision``, which every such edit
    raises (programs/signals.py): a stale list is never served. Treat the
    returned objects as read-only; they are shared between requests.
    """
    return list(_phase_exercises(template.pk, template.revision, phase))


@functools.lru_cache(maxsize=1024)
def _phase_exercises(template_id: int, revision: int, phase: str) -> tuple[PrescribedExercise, ...]:
    return tuple(
        PrescribedExercise.objects.filter(
            template_phase__template_id=template_id, template_phase__phase=phase
        )
        .select_related("exercise")
        .order_by("order")
    )


def template_phase_exercises_forget() -> None:
    """Empty this process's cache (tests: row ids are reused between them)."""
    _phase_exercises.cache_clear()
