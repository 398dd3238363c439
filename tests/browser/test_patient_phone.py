"""The patient's phone, in a real Chromium at 390x844 against the live server.

Sign in with the emailed link, see today, run a guided session with its
countdown, log it (pain 4, thigh), see it in progress; double submits stay one
row; a bladder-control report shows the emergency instruction and alerts the
therapist; another patient's pages are 404. Every page gets axe-core and a
screenshot under test-artifacts/screenshots/.
"""

from __future__ import annotations

import os
import re
import uuid

import pytest
from django.core import mail
from playwright.sync_api import expect

from patients import services as patient_services
from symptoms import services as symptom_services
from symptoms.models import Alert, PainReport, RedFlagReport, SessionLog
from tests.browser.conftest import check_page, force_sign_in, sign_in_link_from_outbox
from tests.factories import PatientFactory, TherapistFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def people(library):
    therapist = TherapistFactory(email="tess@clinic.test", full_name="Tess Therapist")
    other_therapist = TherapistFactory(email="otto@clinic.test", full_name="Otto Other")
    from programs.models import ProgramTemplate

    template = ProgramTemplate.objects.get(slug="mckenzie-extension")
    patient = PatientFactory(
        therapist=therapist, user__email="rosa@patients.test", user__full_name="Rosa Marin"
    )
    other = PatientFactory(
        therapist=other_therapist, user__email="olive@patients.test", user__full_name="Olive Other"
    )
    for person, who in ((patient, therapist), (other, other_therapist)):
        patient_services.assignment_create(
            patient=person, template=template, assigned_by=who, sessions_per_day=6
        )
    return {"therapist": therapist, "patient": patient, "other": other}


