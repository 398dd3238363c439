#!/usr/bin/env bash
# `make run`: prepare the local database, then run web, a Celery worker and
# Celery beat side by side until Ctrl-C (or SIGTERM), which stops all three.
#
# Without DATABASE_URL / REDIS_URL the settings use SQLite (var/db.sqlite3)
# and kombu's filesystem broker (var/broker): no servers needed. With them set,
# the same command runs against PostgreSQL / Redis.
set -euo pipefail

cd "$(dirname "$0")/.."
PY=.venv/bin/python
CELERY=.venv/bin/celery
PORT=${PORT:-8000}
export DJANGO_SETTINGS_MODULE=${DJANGO_SETTINGS_MODULE:-config.settings.local}
var_dir=${VAR_DIR:-var}
mkdir -p "$var_dir"

if [ -n "${DATABASE_URL:-}" ]; then db="the database in DATABASE_URL"; else db="SQLite in $var_dir/"; fi
if [ -n "${CELERY_BROKER_URL:-}" ]; then broker="the broker in CELERY_BROKER_URL"
elif [ -n "${REDIS_URL:-}" ]; then broker="Redis in REDIS_URL"
else broker="kombu's file broker in $var_dir/broker/"; fi
echo "== Preparing $db (Celery: $broker)"
"$PY" manage.py migrate --noinput
"$PY" manage.py load_library
if "$PY" -c 'import django; django.setup(); from django.conf import settings; raise SystemExit(0 if settings.DEBUG else 1)'; then
    logins=$("$PY" manage.py seed_demo)
    echo "$logins"
else
    # Demo logins have a public password: seed_demo refuses without DEBUG.
    # Without DEBUG, runserver also needs the collected static files
    # (with DEBUG, WhiteNoise serves them straight from the app folders).
    logins="  (DEBUG is off: no demo logins were created)"
    "$PY" manage.py collectstatic --noinput --verbosity 0
fi

# Each process runs in its own process group (job control on). Stopping sends
# SIGTERM to each process (Celery's worker then shuts its pool down warmly,
# runserver's autoreloader stops its child) and, should anything in a group
# still be alive after 10 s, SIGKILL to the whole group.
set -m
pgids=()
stopping=0

stop_all() {
    local status=${1:-0}
    [ "$stopping" = 1 ] && return
    stopping=1
    trap - INT TERM EXIT
    echo
    echo "== Stopping web, worker and beat"
    local pgid
    for pgid in "${pgids[@]}"; do
        kill -TERM "$pgid" 2>/dev/null || true
    done
    for _ in $(seq 1 50); do
        local alive=0
        for pgid in "${pgids[@]}"; do
            kill -0 -- "-$pgid" 2>/dev/null && alive=1
        done
        [ "$alive" = 0 ] && break
        sleep 0.2
    done
    for pgid in "${pgids[@]}"; do
        kill -KILL -- "-$pgid" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    exit "$status"
}
trap 'stop_all 130' INT
trap 'stop_all 143' TERM
trap 'stop_all $?' EXIT

"$PY" manage.py runserver "127.0.0.1:$PORT" &
pgids+=("$!")
"$CELERY" -A config worker --loglevel INFO --concurrency 2 &
pgids+=("$!")
"$CELERY" -A config beat --loglevel INFO --schedule "$var_dir/celerybeat-schedule" &
pgids+=("$!")

sleep 2
cat <<MSG

================================================================
 Back Exercise Coach is running: http://127.0.0.1:$PORT/admin/
 Logins (password demo-pass-2026):
$(echo "$logins" | grep -e '@' -e 'DEBUG is off' || true)
 Processes: web (runserver), Celery worker, Celery beat.
 Press Ctrl-C to stop all of them.
================================================================

MSG

# Return as soon as any one of them exits (or a signal arrives); the EXIT
# trap then stops the others.
set +e
wait -n
status=$?
echo "A process exited (status $status); stopping the others." >&2
stop_all "$status"
