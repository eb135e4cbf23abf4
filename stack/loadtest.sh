#!/usr/bin/env bash
# The gateway load test (Locust, loadtest/) and its own virtualenv.
#   stack/loadtest.sh setup          create .venv-loadtest from loadtest/requirements.txt; cached: does
#                                    nothing while the pins (and the Python) are unchanged
#   stack/loadtest.sh run [ARGS]     the full profile against the stack (loadtest/run.sh ARGS)
#   stack/loadtest.sh quick [ARGS]   the quick profile (loadtest/run.sh --quick ARGS)
# The virtualenv is separate from .venv on purpose: Locust brings gevent (which monkey-patches the
# standard library), greenlet, pyzmq and its own Flask pins, none of which the project's code wants.
# LOADTEST_VENV overrides its place (default .venv-loadtest at the repository root, git-ignored).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

LOADTEST_VENV="${LOADTEST_VENV:-$REPO_DIR/.venv-loadtest}"
REQS="$REPO_DIR/loadtest/requirements.txt"

setup() {
  local stamp="$LOADTEST_VENV/.requirements.sha256" want py
  py="$(command -v python3)"
  want=$({ cat "$REQS"; "$py" -c 'import sys; print(sys.version)'; } | sha256sum | cut -d' ' -f1)
  if [[ -x "$LOADTEST_VENV/bin/locust" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    say "loadtest: $LOADTEST_VENV up to date ($("$LOADTEST_VENV/bin/python" -c 'import locust; print("locust", locust.__version__)'))"
    return 0
  fi
  if [[ -x "$LOADTEST_VENV/bin/python" ]]; then
    say "loadtest: loadtest/requirements.txt changed: updating $LOADTEST_VENV"
  else
    say "loadtest: creating $LOADTEST_VENV ($("$py" --version))"
    "$py" -m venv "$LOADTEST_VENV"
  fi
  say "loadtest: installing loadtest/requirements.txt (locust and its pins; first time: about a minute)"
  "$LOADTEST_VENV/bin/pip" install -q --disable-pip-version-check -r "$REQS"
  # Pins that were dropped from the file are removed too, so the venv is exactly the file.
  local extra
  extra=$("$LOADTEST_VENV/bin/pip" freeze --disable-pip-version-check --exclude-editable \
    | cut -d= -f1 | tr 'A-Z_' 'a-z-' | sort \
    | comm -23 - <(grep -Ev '^\s*(#|$)' "$REQS" | cut -d= -f1 | sed 's/\[.*//' | tr 'A-Z_' 'a-z-' | sort) || true)
  if [[ -n "$extra" ]]; then
    say "loadtest: removing packages no longer pinned: $(echo $extra)"
    # shellcheck disable=SC2086
    "$LOADTEST_VENV/bin/pip" uninstall -q -y --disable-pip-version-check $extra
  fi
  "$LOADTEST_VENV/bin/python" -c 'import locust, gevent; print(f"locust {locust.__version__}, gevent {gevent.__version__}")' >&2
  echo "$want" >"$stamp"
  say "loadtest: ready ($LOADTEST_VENV)"
}

case "${1:-}" in
  setup) setup ;;
  run) shift; exec bash "$REPO_DIR/loadtest/run.sh" "$@" ;;
  quick) shift; exec bash "$REPO_DIR/loadtest/run.sh" --quick "$@" ;;
  *) echo "usage: $0 setup | run [loadtest/run.sh args] | quick [args]" >&2; exit 2 ;;
esac
