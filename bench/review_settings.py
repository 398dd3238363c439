"""Production settings for `make bench-review`, measured in-process with Django's test Client.

Everything production runs (DEBUG off, cached templates, sessions in the
database read through the cache, the audit trail, the full middleware) except what
needs HTTPS or collected static files: the test Client speaks plain HTTP to
"testserver", and static URLs come from the finders instead of a manifest.
"""

import os

os.environ.setdefault("SECRET_KEY", "bench-review-only-not-a-secret-0123456789abcdefghijklmnop")
os.environ.setdefault("ALLOWED_HOSTS", "testserver")

# Production over plain HTTP, exactly as the load test serves it.
from loadtest.settings import *  # noqa: F403

DEBUG = False
ALLOWED_HOSTS = ["testserver"]
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
