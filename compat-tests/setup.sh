#!/usr/bin/env bash
# setup.sh - prepare the Python environments for the Trove compatibility tests.
#
#   compat-tests/.venv         pytest, pytest-timeout, boto3, requests   (requirements.txt)
#   compat-tests/.venv-awscli  awscli                                    (requirements-awscli.txt)
#
# Idempotent: a venv is (re)installed only when its requirements file changed since the last
# successful install (sha256 kept in <venv>/.requirements.sha256). Needs no TTY or stdin.
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

ensure_venv "$HERE/.venv" "$HERE/requirements.txt"
ensure_venv "$HERE/.venv-awscli" "$HERE/requirements-awscli.txt"

echo "ready: run  $HERE/.venv/bin/python -m pytest $HERE"
