#!/usr/bin/env bash
# `make run` after set-up and migrations: check the ports, then hand over to supervisord
# (scripts/supervisord.conf), which runs and restarts web (gunicorn), scheduler and mail
# sink. Usage: scripts/run.sh [PORT]   (default 5000; RETURNPROG_SMTP_PORT for the sink).
set -euo pipefail
cd "$(dirname "$0")/.."
# Everything this instance writes (database, WAL, mail, keys) is for this account only.
umask 077
export RETURNPROG_ROOT="$PWD" RETURNPROG_RUN_USER="$(id -u)"
export RETURNPROG_RUN_DIR="${RETURNPROG_INSTANCE_PATH:-$PWD/instance}"
mkdir -p "$RETURNPROG_RUN_DIR"
# Development: webhooks may go to a receiver on this machine (http://127.0.0.1:…).
export RETURNPROG_WEBHOOK_ALLOW_LOOPBACK="${RETURNPROG_WEBHOOK_ALLOW_LOOPBACK:-true}"
# One line naming the setting and a non-zero exit when a port is busy (before anything starts).
ports="$(.venv/bin/python -m returnprog.ports "${1:-${PORT:-5000}}")" || exit 1
eval "$ports"
echo "returnprog on http://127.0.0.1:${PORT} (mail sink on 127.0.0.1:${RETURNPROG_SINK_PORT};" \
     "demo sign-in details: ${RETURNPROG_RUN_DIR}/demo-credentials.txt)"
exec .venv/bin/supervisord --configuration scripts/supervisord.conf
