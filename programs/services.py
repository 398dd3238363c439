"""Writes for the programs app: loading the library, copying templates."""

from __future__ import annotations

from django.db import transaction

from programs.models import Exercise, PrescribedExercise, ProgramTemplate, TemplatePhase
from programs.phases import guideline_for

EXERCISE_FIELDS = (
    "name",
    "summary",
    "position",
    "direction",
    "level",
    "steps",
    "cues",
    "common_mistakes",
    "precautions",
    "default_reps",
    "default_hold_seconds",
    "default_rest_seconds",
    "sort_order",
)


@transaction.atomic
def library_sync() -> dict[str, int]:
    """Load the exercise library and the built-in templates. Safe to run again.

    Exercises are ours: their text is brought up to date on every run.
    Built-in templates are created when missing and left alone otherwise, so a
    clinic admin's edits to them survive upgrades.
    """
    from programs.library_data import EXERCISES, TEMPLATES

    created = 0
    by_slug: dict[str, Exercise] = {}
    for data in EXERCISES:
        exercise, was_created = Exercise.objects.update_or_create(
            slug=data["slug"], defaults={field: data[field] for field in EXERCISE_FIELDS}
        )
        created += was_created
        by_slug[exercise.slug] = exercise
    for data in EXERCISES:
        exercise = by_slug[data["slug"]]
        exercise.easier_variant = by_slug.get(data["easier"]) if data["easier"] else None
        exercise.harder_variant = by_slug.get(data["harder"]) if data["harder"] else None
        exercise.save(update_fields=["easier_variant", "harder_variant"])

    templates_created = 0
    for data in TEMPLATES:
        if ProgramTemplate.objects.filter(slug=data["slug"]).exists():
            continue
        template = ProgramTemplate.objects.create(
            slug=data["slug"],
            name=data["name"],
            description=data["description"],
            bias=data["bias"],
            is_builtin=True,
        )
        for phase_data in data["phases"]:
            phase = TemplatePhase.objects.create(
                template=template,
                phase=phase_data["phase"],
                default_sessions_per_day=phase_data["default_sessions_per_day"],
                notes=phase_data.get("notes", ""),
            )
            PrescribedExercise.objects.bulk_create(
                PrescribedExercise(
                    template_phase=phase,
                    exercise=by_slug[item["exercise"]],
                    order=order,
                    reps=item["reps"],
                    hold_seconds=item["hold_seconds"],
                    rest_seconds=item["rest_seconds"],
                    sets=item.get("sets", 1),
                )
                for order, item in enumerate(phase_data["exercises"], start=1)
            )
        templates_created += 1
    return {"exercises_created": created, "templates_created": templates_created}


@transaction.atomic
def template_copy(*, template: ProgramTemplate, owner, name: str | None = None) -> ProgramTemplate:
    """Copy a template with all its phases and exercises, owned by ``owner``."""
    base_slug = f"{template.slug}-copy"
    slug = base_slug
    suffix = 2
    while ProgramTemplate.objects.filter(slug=slug).exists():
        slug = f"{base_slug}-{suffix}"
        suffix += 1
    copy = ProgramTemplate.objects.create(
        slug=slug,
        name=name or f"{template.name} (copy)",
        description=template.description,
        bias=template.bias,
        is_builtin=False,
        owner=owner,
        copied_from=template,
    )
    for phase in template.phases.prefetch_related("exercises"):
        new_phase = TemplatePhase.objects.create(
            template=copy,
            phase=phase.phase,
            default_sessions_per_day=phase.default_sessions_per_day,
            notes=phase.notes,
        )
        PrescribedExercise.objects.bulk_create(
            PrescribedExercise(
                template_phase=new_phase,
                exercise_id=item.exercise_id,
                order=item.order,
                reps=item.reps,
                hold_seconds=item.hold_seconds,
                rest_seconds=item.rest_seconds,
                sets=item.sets,
            )
            for item in phase.exercises.all()
        )
    return copy


def default_sessions_for(template: ProgramTemplate, phase: str) -> int:
    """The template's sessions/day for a phase, or the guideline's upper end."""
    template_phase = template.phases.filter(phase=phase).first()
    if template_phase is not None:
        return template_phase.default_sessions_per_day
    return guideline_for(phase).sessions_max
