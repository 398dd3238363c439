"""Settings shared by every environment.

Everything that differs between machines is read from the environment
(see ``.env.example``). ``production.py`` only tightens these and refuses to
start without real secrets.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(os.environ.get("VAR_DIR", BASE_DIR / "var"))


def env(name: str, default: str | None = None) -> str:
    value = os.environ.get(name)
    if value is None or value == "":
        if default is None:
            raise ImproperlyConfigured(f"The environment variable {name} must be set.")
        return default
    return value


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env("SECRET_KEY", "insecure-dev-key-change-me-0123456789abcdefghijklmnopqrstuvwxyz")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")
SITE_URL = env("SITE_URL", "http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_htmx",
    "accounts",
    "programs",
    "patients",
    "symptoms",
    "reminders",
    "audit",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "accounts.middleware.SessionRenewalMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
            ],
        },
    },
]

# Database: DATABASE_URL, defaulting to a local SQLite file for `make run`.
DATABASES = {
    "default": dj_database_url.parse(
        env("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
        conn_max_age=int(env("CONN_MAX_AGE", "60")),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    # Several processes (web, worker, beat) share the file in `make run`.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    if env_bool("DATABASE_PREPARED_STATEMENTS", True):
        # Parameters bound by the server, and a statement PostgreSQL has seen
        # twice on a connection is kept parsed and planned (psycopg's prepared
        # statements). The few queries every patient request makes then cost
        # the database about half. Turn off behind a PgBouncer in transaction mode.
        DATABASES["default"].setdefault("OPTIONS", {}).update(
            server_side_binding=True, prepare_threshold=2
        )
    if random_page_cost := os.environ.get("DATABASE_RANDOM_PAGE_COST", "1.1").strip():
        # The planner's default (4) prices a row looked up through an index as
        # a read from a spinning disk. A clinic's tables are small and sit in
        # memory, so the plans it caches for our statements scanned whole
        # tables (every assignment, every patient) where one index lookup
        # does (make bench-pages). 1.1 is the usual value for SSD storage.
        # Empty: the server's own setting (a PgBouncer refuses the option
        # unless it is in ignore_startup_parameters).
        DATABASES["default"].setdefault("OPTIONS", {})["options"] = (
            f"-c random_page_cost={float(random_page_cost)}"
        )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# "I did this session" commits without waiting for the disk flush (PostgreSQL
# asynchronous commit, for that one statement's transaction only; see
# symptoms.services.session_log). A crash of the database server itself can
# lose the taps of its last fraction of a second (never corrupt anything);
# the patient's next write, or anyone's, flushes them. 0 to wait as every
# other write does.
SESSION_LOG_ASYNC_COMMIT = env_bool("SESSION_LOG_ASYNC_COMMIT", True)
# PostgreSQL is the production database; SQLite (make run, tests) builds the
# same indexes without their INCLUDE columns, which is fine there.
SILENCED_SYSTEM_CHECKS = ["models.W040"]

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = ["accounts.backends.EmailBackend"]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "patients:signin"
LOGIN_REDIRECT_URL = "patients:today"

# Password sign-in cool-off (accounts.throttling): failures per window.
SIGN_IN_THROTTLE_WINDOW_MINUTES = int(env("SIGN_IN_THROTTLE_WINDOW_MINUTES", "15"))
SIGN_IN_THROTTLE_PER_ACCOUNT = int(env("SIGN_IN_THROTTLE_PER_ACCOUNT", "5"))
SIGN_IN_THROTTLE_PER_IP = int(env("SIGN_IN_THROTTLE_PER_IP", "20"))

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env("TIME_ZONE", "UTC")  # the clinic's zone, for staff pages
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = Path(env("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]

# Celery: REDIS_URL or CELERY_BROKER_URL; without either, a broker that needs
# no server (kombu's filesystem transport) so `make run` works anywhere.
REDIS_URL = os.environ.get("REDIS_URL", "")
CELERY_BROKER_URL = env("CELERY_BROKER_URL", REDIS_URL or "filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = VAR_DIR / "broker"
    (_broker_dir / "processed").mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir),
        "data_folder_out": str(_broker_dir),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
else:
    # Redis redelivers an unacknowledged task after this many seconds. Keep it
    # above the longest retry countdown (REMINDER_RETRY_BACKOFF_MAX_SECONDS);
    # a late copy of a reminder task does nothing (its claim token is stale).
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": int(env("CELERY_BROKER_VISIBILITY_TIMEOUT", "3600"))
    }
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = "UTC"

# Reminder emails (reminders/, DESIGN.md section 4). The plan lives in the
# database; beat only triggers short sweeps, never hours-ahead ETA tasks.
REMINDER_PLAN_DAYS_AHEAD = int(env("REMINDER_PLAN_DAYS_AHEAD", "1"))  # 1: today and tomorrow
REMINDER_MAX_LATENESS_MINUTES = int(env("REMINDER_MAX_LATENESS_MINUTES", "60"))
# A slot "sending" for longer than this lost its worker and is sent again.
REMINDER_SENDING_TIMEOUT = int(env("REMINDER_SENDING_TIMEOUT", "600"))  # seconds
# Hard time limit of one send attempt; must stay below REMINDER_SENDING_TIMEOUT.
REMINDER_SEND_TIME_LIMIT = int(env("REMINDER_SEND_TIME_LIMIT", "120"))  # seconds
# Reminders claimed and sent together: one claim, one task, one SMTP connection.
REMINDER_SEND_BATCH_SIZE = int(env("REMINDER_SEND_BATCH_SIZE", "200"))
REMINDER_MAX_SEND_ATTEMPTS = int(env("REMINDER_MAX_SEND_ATTEMPTS", "5"))
REMINDER_RETRY_BACKOFF_SECONDS = int(env("REMINDER_RETRY_BACKOFF_SECONDS", "30"))
REMINDER_RETRY_BACKOFF_MAX_SECONDS = int(env("REMINDER_RETRY_BACKOFF_MAX_SECONDS", "300"))
REMINDER_UNSUBSCRIBE_MAX_AGE_DAYS = int(env("REMINDER_UNSUBSCRIBE_MAX_AGE_DAYS", "180"))
REMINDER_MESSAGE_ID_DOMAIN = env(
    "REMINDER_MESSAGE_ID_DOMAIN", urlsplit(SITE_URL).hostname or "localhost"
)
if REMINDER_SEND_TIME_LIMIT >= REMINDER_SENDING_TIMEOUT:
    raise ImproperlyConfigured("REMINDER_SEND_TIME_LIMIT must be below REMINDER_SENDING_TIMEOUT.")

# Periodic tasks, defined here in code. Exactly one `celery beat` may run.
# Each message expires after one interval: a backlog of sweeps is pointless.
_dispatch_every = float(env("REMINDER_DISPATCH_INTERVAL", "60"))  # seconds
_plan_every = float(env("REMINDER_PLAN_INTERVAL", "900"))
CELERY_BEAT_SCHEDULE = {
    "reminders-plan": {
        "task": "reminders.tasks.plan_reminders",
        "schedule": _plan_every,
        "options": {"expires": _plan_every},
    },
    "reminders-dispatch": {
        "task": "reminders.tasks.dispatch_due_reminders",
        "schedule": _dispatch_every,
        "options": {"expires": _dispatch_every},
    },
    "reminders-recover": {
        "task": "reminders.tasks.recover_stuck_sending",
        "schedule": _dispatch_every,
        "options": {"expires": _dispatch_every},
    },
    # Alerts and adherence (symptoms/tasks.py). Hourly, so every patient's own
    # local midnight is followed within the hour; each task is idempotent.
    "symptoms-alerts-evaluate": {
        "task": "symptoms.tasks.alerts_evaluate",
        "schedule": 3600.0,
        "options": {"expires": 3600.0},
    },
    "symptoms-adherence-materialise": {
        "task": "symptoms.tasks.adherence_materialise",
        "schedule": 3600.0,
        "options": {"expires": 3600.0},
    },
    "symptoms-alert-digests": {
        "task": "symptoms.tasks.alert_digests_run",
        "schedule": 900.0,
        "options": {"expires": 900.0},
    },
    "symptoms-alert-resend-urgent": {
        "task": "symptoms.tasks.alert_resend_urgent",
        "schedule": 120.0,
        "options": {"expires": 120.0},
    },
}
# Routine alerts go to each therapist in one digest email a day, sent from
# this hour (clinic time, TIME_ZONE) on. Red flags are emailed at once.
ALERT_DIGEST_HOUR = int(env("ALERT_DIGEST_HOUR", "7"))
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# Email (Django 6.1 MAILERS), configured from EMAIL_* variables.
SMTP_BACKEND = "django.core.mail.backends.smtp.EmailBackend"


def mailer_from_env(default_backend: str = SMTP_BACKEND) -> dict:
    backend = env("EMAIL_BACKEND", default_backend)
    if backend != SMTP_BACKEND:
        return {"BACKEND": backend}
    return {
        "BACKEND": backend,
        "OPTIONS": {
            "host": env("EMAIL_HOST", "127.0.0.1"),
            "port": int(env("EMAIL_PORT", "25")),
            "username": os.environ.get("EMAIL_HOST_USER", ""),
            "password": os.environ.get("EMAIL_HOST_PASSWORD", ""),
            "use_tls": env_bool("EMAIL_USE_TLS", False),
            "timeout": int(env("EMAIL_TIMEOUT", "20")),
        },
    }


MAILERS = {"default": mailer_from_env()}
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", "Back Exercise Coach <no-reply@localhost>")
SERVER_EMAIL = env("SERVER_EMAIL", DEFAULT_FROM_EMAIL)
REMINDER_REPLY_TO = os.environ.get("REMINDER_REPLY_TO", "")

# Sessions live in the database (accounts.Session) and are read in one query
# with the user they sign in (accounts/sessions.py).
SESSION_ENGINE = "accounts.sessions"
SESSION_COOKIE_AGE = 60 * 60 * 24 * 30
# Renewed on use (accounts.middleware.SessionRenewalMiddleware, at most once a
# day), so a patient who uses the app is not signed out between reminders; 30
# days without a visit signs them out.
SESSION_SAVE_EVERY_REQUEST = False
SESSION_RENEW_AFTER_SECONDS = 60 * 60 * 24
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
X_FRAME_OPTIONS = "DENY"

# Content-Security-Policy (Django's own middleware), in every environment so
# the tests run under it. Nothing inline: no <script> or <style> blocks, no
# style="" or on*="" attributes, no eval. htmx is told the same in
# templates/base.html (no injected indicator <style>, no eval, no inline
# scripts from swapped content); its indicator CSS is in static/css/app.css.
# tests/browser/test_csp.py fails on any violation, patient pages and admin.
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "frame-ancestors": [CSP.NONE],
    "form-action": [CSP.SELF],
}
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}
