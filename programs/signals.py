"""Renew ``ProgramTemplate.revision`` whenever what a phase of a template prescribes changes.

The template's own fields (name, description) are read fresh on every
request; only its phases, their exercises and the exercises themselves are
cached (programs.selectors.template_phase_exercises), so only they bump it.

Connected in ``ProgramsConfig.ready``. Covers saves and deletes through the
ORM and the admin (its inlines save row by row). Bulk writes skip signals:
the only ones (``library_sync`` and ``template_copy``) create brand-new
templates, whose revision no reader has cached yet.
"""

from __future__ import annotations

from programs.models import (
    Exercise,
    PrescribedExercise,
    ProgramTemplate,
    TemplatePhase,
    new_revision,
)


def bump_templates(template_ids) -> None:
    ProgramTemplate.objects.filter(pk__in=template_ids).update(revision=new_revision())


def phase_changed(sender, instance: TemplatePhase, **kwargs) -> None:
    if not kwargs.get("raw"):
        bump_templates([instance.template_id])


def prescribed_changed(sender, instance: PrescribedExercise, **kwargs) -> None:
    if kwargs.get("raw"):
        return
    template_id = (
        TemplatePhase.objects.filter(pk=instance.template_phase_id)
        .values_list("template_id", flat=True)
        .first()
    )
    if template_id is not None:
        bump_templates([template_id])


def exercise_saved(sender, instance: Exercise, created: bool, **kwargs) -> None:
    if created or kwargs.get("raw"):
        return
    bump_templates(TemplatePhase.objects.filter(exercises__exercise=instance).values("template_id"))