def test_sign_in_today_guided_session_log_and_progress(phone, live_server, site_url, people):
    page = phone
    base = live_server.url
    page.clock.install()
    mail.outbox.clear()

    page.goto(f"{base}/")
    check_page(page, "home")
    page.get_by_role("link", name="Sign in", exact=True).click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    check_page(page, "signin")
    page.get_by_label("Your email address").fill("rosa@patients.test")
    page.get_by_role("button", name="Email me a sign-in link").click()
    expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
    check_page(page, "signin-sent")

    page.goto(sign_in_link_from_outbox("rosa@patients.test"))
    expect(page.get_by_role("heading", name="Welcome back")).to_be_visible()
    check_page(page, "signin-link")
    page.get_by_role("button", name="Sign in").click()

    # Today.
    expect(page.get_by_role("heading", name="Hello, Rosa")).to_be_visible()
    expect(page.get_by_text("Acute phase, day 1")).to_be_visible()
    expect(page.get_by_text("Session 1 of 6 today")).to_be_visible()
    expect(page.get_by_role("link", name="Warning signs")).to_be_visible()
    expect(page.get_by_role("heading", name="Propped on your elbows")).to_be_visible()
    check_page(page, "today")

    # Guided session: one exercise at a time, countdowns driven by a fake clock.
    page.get_by_role("link", name="Start session 1").click()
    expect(page.get_by_role("heading", name="Session 1 of 6")).to_be_visible()
    first = page.locator("[data-exercise]").nth(0)
    second = page.locator("[data-exercise]").nth(1)
    expect(first).to_be_visible()
    expect(second).to_be_hidden()
    expect(first.locator("[data-count]")).to_have_text("2:00")
    # Stop the page's clock: from here on only run_for() moves time, so the
    # countdown values are exact however slow the machine is.
    page.clock.pause_at(page.evaluate("Date.now()") + 1000)
    first.get_by_role("button", name="Start").click()
    expect(first.locator("[data-phase]")).to_have_text("Hold")
    page.clock.run_for(61_000)
    expect(first.locator("[data-count]")).to_have_text("59")
    first.get_by_role("button", name="Skip this exercise").click()
    expect(first).to_be_hidden()
    expect(second).to_be_visible()
    expect(second.locator("[data-rep-label]")).to_have_text("Repetition 1 of 10")
    expect(second.locator("[data-count]")).to_have_text("10")
    second.get_by_role("button", name="Start").click()
    page.clock.run_for(4_000)
    expect(second.locator("[data-count]")).to_have_text("6")
    expect(second.locator("[data-phase]")).to_have_text("Hold")
    page.clock.run_for(7_000)  # the 10 s hold ends: a 3 s rest between repetitions
    expect(second.locator("[data-phase]")).to_have_text("Rest")
    expect(second.locator("[data-count]")).to_have_text("2")
    page.clock.run_for(3_000)
    expect(second.locator("[data-rep-label]")).to_have_text("Repetition 2 of 10")
    expect(second.locator("[data-phase]")).to_have_text("Hold")
    second.get_by_role("button", name="Pause").click()
    expect(second.locator("[data-phase]")).to_have_text("Paused")
    page.clock.run_for(30_000)  # paused: nothing moves
    expect(second.locator("[data-rep-label]")).to_have_text("Repetition 2 of 10")
    page.clock.resume()  # axe and htmx need timers again
    check_page(page, "guided-paused")
    second.get_by_role("button", name="Carry on").click()
    expect(second.locator("[data-phase]")).to_have_text("Hold")
    check_page(page, "guided-hold")
    page.get_by_role("button", name="Done: I did this session").click()

    # Log the pain: 4, in the thigh.
    expect(page.get_by_role("heading", name="How is your pain now?")).to_be_visible()
    check_page(page, "log-pain")
    page.get_by_text("Moderate").first.click()
    page.locator("label.tile", has=page.locator("input[value='4']")).click()
    page.get_by_text("Thigh", exact=True).click()
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("heading", name="Saved. Thank you!")).to_be_visible()
    expect(page.get_by_text("Pain 4 out of 10. It reaches: Thigh.")).to_be_visible()
    check_page(page, "session-result")

    session = SessionLog.objects.get(patient=people["patient"])
    assert session.source == "guided"
    report = PainReport.objects.get(session=session)
    assert (report.score, report.location) == (4, "thigh")

    # Progress shows it.
    page.get_by_role("link", name="Progress", exact=True).click()
    expect(page.get_by_role("heading", name="My progress")).to_be_visible()
    expect(page.locator("p.summary", has_text="You logged pain 4 out of 10 on")).to_be_visible()
    expect(page.locator("svg.chart")).to_have_count(3)
    check_page(page, "progress")

    page.get_by_role("link", name="Settings", exact=True).click()
    expect(page.get_by_role("heading", name="My settings")).to_be_visible()
    check_page(page, "settings")

    page.get_by_role("link", name="Today", exact=True).click()
    expect(page.get_by_text("Session 2 of 6 today")).to_be_visible()

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.goto(f"{base}/today/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


def test_a_double_submitted_log_stays_one_row(phone, phone_without_js, live_server, people):
    patient = people["patient"]
    for page, label in ((phone, "js"), (phone_without_js, "nojs")):
        force_sign_in(page, live_server.url, patient.user)
        before = SessionLog.objects.filter(patient=patient).count()
        page.goto(f"{live_server.url}/log/?source=email")
        expect(page.get_by_role("heading", name="Did you do your exercises?")).to_be_visible()
        if label == "js":
            check_page(page, "log-session")
        form = page.locator("form", has=page.get_by_role("button", name="I did this session"))
        fields = {
            name: form.locator(f"input[name='{name}']").input_value()
            for name in ("csrfmiddlewaretoken", "idempotency_key", "source")
        }
        page.get_by_role("button", name="I did this session").dblclick()
        expect(page.get_by_role("heading", name="How is your pain now?")).to_be_visible()
        pain_url = page.url
        if label == "js":
            # htmx restores the form from its history cache (same key): send it again.
            page.go_back()
            page.get_by_role("button", name="I did this session").click()
            expect(page.get_by_role("heading", name="How is your pain now?")).to_be_visible()
            assert page.url == pain_url
        # A retried request with the same key lands on the same page.
        replay = page.request.post(
            f"{live_server.url}/log/",
            form=fields,
            headers={"Referer": f"{live_server.url}/log/"},
        )
        assert replay.ok and replay.url == pain_url, (replay.status, replay.url, pain_url)
        assert SessionLog.objects.filter(patient=patient).count() == before + 1, label
        assert SessionLog.objects.filter(patient=patient).latest("logged_at").source == "email"


def test_bladder_report_shows_the_emergency_and_alerts_the_therapist(phone, live_server, people):
    page = phone
    patient, therapist = people["patient"], people["therapist"]
    force_sign_in(page, live_server.url, patient.user)
    mail.outbox.clear()
    page.goto(f"{live_server.url}/today/")
    page.get_by_role("link", name="Warning signs").click()
    expect(page.get_by_role("heading", name="Warning signs", exact=True)).to_be_visible()
    check_page(page, "warning-signs")
    page.get_by_label("I cannot control my bladder").check()
    page.get_by_role("button", name="Tell my therapist").click()
    alarm = page.get_by_role("heading", name="Go to the emergency room now")
    expect(alarm).to_be_visible()
    expect(alarm).to_be_in_viewport()
    check_page(page, "warning-emergency")

    report = RedFlagReport.objects.get(patient=patient)
    assert report.bladder and report.action == "emergency"
    alert = Alert.objects.get(patient=patient, kind=Alert.Kind.RED_FLAG)
    assert alert.severity == "urgent" and alert.emailed_at is not None
    assert any(therapist.email in m.to and "URGENT" in m.subject for m in mail.outbox)


def test_leg_weakness_says_call_your_doctor(phone, live_server, people):
    force_sign_in(phone, live_server.url, people["patient"].user)
    phone.goto(f"{live_server.url}/warning-signs/")
    phone.get_by_label("Severe weakness in one or both legs").check()
    phone.get_by_role("button", name="Tell my therapist").click()
    expect(phone.get_by_role("heading", name="Call your doctor today")).to_be_visible()
    check_page(phone, "warning-call-doctor")


def test_another_patients_pages_are_404(phone, live_server, people):
    other = people["other"]
    session, _ = symptom_services.session_log(
        patient=other, idempotency_key=uuid.uuid4(), assignment=None
    )
    symptom_services.pain_report_for_session(session=session, score=3, location="buttock")
    flag = symptom_services.red_flag_report_create(patient=other, leg_weakness=True)
    unscored, _ = symptom_services.session_log(
        patient=other, idempotency_key=uuid.uuid4(), assignment=None
    )
    force_sign_in(phone, live_server.url, people["patient"].user)
    for path in (
        f"/log/{session.public_id}/",
        f"/log/{unscored.public_id}/pain/",
        f"/warning-signs/{flag.public_id}/",
    ):
        response = phone.goto(f"{live_server.url}{path}")
        assert response.status == 404, path
        expect(phone.get_by_text("Olive")).to_have_count(0)


def test_without_javascript_the_guided_session_is_the_steps_and_a_done_button(
    phone_without_js, live_server, people
):
    page = phone_without_js
    force_sign_in(page, live_server.url, people["patient"].user)
    page.goto(f"{live_server.url}/session/")
    expect(page.locator("[data-exercise]").nth(1)).to_be_visible()  # all shown
    expect(page.locator("[data-timer]").first).to_be_hidden()
    expect(page.get_by_text("Find a firm, flat place, such as a mat on the floor.")).to_be_visible()
    page.screenshot(path="test-artifacts/screenshots/patient-guided-nojs.png", full_page=True)
    page.get_by_role("button", name="Done: I did this session").click()
    expect(page.get_by_role("heading", name="How is your pain now?")).to_be_visible()
    page.locator("label.tile", has=page.locator("input[value='7']")).click()
    page.locator("label.tile", has=page.locator("input[value='below_knee']")).click()
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("heading", name="Saved. Thank you!")).to_be_visible()
    expect(page.get_by_role("link", name="Check the warning signs")).to_have_count(0)


