#!/usr/bin/env bash
# Companion of scripts/run.sh (make run): the reminder scheduler, in its own process and
# never inside the web workers. One is active per database (a second one waits);
# SIGTERM stops it cleanly.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec .venv/bin/flask --app wsgi scheduler
