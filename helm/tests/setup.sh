#!/usr/bin/env bash
# Makes .venv-helm/ (repository root) with the pinned packages of helm/tests/requirements.txt,
# for helm/tests/check_chart.py. Does nothing when the venv already has exactly those.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
venv=.venv-helm
requirements=helm/tests/requirements.txt
stamp="$venv/.requirements.sha256"
want=$(sha256sum "$requirements" | cut -d' ' -f1)
if [ -x "$venv/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  echo "$venv is up to date ($requirements)"
  exit 0
fi
python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input -r "$requirements"
echo "$want" > "$stamp"
echo "$venv: installed $requirements"