def test_progress_with_ten_days_of_history(phone, live_server, library, settings):
    """The demo history: pain easing from the thigh to the low back, with missed sessions."""
    from django.core.management import call_command

    from patients.models import Patient

    settings.DEBUG = True
    call_command("seed_demo", stdout=open(os.devnull, "w"))  # noqa: SIM115
    settings.DEBUG = False
    patient = Patient.objects.get(user__email="patient@example.com")
    force_sign_in(phone, live_server.url, patient.user)
    phone.goto(f"{live_server.url}/progress/")
    expect(phone.locator("p.summary", has_text="Pain went down from 6 to 2")).to_be_visible()
    expect(
        phone.locator("p.summary", has_text="Your pain has moved toward your spine")
    ).to_be_visible()
    check_page(phone, "progress-history")
    phone.get_by_text("Show day by day").click()
    expect(phone.locator(".day-table tbody tr")).to_have_count(11)
    phone.goto(f"{live_server.url}/today/")
    check_page(phone, "today-history")


def test_other_sign_in_pages_are_accessible(phone, live_server, people):
    phone.goto(f"{live_server.url}/signin/password/")
    expect(phone.get_by_role("heading", name="Sign in with a password")).to_be_visible()
    check_page(phone, "signin-password")
    response = phone.goto(f"{live_server.url}/signin/link/not-a-real-token/")
    assert response.status == 410
    expect(phone.get_by_role("heading", name="This link no longer works")).to_be_visible()
    check_page(phone, "signin-link-expired")


