"""Local development: `make run`. SQLite, no-server broker, mail to the console."""

from .base import *  # noqa: F403
from .base import env_bool, mailer_from_env

DEBUG = env_bool("DEBUG", True)
MAILERS = {"default": mailer_from_env("django.core.mail.backends.console.EmailBackend")}
