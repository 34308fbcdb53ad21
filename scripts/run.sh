#!/usr/bin/env bash
# Serve the web application; companions (mail sink, scheduler) join here as they land.
set -euo pipefail
PORT="${1:-5000}"
cd "$(dirname "$0")/.."
BIN=.venv/bin
pids=()
cleanup() { for p in "${pids[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT INT TERM
for companion in scripts/run.d/*.sh; do
  [ -e "$companion" ] || continue
  bash "$companion" & pids+=($!)
done
echo "returnprog on http://127.0.0.1:${PORT} (demo sign-in details: instance/demo-credentials.txt)"
"$BIN/gunicorn" --workers 2 --bind "127.0.0.1:${PORT}" --access-logfile - wsgi:app &
pids+=($!)
wait -n
