"""The production settings, served over plain HTTP on 127.0.0.1 for the load test.

Everything else is production: DEBUG off, the manifest static files storage,
WhiteNoise, the CSP, persistent database connections with health checks.
Only what cannot work without TLS is switched off: the HTTPS redirect, HSTS
and secure-only cookies (a client on http:// never sends those back).
"""

from config.settings.production import *  # noqa: F403

SECURE_SSL_REDIRECT = False
SECURE_HSTS_SECONDS = 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = False
SECURE_HSTS_PRELOAD = False
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False

# Only tests/test_restarts.py turns this off, to show what the health checks
# prevent (a 500 on the first request after a PostgreSQL restart).
from config.settings.base import env_bool  # noqa: E402

DATABASES["default"]["CONN_HEALTH_CHECKS"] = env_bool("CONN_HEALTH_CHECKS", True)  # noqa: F405
