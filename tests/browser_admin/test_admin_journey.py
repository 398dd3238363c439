"""A therapist in a real Chromium: create a patient, assign, advance, read the history."""

import pytest
from playwright.sync_api import Page, expect

from patients.models import Assignment, Patient
from tests.factories import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def desk(page: Page) -> Page:
    page.set_viewport_size({"width": 1280, "height": 900})
    return page


def sign_in(page: Page, base: str, email: str) -> None:
    page.goto(f"{base}/admin/login/")
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Patients and programs")).to_be_visible()


def test_therapist_assigns_flexion_and_advances_with_a_reason(
    desk, live_server, therapist, other_patient, screenshot
):
    base = live_server.url
    sign_in(desk, base, therapist.email)

    desk.goto(f"{base}/admin/patients/patient/add/")
    desk.get_by_label("Email address").fill("rosa@example.org")
    desk.get_by_label("Full name").fill("Rosa Marin")
    desk.get_by_label("Therapist").select_option(str(therapist.pk))
    desk.get_by_label("Timezone").select_option("Europe/Madrid")
    desk.get_by_label("Pregnant").check()
    screenshot(desk, "admin-patient-add")
    desk.get_by_role("button", name="Save", exact=True).click()
    expect(desk.get_by_text("Patient created")).to_be_visible()

    # A pregnant patient: the extension program is refused, the flexion one is not.
    desk.get_by_role("link", name="Assign a program").click()
    desk.get_by_label("Program").select_option(label="McKenzie extension program")
    desk.get_by_role("button", name="Assign program").click()
    expect(desk.get_by_text("The patient is pregnant").first).to_be_visible()
    screenshot(desk, "admin-assign-refused")
    desk.get_by_label("Program").select_option(label="Forward-bending (flexion) program")
    desk.get_by_label("Sessions per day").fill("7")
    desk.get_by_role("button", name="Assign program").click()
    expect(desk.get_by_text("assigned to Rosa Marin")).to_be_visible()

    desk.get_by_role("link", name="Advance to next phase").click()
    desk.get_by_label("Reason").fill("Pain centralised; walking 20 minutes")
    desk.get_by_role("button", name="Advance phase").click()
    expect(desk.get_by_text("Moved to the next phase.")).to_be_visible()
    history = desk.locator("table.phase-history")
    expect(history).to_contain_text("Pain centralised; walking 20 minutes")
    expect(history).to_contain_text("Sub-acute")
    screenshot(desk, "admin-patient-history")

    patient = Patient.objects.get(user__email="rosa@example.org")
    assignment = Assignment.objects.get(patient=patient, status="active")
    assert assignment.current_phase == "sub_acute"
    assert assignment.history.count() == 2

    # Another therapist's patient: not in the list, not by URL.
    desk.goto(f"{base}/admin/patients/patient/")
    expect(desk.get_by_text("Olive Other")).to_have_count(0)
    response = desk.goto(f"{base}/admin/patients/patient/{other_patient.pk}/change/")
    assert response.status == 404
