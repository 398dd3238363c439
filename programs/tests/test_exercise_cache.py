"""What a phase prescribes is cached per process, and never served stale.

``template_phase_exercises`` keeps the list under the template's revision;
every change to a phase, its exercises or an exercise in the library renews
the revision (programs/signals.py), so the next reader loads the new list.
"""

# ruff: noqa: F811  (the shared fixtures are imported by name, then requested by name)
from __future__ import annotations

import pytest
from django.urls import reverse

from programs.models import Exercise, PrescribedExercise, ProgramTemplate, TemplatePhase
from programs.selectors import template_phase_exercises
from programs.services import template_copy
from symptoms.tests.fixtures import assigned_patient, patient_client  # noqa: F401

pytestmark = pytest.mark.django_db


def fresh(template: ProgramTemplate) -> ProgramTemplate:
    return ProgramTemplate.objects.get(pk=template.pk)


def acute_items(template: ProgramTemplate) -> list[PrescribedExercise]:
    return template_phase_exercises(fresh(template), "acute")


def test_a_second_read_of_the_same_revision_makes_no_query(
    extension_template, django_assert_num_queries
):
    template = fresh(extension_template)
    with django_assert_num_queries(1):
        first = template_phase_exercises(template, "acute")
    with django_assert_num_queries(0):
        again = template_phase_exercises(template, "acute")
    assert [item.pk for item in again] == [item.pk for item in first]
    assert first and all(item.exercise.name for item in first)


def test_editing_a_dose_is_seen_at_once(extension_template):
    before = acute_items(extension_template)
    item = PrescribedExercise.objects.get(pk=before[0].pk)
    item.reps = before[0].reps + 7
    item.save()
    after = acute_items(extension_template)
    assert after[0].reps == before[0].reps + 7


def test_adding_and_removing_an_exercise_is_seen_at_once(therapist, extension_template):
    mine = template_copy(template=extension_template, owner=therapist)
    count = len(acute_items(mine))
    phase = TemplatePhase.objects.get(template=mine, phase="acute")
    extra = PrescribedExercise.objects.create(
        template_phase=phase,
        exercise=Exercise.objects.get(slug="standing-extension"),
        order=99,
        reps=10,
        hold_seconds=2,
        rest_seconds=5,
    )
    assert len(acute_items(mine)) == count + 1
    extra.delete()
    assert len(acute_items(mine)) == count


def test_renaming_a_library_exercise_renews_every_template_using_it(extension_template):
    item = acute_items(extension_template)[0]
    exercise = Exercise.objects.get(pk=item.exercise_id)
    exercise.name = "Lying face down, renamed"
    exercise.save()
    assert acute_items(extension_template)[0].exercise.name == "Lying face down, renamed"


def test_changing_the_phase_row_renews_the_revision(extension_template):
    before = fresh(extension_template).revision
    phase = TemplatePhase.objects.get(template=extension_template, phase="acute")
    phase.notes = "Changed."
    phase.save()
    assert fresh(extension_template).revision != before


def test_saving_an_instance_loaded_earlier_keeps_the_newer_revision(extension_template):
    stale = fresh(extension_template)
    item = PrescribedExercise.objects.filter(template_phase__template=stale).first()
    item.reps += 1
    item.save()
    renewed = fresh(extension_template).revision
    assert renewed != stale.revision
    stale.name = "Renamed"
    stale.save()
    assert fresh(extension_template).revision == renewed
    assert fresh(extension_template).name == "Renamed"


def test_the_today_page_shows_a_dose_edited_after_it_was_cached(patient_client, extension_template):
    url = reverse("patients:today")
    first = acute_items(extension_template)[0]
    assert patient_client.get(url).status_code == 200  # cached now
    item = PrescribedExercise.objects.get(pk=first.pk)
    item.reps, item.sets, item.hold_seconds = 37, 1, 5
    item.save()
    assert "37 times, hold 5 seconds each" in patient_client.get(url).content.decode()
