#!/usr/bin/env bash
# Create (or reuse) the project's virtual environment in .venv and install Recaudo into it.
#
#   scripts/setup-venv.sh          runtime dependencies only
#   scripts/setup-venv.sh dev      runtime + test and lint tools
#
# Idempotent: the install is skipped when .venv/.recaudo-installed holds the hash of the
# current pyproject.toml and an extra set that covers the one asked for.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

extra="${1:-}"
case "$extra" in
  "" | dev) ;;
  *) echo "usage: $0 [dev]" >&2; exit 2 ;;
esac

python="${PYTHON:-python3}"
if ! command -v "$python" >/dev/null 2>&1; then
  echo "error: $python not found; Recaudo needs Python 3.11 or later" >&2
  exit 1
fi
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "error: $("$python" --version 2>&1) is too old; Recaudo needs Python 3.11 or later" >&2
  exit 1
fi

stamp=.venv/.recaudo-installed
want_hash="$(sha256sum pyproject.toml | cut -d' ' -f1)"

if [[ -x .venv/bin/python ]] && ! .venv/bin/python -c 'import sys' >/dev/null 2>&1; then
  echo "The virtual environment in .venv is broken (its Python moved?): recreating it." >&2
  rm -rf .venv
fi

if [[ -f "$stamp" ]]; then
  read -r have_hash have_extra <"$stamp" || true
  if [[ "$have_hash" == "$want_hash" && ( "${have_extra:-}" == "$extra" || "${have_extra:-}" == dev ) ]] \
    && [[ -x .venv/bin/recaudo ]]; then
    exit 0
  fi
fi

if [[ ! -x .venv/bin/python ]]; then
  echo "Creating the virtual environment in .venv ..." >&2
  "$python" -m venv .venv
fi

target="."
[[ -n "$extra" ]] && target=".[$extra]"
echo "Installing Recaudo ($target) into .venv ..." >&2
.venv/bin/python -m pip install -qq --disable-pip-version-check -e "$target" >&2
echo "$want_hash $extra" >"$stamp"
