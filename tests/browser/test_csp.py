"""The Content-Security-Policy holds in a real Chromium: no page breaks it.

Every patient page (signed out and in, htmx-boosted navigation included) and
the admin pages staff use (login, lists with filters and actions, change
forms with the date/time widgets, autocomplete, the two-list group picker,
inlines, the custom program pages and action confirmations) are opened while
every CSP violation is collected, both from the browser console ("Refused
to ... because it violates the following Content Security Policy
directive") and from ``securitypolicyviolation`` events. Any violation fails.

A new patient page must be visited here: the test compares the URL names it
saw with every name in the ``patients`` and ``reminders`` namespaces.
"""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.urls import get_resolver, resolve
from playwright.sync_api import Page, expect

from patients import services as patient_services
from reminders.tokens import unsubscribe_token_make
from tests.browser.conftest import PHONE, sign_in_link_from_outbox
from tests.factories import PASSWORD, ClinicAdminFactory, PatientFactory, TherapistFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

REPORTER = """
document.addEventListener("securitypolicyviolation", function (event) {
  console.error("CSP-VIOLATION " + JSON.stringify({
    directive: event.violatedDirective, blocked: event.blockedURI,
    source: event.sourceFile, line: event.lineNumber, sample: event.sample,
    page: document.location.pathname
  }));
});
"""

# Patient-namespace URLs that are not HTML pages (nothing for a CSP to govern).
NOT_PAGES = {"patients:manifest", "patients:export_json", "patients:export_csv"}


class CspWatch:
    """Collect CSP violations and the URL names of the HTML pages loaded."""

    def __init__(self, page: Page):
        self.page = page
        self.violations: list[str] = []
        self.seen: set[str] = set()
        self.missing_header: list[str] = []
        page.add_init_script(REPORTER)
        page.on("console", self._console)
        page.on("response", self._response)

    def _console(self, message) -> None:
        text = message.text
        if "Content Security Policy" in text or text.startswith("CSP-VIOLATION"):
            self.violations.append(f"{self.page.url}: {text}")

    def _response(self, response) -> None:
        content_type = response.headers.get("content-type", "")
        if not content_type.startswith("text/html") or response.request.resource_type not in {
            "document",
            "fetch",
            "xhr",
        }:
            return
        path = re.sub(r"^https?://[^/]+", "", response.url).split("?")[0]
        try:
            match = resolve(path)
        except Exception:
            return
        name = f"{match.namespace}:{match.url_name}" if match.namespace else match.url_name
        self.seen.add(name or path)
        if response.request.resource_type == "document":
            policy = response.headers.get("content-security-policy", "")
            if "script-src 'self'" not in policy or "unsafe-inline" in policy:
                self.missing_header.append(f"{path}: {policy!r}")

    def check(self) -> None:
        # Give late violations (timers, htmx settles) a moment to arrive.
        self.page.wait_for_timeout(150)
        assert self.violations == [], "\n".join(self.violations)
        assert self.missing_header == [], self.missing_header


@pytest.fixture
def people(library):
    from programs.models import ProgramTemplate

    therapist = TherapistFactory(email="tess@clinic.test", full_name="Tess Therapist")
    admin = ClinicAdminFactory(email="ada@clinic.test", full_name="Ada Admin")
    patient = PatientFactory(
        therapist=therapist,
        user__email="rosa@patients.test",
        user__full_name="Rosa Marin",
        reminders_enabled=True,
    )
    template = ProgramTemplate.objects.get(slug="mckenzie-extension")
    patient_services.assignment_create(
        patient=patient, template=template, assigned_by=therapist, sessions_per_day=6
    )
    return {"therapist": therapist, "admin": admin, "patient": patient}