def test_pain_spreading_down_the_leg_says_stop_and_offers_the_check(phone, live_server, people):
    patient = people["patient"]
    earlier, _ = symptom_services.session_log(
        patient=patient, idempotency_key=uuid.uuid4(), assignment=None
    )
    symptom_services.pain_report_for_session(session=earlier, score=5, location="buttock")
    force_sign_in(phone, live_server.url, patient.user)
    phone.goto(f"{live_server.url}/log/")
    phone.get_by_role("button", name="I did this session").click()
    phone.locator("label.tile", has=phone.locator("input[value='8']")).click()
    phone.locator("label.tile", has=phone.locator("input[value='below_knee']")).click()
    phone.get_by_role("button", name="Save").click()
    expect(phone.get_by_role("heading", name="Stop the exercises for now")).to_be_visible()
    expect(phone.get_by_text("Buttock → Below the knee or in the foot")).to_be_visible()
    check_page(phone, "session-result-stop")
    assert set(Alert.objects.filter(patient=patient).values_list("kind", flat=True)) == {
        "peripheralising",
        "high_pain",
        "pain_rising",
    }
    phone.get_by_role("link", name="Check the warning signs").click()
    expect(phone.get_by_role("heading", name="Warning signs", exact=True)).to_be_visible()


def test_boosted_navigation_keeps_the_header_and_back_works(phone, live_server, people):
    force_sign_in(phone, live_server.url, people["patient"].user)
    phone.goto(f"{live_server.url}/today/")
    phone.get_by_role("link", name="Progress", exact=True).click()
    expect(phone.get_by_role("heading", name="My progress")).to_be_visible()
    expect(phone).to_have_url(f"{live_server.url}/progress/")
    expect(phone).to_have_title(re.compile("My progress"))
    expect(phone.get_by_role("link", name="Progress", exact=True)).to_have_attribute(
        "aria-current", "page"
    )
    phone.go_back()
    expect(phone.get_by_role("heading", name="Hello, Rosa")).to_be_visible()
    expect(phone.get_by_role("link", name="Warning signs")).to_have_count(1)
    phone.reload()
    expect(phone.get_by_role("heading", name="Hello, Rosa")).to_be_visible()
    expect(phone.locator("header.topbar")).to_have_count(1)
