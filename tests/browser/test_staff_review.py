"""The staff review page and patient detail in a real Chromium, desktop and phone.

A therapist opens /staff/, filters and sorts without a full reload (htmx),
acknowledges an alert in place, opens a patient's charts, and never sees
another therapist's patient. Every page: axe-core (no serious or critical
violation), no Content-Security-Policy violation, a screenshot at 1280x900
and at 390x844 under test-artifacts/screenshots/.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from patients import services as patient_services
from symptoms import services
from symptoms.models import Alert, DailyAdherence, PainReport
from tests.browser.conftest import AXE, force_sign_in
from tests.factories import PatientFactory, TherapistFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}

# (name, sessions a day over the last 30 days, pain oldest to newest over the last 14 days,
#  where the pain reached in the last week (before that: the thigh), days in the phase)
STORIES = [
    ("Rosa Marin", 6, [6, 6, 5, 5, 4, 4, 3, 3, 3, 2, 2, 2, 2, 1], "buttock", 4),
    ("Ahmed Khan", 2, [4, 4, 5, 5, 6, 6, 6, 7, 7, 7, 8, 8, 8, 8], "thigh", 9),
    ("Lena Vogel", 5, [5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5], "back_centre", 3),
    ("Sam Okafor", 7, [3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0], "none", 2),
]


@pytest.fixture
def clinic(library):
    from programs.models import ProgramTemplate

    template = ProgramTemplate.objects.get(slug="mckenzie-extension")
    therapist = TherapistFactory(email="tess@clinic.test", full_name="Tess Therapist")
    other = TherapistFactory(email="otto@clinic.test", full_name="Otto Other")
    now = timezone.now()
    patients = {}
    for name, per_day, pains, place, in_phase in STORIES:
        patient = PatientFactory(
            therapist=therapist,
            user__email=f"{name.split()[0].lower()}@patients.test",
            user__full_name=name,
        )
        patient_services.assignment_create(
            patient=patient,
            template=template,
            assigned_by=therapist,
            sessions_per_day=6,
            start_date=timezone.localdate() - dt.timedelta(days=in_phase - 1),
        )
        today = now.astimezone(patient.tzinfo).date()
        rows = []
        for days_ago in range(1, 31):
            local = today - dt.timedelta(days=days_ago)
            pain = pains[len(pains) - days_ago] if days_ago <= len(pains) else None
            rows.append(
                DailyAdherence(
                    patient=patient,
                    local_date=local,
                    phase="acute",
                    prescribed=6,
                    done=min(per_day, 6),
                    extra=max(0, per_day - 6),
                    reps=per_day * 11,
                    pain_last=pain,
                    location=("thigh" if days_ago > 7 else place) if pain is not None else "",
                    last_session_at=now - dt.timedelta(days=days_ago, hours=2),
                )
            )
        DailyAdherence.objects.filter(patient=patient).delete()  # the zero rows of the start
        DailyAdherence.objects.bulk_create(rows)
        patients[name] = patient
    ahmed = patients["Ahmed Khan"]
    services.alert_raise(
        patient=ahmed,
        kind="peripheralising",
        severity="routine",
        period_key="d1",
        message="Pain has spread further from the spine: Thigh → Below the knee (8/10).",
    )
    services.alert_raise(
        patient=ahmed,
        kind="pain_rising",
        severity="routine",
        period_key="d1",
        message="Pain rose to 8/10, up from 6/10 within the last 3 days.",
    )
    services.alert_raise(
        patient=ahmed,
        kind="red_flag",
        severity="urgent",
        period_key="r1",
        message="Warning signs reported: severe leg weakness.",
    )
    session, _ = services.session_log(
        patient=ahmed,
        idempotency_key=uuid.uuid4(),
        assignment=ahmed.assignments.get(),
    )
    PainReport.objects.create(
        patient=ahmed,
        session=session,
        reported_at=now,
        local_date=now.astimezone(ahmed.tzinfo).date(),
        score=8,
        location="below_knee",
        note="It shoots down my leg when I sit for long.",
    )
    services.adherence_rebuild_patient(patient=ahmed, days=1)
    theirs = PatientFactory(
        therapist=other, user__email="olive@patients.test", user__full_name="Olive Other"
    )
    return {"therapist": therapist, "ahmed": ahmed, "theirs": theirs}


REPORTER = """
document.addEventListener("securitypolicyviolation", function (event) {
  console.error("CSP-VIOLATION " + JSON.stringify({
    directive: event.violatedDirective, source: event.sourceFile, line: event.lineNumber,
    column: event.columnNumber, sample: event.sample, page: document.location.pathname
  }));
});
"""


class Watch:
    """CSP violations reported by the browser, and axe-core on demand."""

    def __init__(self, page: Page):
        self.page = page
        self.violations: list[str] = []
        page.add_init_script(REPORTER)
        page.on("console", self._console)

    def _console(self, message) -> None:
        if message.text.startswith("CSP-VIOLATION"):
            self.violations.append(message.text)

    def check(self, name: str, screenshot) -> None:
        self.page.wait_for_timeout(50)  # let console messages arrive
        assert self.violations == [], f"{name}: {self.violations}"
        screenshot(self.page, name)
        self.page.evaluate(AXE.read_text())  # not a <script> tag: the CSP allows none inline
        results = self.page.evaluate("async () => await axe.run(document)")
        # axe-core leaves style="" on the inputs it measured (and its own CSP reports):
        # start again from a clean page, so htmx never copies those attributes.
        self.page.wait_for_timeout(50)
        self.page.reload()
        self.violations.clear()
        bad = [
            {"id": v["id"], "impact": v["impact"], "nodes": [n["html"][:120] for n in v["nodes"]]}
            for v in results["violations"]
            if v["impact"] in {"serious", "critical"}
        ]
        assert bad == [], f"{name}: {bad}"
        width = self.page.evaluate("document.documentElement.scrollWidth")
        assert width <= self.page.viewport_size["width"], f"{name}: scrolls sideways ({width}px)"


def test_therapist_reviews_filters_acknowledges_and_opens_a_patient(
    browser, live_server, clinic, screenshot
):
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    watch = Watch(page)
    base = live_server.url
    force_sign_in(page, base, clinic["therapist"])

    page.goto(f"{base}/staff/")
    expect(page.get_by_role("heading", name="Adherence review")).to_be_visible()
    table = page.locator("table.review")
    expect(table.locator("tbody tr")).to_have_count(4)
    expect(page.get_by_text("Olive Other")).to_have_count(0)
    ahmed = table.locator("tr", has_text="Ahmed Khan")
    expect(ahmed).to_contain_text("Acute, day 9 of 3-5: review the phase")
    expect(ahmed).to_contain_text("33% (14 of 42)")
    expect(ahmed).to_contain_text("peripheralising")
    expect(ahmed.locator("svg.spark")).to_have_count(1)
    rosa = table.locator("tr", has_text="Rosa Marin")
    expect(rosa).to_contain_text("100% (42 of 42)")
    expect(rosa).to_contain_text("centralising")
    expect(table.locator("tr", has_text="Sam Okafor")).to_contain_text("+7 extra")
    watch.check("staff-review-desktop", screenshot)

    # Filters and sorting swap the results in place: the page itself never reloads.
    page.evaluate("window.__sameDocument = true")
    page.get_by_label("At risk (under 80% over 7 days)").check()
    expect(table.locator("tbody tr")).to_have_count(1)
    expect(page).to_have_url(re.compile(r"at_risk=on"))
    assert page.evaluate("window.__sameDocument === true")
    page.get_by_label("At risk (under 80% over 7 days)").uncheck()
    expect(table.locator("tbody tr")).to_have_count(4)
    page.get_by_role("link", name="7-day adherence").click()
    expect(page).to_have_url(re.compile(r"sort=adherence7"))
    expect(table.locator("tbody tr").first).to_contain_text("Ahmed Khan")
    page.get_by_role("link", name=re.compile("7-day adherence")).click()  # again: descending
    expect(page).to_have_url(re.compile(r"desc=1"))
    expect(table.locator("tbody tr").last).to_contain_text("Ahmed Khan")
    assert page.evaluate("window.__sameDocument === true")

    # Acknowledge the pain-rising alert in place.
    button = ahmed.get_by_role("button", name="Acknowledge Pain up 2+ points over 3 days")
    button.click()
    expect(ahmed).to_contain_text("Acknowledged by Tess Therapist")
    rising = Alert.objects.get(kind="pain_rising")
    assert rising.acknowledged_by == clinic["therapist"]
    assert page.evaluate("window.__sameDocument === true")

    # The patient's detail: charts with their summaries, alerts, notes.
    ahmed.get_by_role("link", name="Ahmed Khan").click()
    expect(page.get_by_role("heading", name="Ahmed Khan", level=1)).to_be_visible()
    expect(page.locator("figure svg.chart")).to_have_count(3)
    expect(page.get_by_text("It shoots down my leg when I sit for long.")).to_be_visible()
    expect(page.locator("figcaption", has_text="Peripheralising: the pain reached")).to_be_visible()
    expect(page.locator("li.alert-urgent")).to_contain_text("Urgent")
    watch.check("staff-patient-desktop", screenshot)
    page.locator("li.alert-urgent").get_by_role("button").click()
    expect(page.locator("li.alert-urgent")).to_contain_text("Acknowledged by Tess Therapist")

    # Another therapist's patient: 404.
    page.wait_for_timeout(50)
    assert watch.violations == []
    response = page.goto(f"{base}/staff/patients/{clinic['theirs'].public_id}/")
    assert response.status == 404
    context.close()


def test_the_staff_pages_work_on_a_phone(browser, live_server, clinic, screenshot):
    context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True)
    page = context.new_page()
    watch = Watch(page)
    base = live_server.url
    force_sign_in(page, base, clinic["therapist"])
    page.goto(f"{base}/staff/")
    expect(page.get_by_role("heading", name="Adherence review")).to_be_visible()
    expect(page.locator("table.review tbody tr")).to_have_count(4)
    watch.check("staff-review-phone", screenshot)
    page.goto(f"{base}/staff/patients/{clinic['ahmed'].public_id}/")
    expect(page.locator("figure svg.chart")).to_have_count(3)
    watch.check("staff-patient-phone", screenshot)
    page.goto(f"{base}/staff/export/")
    expect(page.get_by_role("button", name="Download CSV")).to_be_visible()
    watch.check("staff-export-phone", screenshot)
    context.close()


def test_without_javascript_the_filters_and_acknowledge_still_work(browser, live_server, clinic):
    context = browser.new_context(viewport=DESKTOP, java_script_enabled=False)
    page = context.new_page()
    base = live_server.url
    force_sign_in(page, base, clinic["therapist"])
    page.goto(f"{base}/staff/")
    page.get_by_label("Has open alerts").check()
    page.get_by_role("button", name="Show").click()
    expect(page).to_have_url(re.compile(r"alerts=on"))
    expect(page.locator("table.review tbody tr")).to_have_count(1)
    page.get_by_role("button", name="Acknowledge Red flag reported").click()
    expect(page).to_have_url(re.compile(r"alerts=on"))
    expect(page.locator("table.review tbody tr")).to_have_count(1)  # two alerts still open
    expect(page.get_by_role("button", name="Acknowledge Red flag reported")).to_have_count(0)
    assert Alert.objects.get(kind="red_flag").acknowledged_by == clinic["therapist"]
    context.close()
