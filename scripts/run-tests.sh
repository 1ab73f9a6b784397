#!/usr/bin/env bash
# From a fresh clone: virtual environment with the dev tools, then the whole check:
# ruff check, ruff format --check, mypy (strict), lint-imports, and the test suite on
# SQLite and PostgreSQL. Every step runs even if an earlier one failed; the exit code is
# non-zero when any step failed. Extra arguments go to pytest (e.g. -k payments).
#
#   RECAUDO_TEST_BACKENDS=sqlite        run the suite on SQLite only (no PostgreSQL needed)
#   RECAUDO_TEST_PG_URL=postgresql+psycopg://user@host:5432/postgres   another server
#   RECAUDO_TEST_WORKERS=2              pytest-xdist workers (0 runs in one process)
#   RECAUDO_SKIP_BROWSER_TESTS=1        skip the Chromium tests (else Chromium is installed)
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/setup-venv.sh dev || { echo "error: installing the dev environment failed" >&2; exit 1; }

backends="${RECAUDO_TEST_BACKENDS:-sqlite,postgresql}"
pg_url="${RECAUDO_TEST_PG_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/postgres}"

pg_reachable() {
  .venv/bin/python - "$pg_url" <<'PY' >/dev/null 2>&1
import sys
from sqlalchemy import create_engine, text
engine = create_engine(sys.argv[1], connect_args={"connect_timeout": 3})
with engine.connect() as conn:
    conn.execute(text("select 1"))
PY
}

if [[ ",$backends," == *",postgresql,"* ]] && ! pg_reachable; then
  if [[ -z "${RECAUDO_TEST_PG_URL:-}" ]] && command -v pg_ctlcluster >/dev/null 2>&1 \
    && [[ -d /etc/postgresql ]]; then
    echo "PostgreSQL is not answering on 127.0.0.1:5432: starting the local cluster ..." >&2
    # shellcheck disable=SC2046
    pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start \
      || echo "warning: pg_ctlcluster could not start the cluster" >&2
    for _ in $(seq 1 30); do
      pg_reachable && break
      sleep 1
    done
  fi
  if ! pg_reachable; then
    echo "error: PostgreSQL at ${pg_url} is not reachable; start it, point" \
      "RECAUDO_TEST_PG_URL at one, or set RECAUDO_TEST_BACKENDS=sqlite" >&2
    exit 1
  fi
fi

# The browser tests (tests/browser) drive Debian's Chromium: install it when it is missing
# and we may (root with apt-get); otherwise they fail saying so, unless
# RECAUDO_SKIP_BROWSER_TESTS=1.
if [[ ! -x /usr/bin/chromium && "${RECAUDO_SKIP_BROWSER_TESTS:-}" != 1 ]]; then
  if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "Chromium is missing: apt-get install -y chromium ..." >&2
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y chromium >/dev/null; then
      DEBIAN_FRONTEND=noninteractive apt-get update >/dev/null \
        && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium >/dev/null \
        || echo "warning: installing chromium failed: the browser tests will fail" >&2
    fi
  else
    echo "warning: /usr/bin/chromium is missing (install the chromium package as root, or" \
      "set RECAUDO_SKIP_BROWSER_TESTS=1): the browser tests will fail" >&2
  fi
fi

failed=()
step() {
  local name="$1"
  shift
  echo
  echo "==> $name"
  if "$@"; then
    echo "--> $name: ok"
  else
    local code=$?
    echo "--> $name: FAILED (exit $code)"
    failed+=("$name")
  fi
}

run_pytest() {
  local workers="${RECAUDO_TEST_WORKERS:-2}"
  local args=()
  [[ "$workers" != 0 ]] && args+=(-n "$workers")
  RECAUDO_TEST_BACKENDS="$backends" .venv/bin/pytest "${args[@]}" "$@"
  local code=$?
  if [[ $code -eq 5 ]]; then
    echo "pytest collected no tests: that is a failure, not a pass" >&2
  fi
  return $code
}

step "ruff check" .venv/bin/ruff check .
step "ruff format --check" .venv/bin/ruff format --check .
step "mypy" .venv/bin/mypy
step "lint-imports" .venv/bin/lint-imports
step "pytest (${backends})" run_pytest "$@"

echo
if ((${#failed[@]})); then
  echo "FAILED: ${failed[*]}"
  exit 1
fi
echo "All checks passed."
