import pytest
from django.urls import reverse

from programs.models import ProgramTemplate, TemplatePhase
from programs.services import template_copy


@pytest.fixture
def therapist_client(client, therapist):
    client.force_login(therapist)
    return client


def test_therapist_reads_builtin_templates_but_cannot_edit_them(
    therapist_client, extension_template
):
    url = reverse("admin:programs_programtemplate_change", args=[extension_template.pk])
    page = therapist_client.get(url)
    assert page.status_code == 200
    assert page.context["has_change_permission"] is False
    therapist_client.post(
        url, {"name": "Hijacked", "slug": extension_template.slug, "bias": "extension"}
    )
    extension_template.refresh_from_db()
    assert extension_template.name != "Hijacked"


def test_copy_action_gives_the_therapist_an_editable_copy(
    therapist_client, therapist, extension_template
):
    response = therapist_client.post(
        reverse("admin:programs_programtemplate_changelist"),
        {"action": "copy_templates", "_selected_action": [extension_template.pk]},
    )
    assert response.status_code == 302
    copy = ProgramTemplate.objects.get(owner=therapist)
    assert copy.copied_from == extension_template
    assert copy.phases.count() == 4
    page = therapist_client.get(reverse("admin:programs_programtemplate_change", args=[copy.pk]))
    assert page.context["has_change_permission"] is True


def test_other_therapists_templates_are_404(therapist_client, other_therapist, extension_template):
    theirs = template_copy(template=extension_template, owner=other_therapist)
    listing = therapist_client.get(reverse("admin:programs_programtemplate_changelist"))
    assert theirs not in listing.context["cl"].result_list
    url = reverse("admin:programs_programtemplate_change", args=[theirs.pk])
    assert therapist_client.get(url).status_code == 404
    phase = theirs.phases.first()
    assert (
        therapist_client.get(
            reverse("admin:programs_templatephase_change", args=[phase.pk])
        ).status_code
        == 404
    )


def test_phase_sessions_outside_guideline_get_a_clear_error(
    therapist_client, therapist, extension_template
):
    copy = template_copy(template=extension_template, owner=therapist)
    phase = copy.phases.get(phase="recovery")
    url = reverse("admin:programs_templatephase_change", args=[phase.pk])
    response = therapist_client.post(
        url,
        {
            "template": copy.pk,
            "phase": "recovery",
            "default_sessions_per_day": "6",
            "notes": "",
            "exercises-TOTAL_FORMS": "0",
            "exercises-INITIAL_FORMS": "0",
            "exercises-MIN_NUM_FORMS": "0",
            "exercises-MAX_NUM_FORMS": "1000",
        },
    )
    assert response.status_code == 200
    assert "between 3 and 4" in response.content.decode()
    assert TemplatePhase.objects.get(pk=phase.pk).default_sessions_per_day == 3


def test_exercise_library_is_read_only_for_therapists(therapist_client):
    from programs.models import Exercise

    press_up = Exercise.objects.get(slug="prone-press-up")
    page = therapist_client.get(reverse("admin:programs_exercise_change", args=[press_up.pk]))
    assert page.status_code == 200
    assert page.context["has_change_permission"] is False
    assert press_up.illustration_url in page.content.decode()
