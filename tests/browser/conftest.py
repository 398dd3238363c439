"""Browser fixtures for the patient's phone pages: a 390x844 phone, axe, screenshots."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

# Playwright's sync API runs an event loop in the test thread; the live
# server and the ORM still run synchronously in this process.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

AXE = Path(__file__).resolve().parent / "vendor" / "axe.min.js"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
PHONE = {"width": 390, "height": 844}
NARROW = {"width": 360, "height": 740}
LINK = re.compile(r"https?://[^\s\"<>]+/signin/link/[A-Za-z0-9_\-]+/")


@pytest.fixture
def library(transactional_db):
    """Live-server tests flush the database: bring back the library and roles."""
    from accounts.roles import roles_sync
    from programs.services import library_sync

    library_sync()
    roles_sync()


@pytest.fixture
def site_url(settings, live_server):
    """Links in emails point at the live server."""
    settings.SITE_URL = live_server.url
    return live_server.url


@pytest.fixture
def phone(browser):
    """A fresh phone-sized browser context and page (JavaScript on)."""
    context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def phone_without_js(browser):
    context = browser.new_context(viewport=PHONE, java_script_enabled=False)
    page = context.new_page()
    yield page
    context.close()


def screenshot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"patient-{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def check_page(page, name: str) -> list[dict]:
    """Screenshot at 390x844, no serious/critical axe violation, no sideways scroll at 360."""
    screenshot(page, name)
    # Evaluated, not added as a <script>: the Content-Security-Policy blocks inline scripts.
    page.evaluate(AXE.read_text())
    results = page.evaluate("async () => await axe.run(document)")
    bad = [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["html"] for n in v["nodes"]][:3]}
        for v in results["violations"]
        if v["impact"] in {"serious", "critical"}
    ]
    assert bad == [], f"{name}: {bad}"
    size = page.viewport_size
    page.set_viewport_size(NARROW)
    width = page.evaluate("document.documentElement.scrollWidth")
    page.set_viewport_size(size)
    assert width <= NARROW["width"], f"{name}: scrolls sideways at 360 px ({width} px wide)"
    return results["violations"]


def sign_in_link_from_outbox(email: str) -> str:
    from django.core import mail

    for message in reversed(mail.outbox):
        if email in message.to:
            match = LINK.search(message.body)
            if match:
                return match.group(0)
    raise AssertionError(f"No sign-in email for {email}: {[m.to for m in mail.outbox]}")


def force_sign_in(page, base_url: str, user) -> None:
    """Put a signed-in session cookie for ``user`` into the page's context."""
    from importlib import import_module

    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY

    session = import_module(settings.SESSION_ENGINE).SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "accounts.backends.EmailBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.save()
    page.context.add_cookies(
        [{"name": settings.SESSION_COOKIE_NAME, "value": session.session_key, "url": base_url}]
    )
