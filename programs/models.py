from __future__ import annotations

import secrets

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.templatetags.static import static
from django.utils.translation import gettext_lazy as _

from programs.phases import PHASE_ORDER, Phase, guideline_for, sessions_per_day_condition


def phase_rank_expression(field: str = "phase") -> models.Case:
    """Acute 0, sub-acute 1, recovery 2, maintenance 3: for ordering by phase."""
    return models.Case(
        *[
            models.When(**{field: phase.value}, then=models.Value(index))
            for index, phase in enumerate(PHASE_ORDER)
        ],
        default=models.Value(99),
        output_field=models.IntegerField(),
    )


class ExercisePosition(models.TextChoices):
    PRONE = "prone", _("Lying on the stomach")
    SUPINE = "supine", _("Lying on the back")
    SIDE_LYING = "side_lying", _("Lying on the side")
    SITTING = "sitting", _("Sitting")
    STANDING = "standing", _("Standing")


class ExerciseDirection(models.TextChoices):
    EXTENSION = "extension", _("Extension (bending backward)")
    FLEXION = "flexion", _("Flexion (bending forward)")
    LATERAL = "lateral", _("Lateral (side glide)")
    ROTATION = "rotation", _("Rotation")


class ExerciseLevel(models.TextChoices):
    BEGINNER = "beginner", _("Beginner")
    INTERMEDIATE = "intermediate", _("Intermediate")
    ADVANCED = "advanced", _("Advanced")


class Exercise(models.Model):
    """One exercise of the library, with everything a patient needs to do it."""

    Position = ExercisePosition

    Direction = ExerciseDirection

    Level = ExerciseLevel

    slug = models.SlugField(max_length=80, unique=True)
    name = models.CharField(max_length=120)
    summary = models.TextField(help_text=_("One or two sentences: what it is and who it is for."))
    position = models.CharField(max_length=20, choices=Position.choices)
    direction = models.CharField(max_length=20, choices=Direction.choices)
    level = models.CharField(max_length=20, choices=Level.choices)
    steps = models.JSONField(default=list, help_text=_("Ordered steps, one sentence each."))
    cues = models.JSONField(default=list, blank=True)
    common_mistakes = models.JSONField(default=list, blank=True)
    precautions = models.JSONField(default=list, blank=True)
    default_reps = models.PositiveSmallIntegerField()
    default_hold_seconds = models.PositiveSmallIntegerField()
    default_rest_seconds = models.PositiveSmallIntegerField()
    easier_variant = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text=_("The gentler version to fall back to."),
    )
    harder_variant = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text=_("The next step up once this one is comfortable."),
    )
    sort_order = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["sort_order", "name"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(position__in=ExercisePosition.values),
                name="exercise_position_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(direction__in=ExerciseDirection.values),
                name="exercise_direction_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(level__in=ExerciseLevel.values), name="exercise_level_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(default_reps__gte=1), name="exercise_reps_positive"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_prone(self) -> bool:
        return self.position == self.Position.PRONE

    @property
    def is_extension(self) -> bool:
        return self.direction == self.Direction.EXTENSION

    @property
    def illustration_url(self) -> str:
        return static(f"programs/illustrations/{self.slug}.svg")


class TemplateBias(models.TextChoices):
    EXTENSION = "extension", _("Extension bias (McKenzie)")
    FLEXION = "flexion", _("Flexion bias")
    MIXED = "mixed", _("Mixed")


def new_revision() -> int:
    """A fresh ``ProgramTemplate.revision``: random, so no two versions share one."""
    return secrets.randbits(62) + 2


class ProgramTemplate(models.Model):
    """A phase-based program: for each phase, the exercises to do."""

    Bias = TemplateBias

    slug = models.SlugField(max_length=80, unique=True)
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    bias = models.CharField(max_length=20, choices=Bias.choices)
    is_builtin = models.BooleanField(
        default=False, help_text=_("Shipped with the library; only clinic admins edit these.")
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="program_templates",
        help_text=_("The therapist who made this copy. Empty for clinic-wide templates."),
    )
    copied_from = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="copies"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # A new random number on every change to the template's phases, their
    # exercises or an exercise it uses (programs/signals.py): readers cache
    # what a phase prescribes under (template, revision). Random, not +1, so a
    # change that was rolled back can never match a later one.
    revision = models.PositiveBigIntegerField(default=new_revision, editable=False)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(bias__in=TemplateBias.values), name="template_bias_valid"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs) -> None:
        # ``revision`` is only written by programs/signals.py: saving an instance
        # loaded earlier must not write an older number back.
        if not self._state.adding and kwargs.get("update_fields") is None:
            kwargs["update_fields"] = [
                field.name
                for field in self._meta.concrete_fields
                if not field.primary_key and field.name != "revision"
            ]
        super().save(*args, **kwargs)


class TemplatePhase(models.Model):
    template = models.ForeignKey(ProgramTemplate, on_delete=models.CASCADE, related_name="phases")
    phase = models.CharField(max_length=20, choices=Phase.choices)
    default_sessions_per_day = models.PositiveSmallIntegerField(
        help_text=_("Must lie inside the phase guideline (acute 6-10, sub-acute 4-6, ...).")
    )
    notes = models.TextField(blank=True)
    # Stored by the database itself, so phases sort acute → maintenance everywhere.
    phase_rank = models.GeneratedField(
        expression=phase_rank_expression(),
        output_field=models.PositiveSmallIntegerField(),
        db_persist=True,
    )

    class Meta:
        ordering = ["template", "phase_rank"]
        constraints = [
            models.UniqueConstraint(fields=["template", "phase"], name="template_phase_unique"),
            models.CheckConstraint(
                condition=models.Q(phase__in=Phase.values), name="template_phase_valid"
            ),
            models.CheckConstraint(
                condition=sessions_per_day_condition("phase", "default_sessions_per_day"),
                name="template_phase_sessions_in_guideline",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.template} / {self.get_phase_display()}"

    def clean(self) -> None:
        super().clean()
        if self.phase in Phase.values and self.default_sessions_per_day is not None:
            guideline = guideline_for(self.phase)
            if not guideline.allows(self.default_sessions_per_day):
                raise ValidationError(
                    {
                        "default_sessions_per_day": _(
                            "%(phase)s phase: choose between %(low)d and %(high)d sessions a day."
                        )
                        % {
                            "phase": Phase(self.phase).label,
                            "low": guideline.sessions_min,
                            "high": guideline.sessions_max,
                        }
                    }
                )


class PrescribedExercise(models.Model):
    template_phase = models.ForeignKey(
        TemplatePhase, on_delete=models.CASCADE, related_name="exercises"
    )
    exercise = models.ForeignKey(Exercise, on_delete=models.PROTECT, related_name="+")
    order = models.PositiveSmallIntegerField(default=1)
    reps = models.PositiveSmallIntegerField()
    hold_seconds = models.PositiveSmallIntegerField()
    rest_seconds = models.PositiveSmallIntegerField()
    sets = models.PositiveSmallIntegerField(default=1)

    class Meta:
        ordering = ["template_phase", "order"]
        constraints = [
            models.CheckConstraint(condition=models.Q(reps__gte=1), name="prescribed_reps_min"),
            models.CheckConstraint(condition=models.Q(sets__gte=1), name="prescribed_sets_min"),
        ]

    def __str__(self) -> str:
        return f"{self.exercise}: {self.sets} x {self.reps}, hold {self.hold_seconds} s"

    @property
    def total_reps(self) -> int:
        return self.sets * self.reps
