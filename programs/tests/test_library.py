import itertools

import pytest
from django.contrib.staticfiles import finders

from programs.models import Exercise, ProgramTemplate
from programs.phases import GUIDELINES, Phase
from programs.selectors import template_extension_exercises
from programs.services import library_sync, template_copy

REQUIRED = {
    "prone-lying": ("prone", "extension"),
    "prone-prop-elbows": ("prone", "extension"),
    "prone-press-up": ("prone", "extension"),
    "full-mckenzie-extension": ("prone", "extension"),
    "press-up-hips-off-centre": ("prone", "extension"),
    "standing-extension": ("standing", "extension"),
    "standing-side-glide": ("standing", "lateral"),
    "flexion-rotation": ("side_lying", "rotation"),
    "supine-knee-to-chest": ("supine", "flexion"),
    "seated-flexion": ("sitting", "flexion"),
    "standing-flexion": ("standing", "flexion"),
    "wall-extension": ("standing", "extension"),
    "chair-extension": ("sitting", "extension"),
}

pytestmark = pytest.mark.django_db


def test_library_has_every_exercise_from_the_sources():
    found = {e.slug: (e.position, e.direction) for e in Exercise.objects.all()}
    for slug, expected in REQUIRED.items():
        assert found.get(slug) == expected, slug


@pytest.mark.parametrize("slug", sorted(REQUIRED))
def test_every_exercise_is_complete(slug):
    exercise = Exercise.objects.get(slug=slug)
    assert len(exercise.steps) >= 2
    assert exercise.cues and exercise.common_mistakes and exercise.precautions
    assert exercise.default_reps >= 1
    assert exercise.summary
    assert finders.find(f"programs/illustrations/{slug}.svg"), "illustration missing"


def test_press_up_numbers_follow_the_source():
    press_up = Exercise.objects.get(slug="prone-press-up")
    assert (press_up.default_reps, press_up.default_hold_seconds) == (10, 10)
    assert 2 <= press_up.default_rest_seconds <= 3
    full = Exercise.objects.get(slug="full-mckenzie-extension")
    assert full.default_reps == 15
    assert 15 <= full.default_hold_seconds <= 20


def test_variants_link_the_extension_progression():
    chain = ["prone-lying", "prone-prop-elbows", "prone-press-up", "full-mckenzie-extension"]
    exercises = {e.slug: e for e in Exercise.objects.filter(slug__in=chain)}
    for easier, harder in itertools.pairwise(chain):
        assert exercises[easier].harder_variant_id == exercises[harder].pk
        assert exercises[harder].easier_variant_id == exercises[easier].pk


def test_templates_cover_all_phases_within_guidelines():
    for slug in ("mckenzie-extension", "flexion-bias"):
        template = ProgramTemplate.objects.get(slug=slug)
        phases = {p.phase: p for p in template.phases.prefetch_related("exercises")}
        assert set(phases) == set(Phase.values), slug
        for phase, template_phase in phases.items():
            assert GUIDELINES[Phase(phase)].allows(template_phase.default_sessions_per_day)
            assert template_phase.exercises.exists()


def test_phase_order_is_clinical_not_alphabetical(extension_template):
    assert [p.phase for p in extension_template.phases.all()] == [
        "acute",
        "sub_acute",
        "recovery",
        "maintenance",
    ]


def test_extension_template_starts_with_the_gentlest_variant(extension_template):
    acute = extension_template.phases.get(phase="acute")
    first = acute.exercises.order_by("order").first().exercise
    assert first.level == Exercise.Level.BEGINNER


def test_flexion_template_has_no_prone_or_extension_work(flexion_template):
    assert template_extension_exercises(flexion_template) == []
    assert template_extension_exercises(ProgramTemplate.objects.get(slug="mckenzie-extension"))


def test_library_sync_is_idempotent_and_keeps_clinic_edits():
    template = ProgramTemplate.objects.get(slug="mckenzie-extension")
    template.name = "Our clinic's extension program"
    template.save()
    before = (Exercise.objects.count(), ProgramTemplate.objects.count())
    result = library_sync()
    assert result == {"exercises_created": 0, "templates_created": 0}
    assert (Exercise.objects.count(), ProgramTemplate.objects.count()) == before
    template.refresh_from_db()
    assert template.name == "Our clinic's extension program"


def test_template_copy_duplicates_phases_and_exercises(extension_template, therapist):
    copy = template_copy(template=extension_template, owner=therapist)
    assert copy.owner == therapist and not copy.is_builtin
    assert copy.copied_from == extension_template

    def shape(template):
        return [
            (
                p.phase,
                p.default_sessions_per_day,
                [(e.exercise_id, e.reps, e.hold_seconds, e.sets) for e in p.exercises.all()],
            )
            for p in template.phases.all()
        ]

    assert shape(copy) == shape(extension_template)
    second = template_copy(template=extension_template, owner=therapist)
    assert second.slug != copy.slug
