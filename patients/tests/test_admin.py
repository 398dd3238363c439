"""The admin as therapists and clinic admins use it, scoped to their patients."""

import pytest
from django.urls import reverse

from accounts.models import User
from patients import services
from patients.models import Assignment, Patient
from tests.factories import PatientFactory


@pytest.fixture
def therapist_client(client, therapist):
    client.force_login(therapist)
    return client


@pytest.fixture
def admin_client_(client, clinic_admin):
    client.force_login(clinic_admin)
    return client


def test_therapist_creates_a_patient_without_choosing_a_password(therapist_client, therapist):
    response = therapist_client.post(
        reverse("admin:patients_patient_add"),
        {
            "email": "Maria@Example.org",
            "full_name": "Maria Lopez",
            "therapist": therapist.pk,
            "timezone": "Europe/Madrid",
            "wake_time": "08:00",
            "sleep_time": "22:00",
            "spinal_stenosis": "none",
            "reminders_enabled": "on",
        },
    )
    patient = Patient.objects.get(user__email="maria@example.org")
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:patients_patient_change", args=[patient.pk])
    assert patient.therapist == therapist
    assert not patient.user.has_usable_password()
    assert patient.reminder_consent_at is not None
    assert str(patient.wake_time) == "08:00:00"


def test_therapist_cannot_create_a_patient_for_another_therapist(therapist_client, other_therapist):
    response = therapist_client.post(
        reverse("admin:patients_patient_add"),
        {
            "email": "x@example.org",
            "full_name": "X",
            "therapist": other_therapist.pk,
            "timezone": "Europe/London",
            "wake_time": "07:00",
            "sleep_time": "21:00",
            "spinal_stenosis": "none",
        },
    )
    assert response.status_code == 200
    assert "therapist" in response.context["adminform"].form.errors
    assert not Patient.objects.filter(user__email="x@example.org").exists()


def test_full_flow_assign_flexion_advance_and_see_history(
    therapist_client, therapist, patient, flexion_template
):
    assign_url = reverse("admin:patients_patient_assign", args=[patient.pk])
    response = therapist_client.post(
        assign_url, {"template": flexion_template.pk, "phase": "acute", "sessions_per_day": "7"}
    )
    assert response.status_code == 302
    assignment = Assignment.objects.get(patient=patient, status="active")
    assert (assignment.template, assignment.sessions_per_day) == (flexion_template, 7)

    response = therapist_client.post(
        reverse("admin:patients_patient_advance", args=[patient.pk]),
        {
            "reason": "Pain down to 3/10 and centralised",
            "sessions_per_day": "5",
            "from_phase": "acute",
        },
    )
    assert response.status_code == 302
    assignment.refresh_from_db()
    assert (assignment.current_phase, assignment.sessions_per_day) == ("sub_acute", 5)

    page = therapist_client.get(reverse("admin:patients_patient_change", args=[patient.pk]))
    html = page.content.decode()
    assert "Phase history" in html
    assert "Pain down to 3/10 and centralised" in html
    assert "Sub-acute, 5/day" in html
    assert flexion_template.name in html


def test_sessions_out_of_range_shows_a_clear_error(therapist_client, patient, flexion_template):
    response = therapist_client.post(
        reverse("admin:patients_patient_assign", args=[patient.pk]),
        {"template": flexion_template.pk, "phase": "recovery", "sessions_per_day": "8"},
    )
    assert response.status_code == 200
    assert "between 3 and 4" in response.content.decode()
    assert not Assignment.objects.filter(patient=patient).exists()


def test_screening_refusal_then_override_in_the_admin(
    therapist_client, patient, extension_template
):
    Patient.objects.filter(pk=patient.pk).update(is_pregnant=True)
    url = reverse("admin:patients_patient_assign", args=[patient.pk])
    response = therapist_client.post(url, {"template": extension_template.pk, "phase": "acute"})
    html = response.content.decode()
    assert response.status_code == 200
    assert "pregnant" in html and "Safety override reason" in html
    assert not Assignment.objects.filter(patient=patient).exists()

    response = therapist_client.post(
        url,
        {
            "template": extension_template.pk,
            "phase": "acute",
            "override_reason": "Postpartum next week; obstetrician agrees",
        },
    )
    assert response.status_code == 302
    assert Assignment.objects.get(patient=patient).safety_override_reason.startswith("Postpartum")


