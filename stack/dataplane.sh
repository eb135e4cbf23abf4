#!/usr/bin/env bash
# The local data plane: Kafka (KRaft), PostgreSQL and moto, each from its own script.
#   stack/dataplane.sh start    start all three (in that order; each is idempotent), then print the
#                               connection settings as KEY=VALUE lines on stdout
#   stack/dataplane.sh stop     stop all three
#   stack/dataplane.sh status   one line each; exit 3 when any is stopped
#   stack/dataplane.sh env      the settings as `export KEY=VALUE` lines:  eval "$(stack/dataplane.sh env)"
set -euo pipefail
. "$(dirname "$0")/lib.sh"

PARTS=(kafka postgres moto)

env_lines() {
  local p
  for p in "${PARTS[@]}"; do bash "$STACK_DIR/$p.sh" env; done
}

case "${1:-}" in
  start)
    started=$SECONDS
    for p in "${PARTS[@]}"; do bash "$STACK_DIR/$p.sh" start >/dev/null; done
    say "data plane ready after $((SECONDS - started))s"
    env_lines
    ;;
  stop)
    for ((i = ${#PARTS[@]} - 1; i >= 0; i--)); do bash "$STACK_DIR/${PARTS[i]}.sh" stop; done
    ;;
  status)
    rc=0
    for p in "${PARTS[@]}"; do bash "$STACK_DIR/$p.sh" status || rc=3; done
    exit $rc
    ;;
  env)
    env_lines | sed 's/^/export /'
    ;;
  *) echo "usage: $0 start|stop|status|env" >&2; exit 2 ;;
esac
