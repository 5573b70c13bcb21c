#!/usr/bin/env bash
# The embedded set-up `make run` serves: one ASGI process plus a Celery worker with beat on
# the file-based broker (no Redis needed), so the periodic rollups and hold expiry run too.
# Stopping the server (Ctrl+C) stops the worker.
set -euo pipefail
cd "$(dirname "$0")/.."
HOST="${HOST:-127.0.0.1}"
PORT="${PORT:-8000}"
export INTERNAL_BASE_URL="${INTERNAL_BASE_URL:-http://127.0.0.1:${PORT}}"
mkdir -p var/celery
.venv/bin/celery -A webchat worker --beat --pool solo --loglevel WARNING \
    --schedule var/celery/beat-schedule >var/celery/worker.log 2>&1 &
worker=$!
trap 'kill "$worker" 2>/dev/null || true; wait "$worker" 2>/dev/null || true' EXIT INT TERM
echo "webchat on http://${HOST}:${PORT}/  (Ctrl+C stops it; background jobs log to var/celery/worker.log)"
# Idle connections are kept 75 s, longer than the server's own provider pool keeps them
# (30 s, apps/providers/netguard.py): the demo model is this server, and at uvicorn's 5 s a
# turn could reuse a connection just as the server closed it (a retry, and a slower reply).
.venv/bin/uvicorn webchat.asgi:application --host "$HOST" --port "$PORT" --timeout-keep-alive 75 \
    --lifespan off --ws websockets-sansio --ws-per-message-deflate false --ws-max-size 262144 --no-access-log