def test_adjust_sessions_per_day(therapist_client, therapist, patient, flexion_template):
    services.assignment_create(
        patient=patient, template=flexion_template, assigned_by=therapist, sessions_per_day=6
    )
    url = reverse("admin:patients_patient_adjust", args=[patient.pk])
    bad = therapist_client.post(url, {"phase": "acute", "sessions_per_day": "12", "reason": "more"})
    assert "between 6 and 10" in bad.content.decode()
    good = therapist_client.post(
        url, {"phase": "acute", "sessions_per_day": "9", "reason": "Tolerating it"}
    )
    assert good.status_code == 302
    assert Assignment.objects.get(patient=patient).sessions_per_day == 9


def test_changelist_shows_only_own_patients(therapist_client, patient, other_patient):
    response = therapist_client.get(reverse("admin:patients_patient_changelist"))
    names = [p.pk for p in response.context["cl"].result_list]
    assert names == [patient.pk]
    assert "Olive Other" not in response.content.decode()


def test_search_finds_only_own_patients(therapist_client, patient, other_patient):
    response = therapist_client.get(reverse("admin:patients_patient_changelist"), {"q": "olive"})
    assert list(response.context["cl"].result_list) == []


def test_autocomplete_finds_only_own_patients(therapist_client, patient, other_patient):
    response = therapist_client.get(
        reverse("admin:autocomplete"),
        {"app_label": "patients", "model_name": "assignment", "field_name": "patient", "term": "o"},
    )
    assert response.status_code == 200
    ids = {int(r["id"]) for r in response.json()["results"]}
    assert other_patient.pk not in ids
    response = therapist_client.get(
        reverse("admin:autocomplete"),
        {
            "app_label": "patients",
            "model_name": "assignment",
            "field_name": "patient",
            "term": "Pat",
        },
    )
    assert {int(r["id"]) for r in response.json()["results"]} == {patient.pk}


@pytest.mark.parametrize(
    "name", ["change", "history", "delete", "assign", "advance", "adjust", "end"]
)
def test_other_therapists_patient_is_404_by_url(therapist_client, other_patient, name):
    url = reverse(f"admin:patients_patient_{name}", args=[other_patient.pk])
    assert therapist_client.get(url).status_code == 404
    assert therapist_client.post(url, {"reason": "x", "template": 1}).status_code in (403, 404)


def test_other_therapists_assignment_is_invisible(
    therapist_client, other_therapist, other_patient, flexion_template
):
    assignment = services.assignment_create(
        patient=other_patient, template=flexion_template, assigned_by=other_therapist
    )
    listing = therapist_client.get(reverse("admin:patients_assignment_changelist"))
    assert list(listing.context["cl"].result_list) == []
    url = reverse("admin:patients_assignment_change", args=[assignment.pk])
    assert therapist_client.get(url).status_code == 404


def test_advance_action_on_the_assignment_list(
    therapist_client, therapist, patient, flexion_template
):
    assignment = services.assignment_create(
        patient=patient, template=flexion_template, assigned_by=therapist
    )
    url = reverse("admin:patients_assignment_changelist")
    confirm = therapist_client.post(
        url, {"action": "advance_to_next_phase", "_selected_action": [assignment.pk]}
    )
    assert confirm.status_code == 200
    assert "Advance to the next phase" in confirm.content.decode()
    assert f'name="from_phase_{assignment.pk}" value="acute"' in confirm.content.decode()
    data = {
        "action": "advance_to_next_phase",
        "apply": "1",
        "_selected_action": [assignment.pk],
        f"from_phase_{assignment.pk}": "acute",
        "reason": "Ready",
    }
    done = therapist_client.post(url, data)
    assert done.status_code == 302
    assignment.refresh_from_db()
    assert assignment.current_phase == "sub_acute"
    # The same confirmation sent again changes nothing.
    therapist_client.post(url, data)
    assignment.refresh_from_db()
    assert assignment.current_phase == "sub_acute"
    assert assignment.history.count() == 2


def test_advance_action_cannot_touch_other_therapists_assignments(
    therapist_client, other_therapist, other_patient, flexion_template
):
    assignment = services.assignment_create(
        patient=other_patient, template=flexion_template, assigned_by=other_therapist
    )
    therapist_client.post(
        reverse("admin:patients_assignment_changelist"),
        {
            "action": "advance_to_next_phase",
            "apply": "1",
            "_selected_action": [assignment.pk],
            "reason": "Sneaky",
        },
    )
    assignment.refresh_from_db()
    assert assignment.current_phase == "acute"


