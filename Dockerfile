# Production image: gunicorn web, Celery worker and Celery beat all run from
# this one image (see docker-compose.yml for the commands).
FROM python:3.13-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=config.settings.production

WORKDIR /app

# Exact, tested versions (psycopg's binary wheel brings its own libpq).
COPY requirements.lock ./
RUN pip install -r requirements.lock

COPY . .

# Static files are collected into the image and served by WhiteNoise. The
# production settings refuse to load without secrets, so give them dummies
# that exist only for this build step.
RUN SECRET_KEY=build-only-collectstatic-not-a-secret-0123456789abcdef \
    ALLOWED_HOSTS=localhost \
    VAR_DIR=/tmp/build-var \
    python manage.py collectstatic --noinput --verbosity 0 \
 && rm -rf /tmp/build-var

# Run as an unprivileged user; var/ (beat's schedule file) is its only
# writable place in the app directory.
RUN useradd --system --uid 10001 --user-group --home-dir /app --no-create-home app \
 && mkdir -p /app/var \
 && chown app:app /app/var
USER app

EXPOSE 8000
# WEB_CONCURRENCY (read by gunicorn) sets the number of worker processes.
CMD ["gunicorn", "config.wsgi", "--bind", "0.0.0.0:8000", "--access-logfile", "-", "--graceful-timeout", "20"]
