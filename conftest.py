"""Fixtures shared by every test: personas and the fail-on-skip rule for CI."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.factories import (
    ClinicAdminFactory,
    PatientFactory,
    TherapistFactory,
)

# Playwright's sync API runs an event loop in the test thread; Django's ORM
# must still be usable from browser tests.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

SCREENSHOT_DIR = Path(__file__).resolve().parent / "test-artifacts" / "screenshots"

CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    """Debian's Chromium: Playwright cannot download its own browser here."""
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        pytest.fail("Chromium is not installed: run `make test`, which installs it.")
    return {**browser_type_launch_args, "executable_path": executable, "args": CHROMIUM_FLAGS}


@pytest.fixture
def screenshot():
    """Save a full-page screenshot under test-artifacts/screenshots/ (kept by CI)."""
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)

    def take(page, name: str) -> Path:
        path = SCREENSHOT_DIR / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


def pytest_collection_modifyitems(config, items):
    """Tests marked ``postgres`` test PostgreSQL-only guards (triggers, locks).

    They are deselected, visibly, on SQLite; CI runs them on PostgreSQL.
    """
    if os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")):
        return
    selected = [item for item in items if item.get_closest_marker("postgres") is None]
    if len(selected) != len(items):
        config.hook.pytest_deselected(items=[i for i in items if i not in selected])
        items[:] = selected


def pytest_sessionfinish(session, exitstatus):
    """In CI a skipped test is a failure: nothing may silently not run."""
    if os.environ.get("CI", "").lower() not in {"1", "true", "yes"}:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    if skipped and session.exitstatus == 0:
        reporter.write_line(
            f"CI: {len(skipped)} test(s) skipped; every test must run in CI.", red=True
        )
        session.exitstatus = 1


@pytest.fixture(autouse=True)
def _fresh_process_caches():
    """Caches kept per process are keyed by row ids, which tests reuse."""
    from patients import skeletons
    from patients.templatetags import memo
    from programs.selectors import template_phase_exercises_forget

    template_phase_exercises_forget()
    memo.forget()
    skeletons.forget()


@pytest.fixture
def therapist(db):
    return TherapistFactory(email="therapist@clinic.test", full_name="Tess Therapist")


@pytest.fixture
def other_therapist(db):
    return TherapistFactory(email="other.therapist@clinic.test", full_name="Otto Other")


@pytest.fixture
def clinic_admin(db):
    return ClinicAdminFactory(email="admin@clinic.test", full_name="Ada Admin")


@pytest.fixture
def patient(therapist):
    return PatientFactory(
        therapist=therapist, user__email="pat@patients.test", user__full_name="Pat Patient"
    )


@pytest.fixture
def other_patient(other_therapist):
    return PatientFactory(
        therapist=other_therapist, user__email="olive@patients.test", user__full_name="Olive Other"
    )


@pytest.fixture
def extension_template(db):
    from programs.models import ProgramTemplate

    return ProgramTemplate.objects.get(slug="mckenzie-extension")


@pytest.fixture
def flexion_template(db):
    from programs.models import ProgramTemplate

    return ProgramTemplate.objects.get(slug="flexion-bias")
