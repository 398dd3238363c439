"""The production settings stay hardened, and every response carries the CSP."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.urls import reverse

ROOT = Path(__file__).resolve().parents[1]

READ = """
import json
from django.conf import settings
print(json.dumps({
    "csp": {k: [str(v) for v in vs] for k, vs in settings.SECURE_CSP.items()},
    "middleware": settings.MIDDLEWARE,
    "hsts": settings.SECURE_HSTS_SECONDS,
    "hsts_subdomains": settings.SECURE_HSTS_INCLUDE_SUBDOMAINS,
    "ssl_redirect": settings.SECURE_SSL_REDIRECT,
    "session_secure": settings.SESSION_COOKIE_SECURE,
    "csrf_secure": settings.CSRF_COOKIE_SECURE,
    "session_httponly": settings.SESSION_COOKIE_HTTPONLY,
    "health_checks": settings.DATABASES["default"]["CONN_HEALTH_CHECKS"],
    "conn_max_age": settings.DATABASES["default"]["CONN_MAX_AGE"],
    "debug": settings.DEBUG,
    "x_frame": settings.X_FRAME_OPTIONS,
}))
"""


def production(*args: str) -> subprocess.CompletedProcess:
    env = {
        key: value
        for key, value in os.environ.items()
        if key
        not in {
            "DATABASE_URL",
            "DEBUG",
            "SECURE_SSL_REDIRECT",
            "SECURE_HSTS_SECONDS",
            "DJANGO_ALLOW_ASYNC_UNSAFE",  # set for the browser tests; never in deployment
        }
    }
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.production",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="clinic.example.com",
    )
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture(scope="module")
def prod():
    result = production("-c", f"import django; django.setup()\n{READ}")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_check_deploy_is_clean_with_the_production_settings():
    result = production("manage.py", "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_is_https_only_with_secure_cookies_and_health_checked_connections(prod):
    assert prod["debug"] is False
    assert prod["ssl_redirect"] is True
    assert prod["hsts"] >= 31536000 and prod["hsts_subdomains"] is True
    assert prod["session_secure"] and prod["csrf_secure"] and prod["session_httponly"]
    assert prod["x_frame"] == "DENY"
    # A PostgreSQL restart is survived: stale persistent connections are checked first
    # (tests/test_restarts.py shows it with a real restart).
    assert prod["health_checks"] is True and prod["conn_max_age"] > 0


def test_the_content_security_policy_is_strict(prod):
    assert "django.middleware.csp.ContentSecurityPolicyMiddleware" in prod["middleware"]
    csp = prod["csp"]
    assert csp["default-src"] == ["'self'"]
    assert csp["script-src"] == ["'self'"] and csp["style-src"] == ["'self'"]
    assert csp["object-src"] == ["'none'"] and csp["base-uri"] == ["'none'"]
    assert csp["frame-ancestors"] == ["'none'"] and csp["form-action"] == ["'self'"]
    everything = " ".join(value for values in csp.values() for value in values)
    for loose in ("unsafe-inline", "unsafe-eval", "unsafe-hashes", "*", "http:", "https:"):
        assert loose not in everything.split(), loose


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url", ["/", "/signin/", "/admin/login/", "/healthz", "/manifest.webmanifest"]
)
def test_every_response_carries_the_policy(client, url):
    response = client.get(url)
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy


@pytest.mark.django_db
def test_patient_pages_carry_no_inline_script_or_style(client, patient):
    client.force_login(patient.user)
    for name in (
        "patients:today",
        "patients:settings",
        "patients:progress",
        "patients:log_session",
    ):
        body = client.get(reverse(name)).content.decode()
        assert " style=" not in body, name
        assert "<style" not in body, name
        for chunk in body.split("<script")[1:]:
            assert chunk.lstrip().startswith(("src=", 'type="application/json"')), (
                name,
                chunk[:80],
            )
