"""Production settings, served over plain HTTP on 127.0.0.1 for the benchmarks.

Everything else (PostgreSQL, Redis, WhiteNoise with compressed static files,
database sessions, middleware) is exactly what production runs. The bench
runner sets DATABASE_URL, CELERY_BROKER_URL, STATIC_ROOT and friends.
"""

import os

# Production refuses to start without these; the bench has no secrets to keep.
os.environ.setdefault("SECRET_KEY", "bench-only-not-a-secret-0123456789abcdefghijklmnopqrstuvwxyz")
os.environ.setdefault("ALLOWED_HOSTS", "127.0.0.1")

from config.settings.production import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1"]
# Plain http on loopback: no redirect to https, no HSTS, cookies sent over http.
SECURE_SSL_REDIRECT = False
SECURE_HSTS_SECONDS = 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = False
SECURE_HSTS_PRELOAD = False
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
