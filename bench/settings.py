"""Production settings, served over plain HTTP on 127.0.0.1 for the benchmarks.

Everything else (PostgreSQL, Redis, WhiteNoise with compressed static files,
database sessions, middleware) is exactly what production runs. The bench
runner sets DATABASE_URL, CELERY_BROKER_URL, STATIC_ROOT and friends.
"""

import os

# Production refuses to start without these; the bench has no secrets to keep.
os.environ.setdefault("SECRET_KEY", "bench-only-not-a-secret-0123456789abcdefghijklmnopqrstuvwxyz")
os.environ.setdefault("ALLOWED_HOSTS", "127.0.0.1")

# Production over plain HTTP, exactly as the load test serves it.
from loadtest.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1"]
