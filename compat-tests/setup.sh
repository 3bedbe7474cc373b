#!/usr/bin/env bash
# setup.sh - prepare the Python environments for the Trove compatibility tests.
#
#   compat-tests/.venv         pytest, pytest-timeout, boto3, requests   (requirements.txt)
#   compat-tests/.venv-awscli  awscli                                    (requirements-awscli.txt)
#   compat-tests/node_modules  azurite (Azure Blob emulator)             (package.json, package-lock.json)
#
# Idempotent: a venv is (re)installed only when its requirements file changed since the last
# successful install (sha256 kept in <venv>/.requirements.sha256); node_modules likewise, keyed on
# package.json + package-lock.json (node_modules/.package.sha256). Needs no TTY or stdin.
# Without npm the node step is skipped with a warning (the Azure backend tests then skip).
# Environment: PYTHON3 (interpreter used to create the venvs) [python3].
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PYTHON3=${PYTHON3:-python3}
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1

# ensure_venv DIR REQUIREMENTS_FILE
ensure_venv() {
  local venv=$1 req=$2 marker=$1/.requirements.sha256 want
  want=$(sha256sum "$req" | cut -d' ' -f1)
  if [ -x "$venv/bin/python" ] && [ -f "$marker" ] && [ "$(cat "$marker")" = "$want" ]; then
    echo "$(basename "$venv"): up to date"
    return
  fi
  if [ ! -x "$venv/bin/python" ]; then
    echo "$(basename "$venv"): creating"
    "$PYTHON3" -m venv "$venv"
  fi
  echo "$(basename "$venv"): installing $(basename "$req")"
  rm -f "$marker"
  "$venv/bin/python" -m pip install --quiet -r "$req" < /dev/null
  echo "$want" > "$marker"
}

# ensure_node_modules: npm ci (npm install without a lock file) into $HERE/node_modules
ensure_node_modules() {
  local marker=$HERE/node_modules/.package.sha256 want
  if ! command -v npm >/dev/null 2>&1; then
    echo "node_modules: npm not found, skipped (Azurite tests will be skipped)" >&2
    return
  fi
  want=$(cat "$HERE/package.json" "$HERE"/package-lock.json 2>/dev/null | sha256sum | cut -d' ' -f1)
  if [ -x "$HERE/node_modules/.bin/azurite-blob" ] && [ -f "$marker" ] && [ "$(cat "$marker")" = "$want" ]; then
    echo "node_modules: up to date"
    return
  fi
  echo "node_modules: installing package.json"
  rm -f "$marker"
  if [ -f "$HERE/package-lock.json" ]; then
    (cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error < /dev/null)
  else
    (cd "$HERE" && npm install --no-audit --no-fund --loglevel=error < /dev/null)
  fi
  want=$(cat "$HERE/package.json" "$HERE"/package-lock.json 2>/dev/null | sha256sum | cut -d' ' -f1)
  echo "$want" > "$marker"
}

ensure_venv "$HERE/.venv" "$HERE/requirements.txt"
ensure_venv "$HERE/.venv-awscli" "$HERE/requirements-awscli.txt"
ensure_node_modules

echo "ready: run  $HERE/.venv/bin/python -m pytest $HERE"
