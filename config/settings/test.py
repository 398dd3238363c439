"""Test settings. DATABASE_URL picks PostgreSQL; without it, SQLite in memory."""

import os

from .base import *  # noqa: F403
from .base import DATABASES, VAR_DIR, mailer_from_env

DEBUG = False
SECRET_KEY = "test-secret-key-not-for-production-0123456789abcdefghijklmnop"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
if not os.environ.get("DATABASE_URL"):
    # A file, not ":memory:", so a real Celery worker or live server process
    # started by a test can open the same test database.
    DATABASES["default"] = {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(VAR_DIR / "test-default.sqlite3"),
        "OPTIONS": {"timeout": 20},
        "TEST": {"NAME": str(VAR_DIR / f"test-{os.getpid()}.sqlite3")},
    }
    VAR_DIR.mkdir(parents=True, exist_ok=True)
DATABASES["default"]["CONN_MAX_AGE"] = 0

# Static files come from the finders in tests (live_server serves them); no
# collectstatic run is needed, so WhiteNoise has nothing to do here.
MIDDLEWARE = [m for m in MIDDLEWARE if m != "whitenoise.middleware.WhiteNoiseMiddleware"]  # noqa: F405

# Unit tests run Celery tasks inline. This is not a test of Celery: the
# reminder integration tests switch it off and run a real worker and broker.
CELERY_TASK_ALWAYS_EAGER = True
CELERY_TASK_EAGER_PROPAGATES = True

# Switches for the processes the reminder integration tests start (a real
# Celery worker and beat): real SMTP to the test's sink, real broker.
if os.environ.get("TEST_REAL_SMTP"):
    MAILERS = {"default": mailer_from_env()}
if os.environ.get("TEST_REAL_CELERY"):
    CELERY_TASK_ALWAYS_EAGER = False
