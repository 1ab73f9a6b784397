#!/usr/bin/env bash
# From a fresh clone: virtual environment, install, migrate the SQLite file, load the demo
# company and serve the API on http://127.0.0.1:8000 (override with RECAUDO_HOST/RECAUDO_PORT
# and RECAUDO_DATABASE_URL). Safe to run again: nothing is installed or loaded twice.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/setup-venv.sh

export RECAUDO_DATABASE_URL="${RECAUDO_DATABASE_URL:-sqlite:///$PWD/var/recaudo.db}"
export RECAUDO_HOST="${RECAUDO_HOST:-127.0.0.1}"
export RECAUDO_PORT="${RECAUDO_PORT:-8000}"

.venv/bin/recaudo db upgrade
.venv/bin/recaudo demo
exec .venv/bin/recaudo serve --host "$RECAUDO_HOST" --port "$RECAUDO_PORT"