def test_clinic_admin_sees_every_patient_and_filters_by_therapist(
    admin_client_, patient, other_patient, other_therapist
):
    response = admin_client_.get(reverse("admin:patients_patient_changelist"))
    assert {p.pk for p in response.context["cl"].result_list} == {patient.pk, other_patient.pk}
    filtered = admin_client_.get(
        reverse("admin:patients_patient_changelist"), {"therapist__id__exact": other_therapist.pk}
    )
    assert [p.pk for p in filtered.context["cl"].result_list] == [other_patient.pk]
    assert (
        admin_client_.get(
            reverse("admin:patients_patient_change", args=[other_patient.pk])
        ).status_code
        == 200
    )


def test_patient_users_cannot_reach_the_admin(client, patient):
    client.force_login(patient.user)
    response = client.get(reverse("admin:patients_patient_changelist"))
    assert response.status_code == 302
    assert reverse("admin:login") in response["Location"]


def test_therapist_cannot_manage_user_accounts(therapist_client, patient):
    assert therapist_client.get(reverse("admin:accounts_user_changelist")).status_code == 403


def test_patient_list_query_count_does_not_grow(
    therapist_client, therapist, flexion_template, django_assert_max_num_queries
):
    for _ in range(3):
        p = PatientFactory(therapist=therapist)
        services.assignment_create(patient=p, template=flexion_template, assigned_by=therapist)
    url = reverse("admin:patients_patient_changelist")
    therapist_client.get(url)
    with django_assert_max_num_queries(14) as small:
        therapist_client.get(url)
    for _ in range(10):
        p = PatientFactory(therapist=therapist)
        services.assignment_create(patient=p, template=flexion_template, assigned_by=therapist)
    with django_assert_max_num_queries(len(small.captured_queries)):
        therapist_client.get(url)


def test_screening_edit_is_time_stamped(therapist_client, therapist, patient):
    url = reverse("admin:patients_patient_change", args=[patient.pk])
    data = {
        "therapist": therapist.pk,
        "timezone": "Europe/London",
        "wake_time": "07:00",
        "sleep_time": "21:00",
        "spinal_stenosis": "not_cleared",
    }
    response = therapist_client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    patient.refresh_from_db()
    assert patient.spinal_stenosis == "not_cleared"
    assert patient.screened_at is not None


def test_waking_window_must_be_in_order(therapist_client, therapist, patient):
    url = reverse("admin:patients_patient_change", args=[patient.pk])
    response = therapist_client.post(
        url,
        {
            "therapist": therapist.pk,
            "timezone": "Europe/London",
            "wake_time": "22:00",
            "sleep_time": "07:00",
            "spinal_stenosis": "none",
        },
    )
    assert response.status_code == 200
    patient.refresh_from_db()
    assert str(patient.wake_time) == "07:00:00"


def test_staff_user_without_role_sees_no_patients(client, patient):
    nobody = User.objects.create_user(email="nobody@clinic.test", password="x", is_staff=True)
    client.force_login(nobody)
    assert client.get(reverse("admin:patients_patient_changelist")).status_code == 403


def test_a_double_submitted_advance_moves_one_phase(
    therapist_client, therapist, patient, flexion_template
):
    services.assignment_create(patient=patient, template=flexion_template, assigned_by=therapist)
    url = reverse("admin:patients_patient_advance", args=[patient.pk])
    page = therapist_client.get(url).content.decode()
    assert 'name="from_phase" value="acute"' in page
    data = {"reason": "Much better", "from_phase": "acute"}
    assert therapist_client.post(url, data).status_code == 302
    again = therapist_client.post(url, data)
    assert again.status_code == 200
    assert "nothing was changed" in again.content.decode()
    assignment = Assignment.objects.get(patient=patient, status="active")
    assert assignment.current_phase == "sub_acute"
    assert assignment.history.count() == 2


def test_a_double_submitted_assign_creates_one_program(therapist_client, patient, flexion_template):
    url = reverse("admin:patients_patient_assign", args=[patient.pk])
    assert 'name="current" value=""' in therapist_client.get(url).content.decode() or (
        'name="current"' in therapist_client.get(url).content.decode()
    )
    data = {"template": flexion_template.pk, "phase": "acute", "current": ""}
    assert therapist_client.post(url, data).status_code == 302
    again = therapist_client.post(url, data)
    assert again.status_code == 200
    assert "nothing was changed" in again.content.decode()
    assert Assignment.objects.filter(patient=patient).count() == 1
