"""Production settings for `make bench-review`, measured in-process with Django's test Client.

Everything production runs (DEBUG off, cached templates, database sessions
renewed on every request, the audit trail, the full middleware) except what
needs HTTPS or collected static files: the test Client speaks plain HTTP to
"testserver", and static URLs come from the finders instead of a manifest.
"""

import os

os.environ.setdefault("SECRET_KEY", "bench-review-only-not-a-secret-0123456789abcdefghijklmnop")
os.environ.setdefault("ALLOWED_HOSTS", "testserver")

from config.settings.production import *  # noqa: F403

DEBUG = False
ALLOWED_HOSTS = ["testserver"]
SECURE_SSL_REDIRECT = False
SECURE_HSTS_SECONDS = 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = False
SECURE_HSTS_PRELOAD = False
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
CELERY_TASK_ALWAYS_EAGER = True
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "root": {"handlers": [], "level": "WARNING"},
}
