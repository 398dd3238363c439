"""Reads for the programs app."""

from __future__ import annotations

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
    return list(
        PrescribedExercise.objects.filter(
            template_phase__template=template, template_phase__phase=phase
        )
        .select_related("exercise")
        .order_by("order")
    )
