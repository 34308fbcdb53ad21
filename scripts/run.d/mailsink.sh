#!/usr/bin/env bash
# Companion of scripts/run.sh (make run): the embedded-default local SMTP sink.
# Every reminder the scheduler sends lands as a file in instance/mail/*.eml
# (format: returnprog/mailsink.py). Listens on SMTP_HOST:SMTP_PORT (127.0.0.1:8025).
set -euo pipefail
cd "$(dirname "$0")/../.."
exec .venv/bin/flask --app wsgi mail-sink