@pytest.fixture
def phone(browser):
    context = browser.new_context(viewport=PHONE, is_mobile=True, accept_downloads=True)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def desk(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    yield page
    context.close()


def test_patient_pages_break_no_csp_rule(phone, live_server, site_url, people):
    page, base = phone, live_server.url
    watch = CspWatch(page)
    mail.outbox.clear()

    # Signed out.
    page.goto(f"{base}/")
    page.goto(f"{base}/signin/password/")
    page.goto(f"{base}/signin/link/not-a-real-token/")
    page.goto(f"{base}/signin/")
    page.get_by_label("Your email address").fill("rosa@patients.test")
    page.get_by_role("button", name="Email me a sign-in link").click()
    expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
    page.goto(sign_in_link_from_outbox("rosa@patients.test"))
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Hello, Rosa")).to_be_visible()

    # Boosted (htmx) navigation between the tabs, then the guided session.
    page.get_by_role("link", name="Progress").first.click()
    expect(page.get_by_role("heading", name=re.compile("progress", re.I)).first).to_be_visible()
    page.get_by_role("link", name="Settings").first.click()
    expect(page.get_by_role("heading", name="My settings")).to_be_visible()
    page.get_by_label(re.compile("Pause reminders until")).fill("2030-01-01")
    page.get_by_role("button", name="Save my settings").click()
    expect(page.get_by_text("Your settings are saved.")).to_be_visible()
    page.get_by_role("link", name="Today").first.click()
    page.get_by_role("link", name="Start session 1").click()
    expect(page.get_by_role("heading", name="Session 1 of 6")).to_be_visible()
    page.wait_for_timeout(300)  # the countdown's timers run under the policy too

    # Log a session, the pain after it, the result; the progress charts.
    page.goto(f"{base}/log/")
    page.locator("form[action='/log/'] button[type=submit]").first.click()
    expect(page).to_have_url(re.compile(r"/log/[0-9a-f-]+/pain/$"))
    page.locator("label[for=id_score_4]").click()
    page.get_by_text("It reaches my buttock.").click()
    page.locator("main form button[type=submit]").click()
    expect(page).to_have_url(re.compile(r"/log/[0-9a-f-]+/$"))
    page.goto(f"{base}/progress/")
    page.goto(f"{base}/warning-signs/")
    page.get_by_label(re.compile("Severe weakness")).check()
    page.locator("main form button[type=submit]").first.click()
    expect(page).to_have_url(re.compile(r"/warning-signs/[0-9a-f-]+/$"))

    # The patient's data downloads (not pages, but they must download).
    page.goto(f"{base}/settings/")
    for name in ("JSON", "CSV"):
        with page.expect_download() as download:
            page.get_by_role("link", name=re.compile(f"Download .*{name}")).click()
        assert download.value.suggested_filename

    # Reminder unsubscribe pages (signed-in or not makes no difference).
    token = unsubscribe_token_make(patient_public_id=people["patient"].public_id)
    page.goto(f"{base}/reminders/unsubscribe/{token}/")
    page.get_by_role("button").filter(has_text=re.compile("stop|unsubscribe", re.I)).click()
    page.goto(f"{base}/reminders/unsubscribe/bad-token/")

    page.goto(f"{base}/signin/sent/")
    page.goto(f"{base}/")
    page.goto(f"{base}/today/")
    page.locator("footer").get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    watch.check()

    expected = set()
    for namespace in ("patients", "reminders"):
        resolver = get_resolver().namespace_dict[namespace][1]
        expected |= {
            f"{namespace}:{name}" for name in resolver.reverse_dict if isinstance(name, str)
        }
    unvisited = expected - NOT_PAGES - watch.seen
    assert unvisited == set(), f"patient pages not checked for CSP violations: {unvisited}"


def sign_in_admin(page: Page, base: str, email: str) -> None:
    page.goto(f"{base}/admin/login/")
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Patients and programs")).to_be_visible()


def test_admin_pages_break_no_csp_rule(desk, live_server, people):
    from django.contrib import admin

    from programs.models import TemplatePhase

    page, base = desk, live_server.url
    watch = CspWatch(page)
    patient = people["patient"]
    sign_in_admin(page, base, people["admin"].email)

    # Every registered model's list page, and its add page where there is one.
    request = _request_for(people["admin"])
    for model, model_admin in admin.site._registry.items():
        opts = model._meta
        if not model_admin.has_view_or_change_permission(request):
            continue
        response = page.goto(f"{base}/admin/{opts.app_label}/{opts.model_name}/")
        assert response.status == 200, opts.label
        first = page.locator("#result_list tbody tr th a").first
        if first.count():
            first.click()
            page.wait_for_load_state()
        if model_admin.has_add_permission(request):
            page.goto(f"{base}/admin/{opts.app_label}/{opts.model_name}/add/")

    # The patient's page: the calendar and clock widgets, opened and used.
    page.goto(f"{base}/admin/patients/patient/{patient.pk}/change/")
    page.locator(".datetimeshortcuts a").filter(has_text="Today").first.click()
    page.locator("a.date-icon, span.date-icon").first.click()
    page.locator(".calendarbox a", has_text="Cancel").first.click()
    page.locator("span.clock-icon").first.click()
    page.locator(".clockbox a", has_text="Noon").first.click()
    page.get_by_role("button", name="Save and continue editing").click()
    expect(page.locator(".messagelist")).to_be_visible()

    # Custom program pages.
    for action in ("assign", "advance", "adjust", "end"):
        page.goto(f"{base}/admin/patients/patient/{patient.pk}/{action}/")

    # Autocomplete (select2) on a template phase's exercises.
    phase = TemplatePhase.objects.filter(template__slug="mckenzie-extension").first()
    page.goto(f"{base}/admin/programs/templatephase/{phase.pk}/change/")
    page.locator(".select2-selection").first.click()
    page.locator(".select2-search__field").fill("press")
    expect(page.locator(".select2-results__option").first).to_be_visible()
    page.keyboard.press("Escape")
    page.get_by_role("link", name=re.compile("Add another")).first.click()

    # Prepopulated slug and inlines on a new program template.
    page.goto(f"{base}/admin/programs/programtemplate/add/")
    page.get_by_label("Name").first.fill("CSP check program")

    # The two-list group picker on a staff account.
    page.goto(f"{base}/admin/accounts/user/{people['therapist'].pk}/change/")
    expect(page.locator(".selector").first).to_be_visible()

    # List filters, search, select-all and an action's confirmation page.
    page.goto(f"{base}/admin/patients/assignment/")
    page.locator("#action-toggle").check()
    page.locator("select[name=action]").select_option("advance_to_next_phase")
    page.locator("button[name=index]").click()
    expect(page.get_by_role("heading", name="Advance to the next phase")).to_be_visible()
    page.goto(f"{base}/admin/audit/auditevent/?action=view")
    page.goto(f"{base}/admin/patients/patient/?q=rosa")
    page.locator("#action-toggle").check()
    for action in ("patient_erase", "patient_anonymise"):
        page.goto(f"{base}/admin/patients/patient/?q=rosa")
        page.locator("input.action-select").first.check()
        page.locator("select[name=action]").select_option(action)
        page.locator("button[name=index]").click()
        expect(page.locator("#content h1")).to_be_visible()

    # The staff review pages (issue 5): list, a patient's detail with its charts.
    page.goto(f"{base}/staff/")
    page.goto(f"{base}/staff/patients/{patient.public_id}/")

    # Logging out.
    page.goto(f"{base}/admin/")
    page.locator("#logout-form button").click()
    watch.check()


def _request_for(user):
    from django.test import RequestFactory

    request = RequestFactory().get("/admin/")
    request.user = user
    return request


def test_the_watch_catches_a_violation(desk, live_server):
    """The checks above can fail: an inline style and an inline script are reported."""
    page = desk
    watch = CspWatch(page)
    page.goto(f"{live_server.url}/signin/")
    page.evaluate(
        """() => {
            const div = document.createElement("div");
            div.innerHTML = '<p style="color: red">inline style</p>';
            document.body.append(div);
            const script = document.createElement("script");
            script.textContent = "window.inlineRan = true;";
            document.body.append(script);
        }"""
    )
    page.wait_for_timeout(150)
    assert page.evaluate("() => window.inlineRan") is None
    assert any("style-src" in v for v in watch.violations), watch.violations
    assert any("script-src" in v for v in watch.violations), watch.violations
    with pytest.raises(AssertionError):
        watch.check()
