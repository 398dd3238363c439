#!/usr/bin/env bash
# `make loadtest`: gunicorn on 127.0.0.1 with the production settings (over
# plain HTTP: loadtest/settings.py), PostgreSQL and Redis, and LOADTEST_USERS
# (50) simulated patients driven by locust for LOADTEST_SECONDS (60): sign in
# with an emailed link, open today, log a session and its pain. Prints
# throughput and p50/p95/p99; exits non-zero on any failed request or a logged
# session missing from the database.
#
#   LOADTEST_DATABASE_URL  default postgres://postgres@127.0.0.1:5432/homeexercise_load
#                          (dropped and created afresh every run)
#   LOADTEST_REDIS_URL     default redis://127.0.0.1:6379/14 (flushed)
#   LOADTEST_WORKERS / LOADTEST_THREADS  gunicorn processes / threads each (2 / 4)
#   LOADTEST_WAIT          a patient's pause between steps, seconds (0.5-1.5)
#   LOADTEST_KEEPALIVE     gunicorn's keep-alive, seconds (75, as a proxy in front
#                          would keep a phone's connection; gunicorn's own 2 s
#                          races with a phone's next request after a pause)
set -euo pipefail

cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
SECONDS_TO_RUN=${LOADTEST_SECONDS:-60}
USERS=${LOADTEST_USERS:-50}
DB_URL=${LOADTEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/homeexercise_load}
REDIS=${LOADTEST_REDIS_URL:-redis://127.0.0.1:6379/14}
WORK=${LOADTEST_DIR:-var/loadtest}
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
: >"$WORK/gunicorn.log"

export DJANGO_SETTINGS_MODULE=loadtest.settings
export DATABASE_URL=$DB_URL REDIS_URL=$REDIS
export SECRET_KEY=${SECRET_KEY:-loadtest-$(head -c 32 /dev/urandom | base64 | tr -dc 'a-zA-Z0-9')}
export ALLOWED_HOSTS=127.0.0.1 SITE_URL=http://127.0.0.1
export STATIC_ROOT=$WORK/static
export EMAIL_BACKEND=django.core.mail.backends.locmem.EmailBackend
export LOG_LEVEL=WARNING
unset DEBUG

db_name=${DB_URL##*/}
admin_url=${DB_URL%/*}/postgres
echo "== Fresh database $db_name, Redis ${REDIS##*/} flushed"
psql "$admin_url" -v ON_ERROR_STOP=1 -q \
    -c "DROP DATABASE IF EXISTS $db_name WITH (FORCE)" -c "CREATE DATABASE $db_name"
"$PY" - "$REDIS" <<'PY'
import sys
import redis
redis.Redis.from_url(sys.argv[1]).flushdb()
PY
"$PY" manage.py migrate --noinput -v 0
"$PY" manage.py load_library >/dev/null
"$PY" manage.py collectstatic --noinput -v 0
"$PY" -m loadtest.seed --patients "$USERS" --out "$WORK/tokens.json"

port=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
echo "== gunicorn on 127.0.0.1:$port (${LOADTEST_WORKERS:-2} workers x ${LOADTEST_THREADS:-4} threads)"
.venv/bin/gunicorn config.wsgi --bind "127.0.0.1:$port" \
    --workers "${LOADTEST_WORKERS:-2}" --threads "${LOADTEST_THREADS:-4}" --worker-class gthread \
    --keep-alive "${LOADTEST_KEEPALIVE:-75}" \
    --access-logfile /dev/null --error-logfile "$WORK/gunicorn.log" 2>>"$WORK/gunicorn.log" &
gunicorn_pid=$!
trap 'kill $gunicorn_pid 2>/dev/null || true; wait $gunicorn_pid 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
    if curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then break; fi
    sleep 0.2
done
curl -fsS "http://127.0.0.1:$port/healthz"; echo

echo "== locust: $USERS patients for ${SECONDS_TO_RUN}s"
rm -f "$WORK"/stats_*.csv "$WORK/count.json"
status=0
LOADTEST_TOKENS=$WORK/tokens.json LOADTEST_COUNT_FILE=$WORK/count.json \
    .venv/bin/locust -f loadtest/locustfile.py --headless --only-summary \
    --host "http://127.0.0.1:$port" --users "$USERS" --spawn-rate "$USERS" \
    --run-time "${SECONDS_TO_RUN}s" --stop-timeout 10 \
    --csv "$WORK/stats" --exit-code-on-error 1 --loglevel WARNING || status=$?

"$PY" -m loadtest.report "$WORK/stats" "$WORK/count.json" || status=1
if grep -q "Traceback\|ERROR" "$WORK/gunicorn.log"; then
    echo "FAILED: server errors in $WORK/gunicorn.log"; grep -m 20 "Traceback\|ERROR" "$WORK/gunicorn.log"
    status=1
fi
exit $status
