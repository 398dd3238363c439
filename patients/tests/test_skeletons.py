"""The Today page from a kept skeleton is byte for byte the page the template renders.

Each case fetches Today twice: once the fast way (skeletons on, shared
between patients), once with skeletons off, which renders the template.
Only the CSRF token differs between any two responses (Django masks it anew
each time), so it is blanked before comparing.
"""
# ruff: noqa: F811  (the shared fixtures are imported by name, then requested by name)

from __future__ import annotations

import re
import uuid

import pytest
from django.test import Client
from django.urls import reverse

from patients import services as patient_services
from patients import skeletons
from symptoms import services as symptom_services
from symptoms.tests.fixtures import assigned_patient  # noqa: F401
from tests.factories import PatientFactory

pytestmark = pytest.mark.django_db

TOKEN = re.compile(r'(csrfmiddlewaretoken" value="|"X-CSRFToken": ")[A-Za-z0-9]+')
TODAY = reverse("patients:today")


def get_today(user, monkeypatch, *, kept: bool, **headers) -> str:
    monkeypatch.setattr(skeletons, "keeping", lambda: kept)
    client = Client()
    client.force_login(user)
    response = client.get(TODAY, headers=headers)
    assert response.status_code == 200
    html = response.content.decode()
    assert "\ue000" not in html and "\ue001" not in html
    return html


def assert_same_as_template(user, monkeypatch, **headers) -> str:
    fast = get_today(user, monkeypatch, kept=True, **headers)
    plain = get_today(user, monkeypatch, kept=False, **headers)
    assert TOKEN.sub(r"\1-", fast) == TOKEN.sub(r"\1-", plain)
    return fast


def log(patient, times: int) -> None:
    for _ in range(times):
        symptom_services.session_log(patient=patient, idempotency_key=uuid.uuid4())


@pytest.fixture
def second_patient(therapist, extension_template):
    patient = PatientFactory(therapist=therapist, user__full_name='Zoë<b>&"x" Smith')
    patient_services.assignment_create(
        patient=patient, template=extension_template, assigned_by=therapist, sessions_per_day=6
    )
    return patient


def test_two_patients_share_one_skeleton_and_each_sees_their_own_values(
    assigned_patient, second_patient, monkeypatch
):
    log(second_patient, 2)
    first = assert_same_as_template(assigned_patient.user, monkeypatch)
    assert len(skeletons._skeletons) == 1
    second = assert_same_as_template(second_patient.user, monkeypatch)
    assert len(skeletons._skeletons) == 1  # the same page shape: drawn from the same skeleton
    assert "Session 1 of 6 today" in first
    assert "Session 3 of 6 today" in second
    assert 'value="2"' in second
    # The name is escaped exactly as the template escapes it.
    assert "Hello, Zoë&lt;b&gt;&amp;&quot;x&quot;</h1>" in second
    assert "Zoë" not in first


def test_every_state_of_the_page_matches_the_template(assigned_patient, monkeypatch):
    user = assigned_patient.user
    assert_same_as_template(user, monkeypatch)
    log(assigned_patient, 5)
    assert "Session 6 of 6 today" in assert_same_as_template(user, monkeypatch)
    log(assigned_patient, 1)
    done = assert_same_as_template(user, monkeypatch)
    assert "All 6 sessions done today" in done
    assert "Do an extra session" in done
    log(assigned_patient, 1)  # an extra session: still all done
    assert_same_as_template(user, monkeypatch)
    # htmx navigation gets the main partial only, from a skeleton of its own.
    fragment = assert_same_as_template(user, monkeypatch, HX_Request="true")
    assert "<html" not in fragment and "All 6 sessions done today" in fragment


def test_a_program_change_shows_at_once(assigned_patient, therapist, monkeypatch):
    user = assigned_patient.user
    before = assert_same_as_template(user, monkeypatch)
    assignment = assigned_patient.assignments.get(status="active")
    patient_services.assignment_set_sessions_per_day(
        assignment=assignment, sessions_per_day=8, changed_by=therapist, reason="More"
    )
    after = assert_same_as_template(user, monkeypatch)
    assert "Session 1 of 6 today" in before
    assert "Session 1 of 8 today" in after
    template = assignment.template
    template.name = "Renamed <program>"
    template.save()
    assert "Renamed &lt;program&gt;" in assert_same_as_template(user, monkeypatch)


def test_a_patient_without_a_program(therapist, monkeypatch):
    patient = PatientFactory(therapist=therapist, user__full_name="Nora None")
    html = assert_same_as_template(patient.user, monkeypatch)
    assert "has not set up your exercises yet" in html
    assert "Hello, Nora" in html


def test_a_flash_message_is_shown_once_even_on_a_kept_page(assigned_patient, client):
    client.force_login(assigned_patient.user)
    client.get(TODAY)  # the skeleton exists now
    response = client.post(
        reverse("patients:settings"),
        {"wake_time": "06:30", "sleep_time": "22:15", "timezone": "Europe/Madrid"},
    )
    assert response.status_code == 302
    shown = client.get(TODAY).content.decode()
    assert "Your settings are saved." in shown
    assert "Your settings are saved." not in client.get(TODAY).content.decode()


def test_a_template_that_changes_a_hole_is_refused(rf, assigned_patient, settings, tmp_path):
    (tmp_path / "shouting.html").write_text("<p>{{ first_name|upper }}</p>")
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [tmp_path]}]
    request = rf.get("/")
    request.user = assigned_patient.user
    request.resolver_match = None
    request.session = {}
    request._messages = []
    with pytest.raises(ValueError, match="does not print every hole as it is"):
        skeletons.render_with_holes(
            request, "shouting.html", {}, key=(), holes={"first_name": "Ann"}
        )
