#!/usr/bin/env bash
# Install the Debian packages returnprog needs (Debian 12 / bookworm names).
# Idempotent: only missing packages are installed, and apt is not touched at
# all when everything is already present.
#
#   bash scripts/system-deps.sh           # install what is missing
#   bash scripts/system-deps.sh --check   # only report; exit 1 if anything is missing
#
# As root: uses apt-get directly.  Otherwise: sudo if available, else prints
# the missing packages and exits non-zero.
set -euo pipefail

PACKAGES=(
  postgresql            # server binaries for tests/pgserver.py (initdb, pg_ctl, postgres)
  chromium              # browser for the Playwright tests
  fonts-dejavu-core     # deterministic fonts for HTML/PDF rendering
  libpango-1.0-0        # WeasyPrint runtime libraries
  libpangoft2-1.0-0
  libharfbuzz0b
  libharfbuzz-subset0
  wrk                   # HTTP load generator for bench/bench_web.py
  poppler-utils         # pdfsig and pdfdetach: tests check the sealed PDFs with a second tool
)

log() { printf 'system-deps: %s\n' "$*"; }

check_only=0
case "${1:-}" in
  "") ;;
  --check) check_only=1 ;;
  -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
  *) log "unknown argument: $1 (use --check or no argument)" >&2; exit 2 ;;
esac

is_installed() {
  # dpkg -s succeeds for removed-but-not-purged packages too, so check Status.
  dpkg -s "$1" 2>/dev/null | grep -q '^Status: install ok installed$'
}

if ! command -v dpkg >/dev/null 2>&1; then
  log "dpkg not found: this script supports Debian/Ubuntu only; install manually: ${PACKAGES[*]}" >&2
  exit 1
fi

missing=()
for pkg in "${PACKAGES[@]}"; do
  if ! is_installed "$pkg"; then
    missing+=("$pkg")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  log "all ${#PACKAGES[@]} packages present, nothing to do"
  exit 0
fi

log "missing: ${missing[*]}"
if [ "$check_only" -eq 1 ]; then
  exit 1
fi

if [ "$(id -u)" -eq 0 ]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1; then
  as_root=(sudo)
else
  log "not root and sudo not available; as root run: apt-get install -y --no-install-recommends ${missing[*]}" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
log "running: ${as_root[*]:+${as_root[*]} }apt-get update"
${as_root[@]+"${as_root[@]}"} env DEBIAN_FRONTEND=noninteractive apt-get update -qq
log "running: ${as_root[*]:+${as_root[*]} }apt-get install -y --no-install-recommends ${missing[*]}"
${as_root[@]+"${as_root[@]}"} env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

still_missing=()
for pkg in "${missing[@]}"; do
  if ! is_installed "$pkg"; then
    still_missing+=("$pkg")
  fi
done
if [ "${#still_missing[@]}" -ne 0 ]; then
  log "still missing after install: ${still_missing[*]}" >&2
  exit 1
fi
log "installed: ${missing[*]}"
