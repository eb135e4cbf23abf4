#!/usr/bin/env bash
# Creates the project's virtualenv ($VENV_DIR) from requirements.txt and installs the project's
# packages (operator/, services/) into it in editable mode. Reinstalls only when the pins change.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

stamp="$VENV_DIR/.requirements.sha256"
want=$(cat "$REPO_DIR/requirements.txt" "$REPO_DIR/pyproject.toml" | sha256sum | cut -d' ' -f1)
if [[ -x "$VENV_DIR/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  say "python: $VENV_DIR up to date"
  exit 0
fi
[[ -x "$VENV_DIR/bin/python" ]] || { say "python: creating $VENV_DIR"; python3 -m venv "$VENV_DIR"; }
say "python: installing requirements.txt (first time: a few minutes)"
"$VENV_DIR/bin/pip" install -q --disable-pip-version-check -r "$REPO_DIR/requirements.txt"
"$VENV_DIR/bin/pip" install -q --disable-pip-version-check --no-deps -e "$REPO_DIR"
echo "$want" > "$stamp"
say "python: ready"
