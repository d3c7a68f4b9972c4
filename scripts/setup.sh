#!/usr/bin/env bash
# Create .venv with Python >= 3.12 and install horizon-zoo (editable) with its dev extras.
# Finds the interpreter robustly: $PYTHON, python3.12/3.13 on PATH (a pyenv shim that refuses
# is skipped), then pyenv's version folders.
set -euo pipefail
cd "$(dirname "$0")/.."

ok() { "$1" -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1; }

find_python() {
  local candidate
  for candidate in "${PYTHON:-}" python3.12 python3.13 python3; do
    [ -n "$candidate" ] || continue
    if command -v "$candidate" >/dev/null 2>&1 && ok "$candidate"; then
      command -v "$candidate"; return 0
    fi
  done
  local roots=("$HOME/.pyenv")
  command -v pyenv >/dev/null 2>&1 && roots=("$(pyenv root)" "${roots[@]}")
  for root in "${roots[@]}"; do
    for candidate in "$root"/versions/3.12*/bin/python3.12 "$root"/versions/3.13*/bin/python3.13; do
      if [ -x "$candidate" ] && ok "$candidate"; then echo "$candidate"; return 0; fi
    done
  done
  return 1
}

if [ ! -x .venv/bin/python ] || ! ok .venv/bin/python; then
  python=$(find_python) || { echo "setup: no Python >= 3.12 found; set PYTHON=/path/to/python3.12" >&2; exit 1; }
  echo "setup: creating .venv with $python" >&2
  rm -rf .venv
  "$python" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[dev]"
echo "setup: installed horizon-zoo into .venv ($(.venv/bin/python --version))" >&2
