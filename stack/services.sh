#!/usr/bin/env bash
# The services (the operator's table, operator/ticketplatform_operator/services.py: user-service,
# event-catalog, booking-service + its outbox relay, frontend) as local gunicorn processes, run by
# honcho from stack/Procfile. Each one listens on $<NAME>_PORT (stack/lib.sh) and its callers find it
# through $<NAME>_URL.
#   stack/services.sh start     start the data plane if needed (stack/dataplane.sh), create the Kafka
#                               topics if missing, start the services, wait for each /health and
#                               /ready, print the UI URL
#   stack/services.sh stop      stop them (SIGTERM to honcho, which stops its children)
#   stack/services.sh status    one line per service; exit 3 when any is down
#   stack/services.sh logs [NAME]  the last lines of the combined log (or one service's)
# Logs: $TP_RUN_DIR/services/services.log (one JSON object per line, prefixed by honcho).
# Tunables (environment): WEB_CONCURRENCY (gunicorn workers per service, 2), GUNICORN_THREADS (8),
# LOG_LEVEL (INFO), BOOKINGS_TOPIC, ANALYTICS_TOPIC, TICKETS_BUCKET, BOOKING_RELAY_METRICS_PORT (18084).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

SVC_DIR="$TP_RUN_DIR/services"
PID_FILE="$SVC_DIR/honcho.pid"
LOG_FILE="$SVC_DIR/services.log"
: "${BOOKING_RELAY_METRICS_PORT:=18084}"
NAMES=()
declare -A PORTS=() PREFIXES=()

# The services from the table, backends first (the order they are waited for), one line each:
# "<name> <NAME_PREFIX> <package> <migrates>".
load_table() {
  local name prefix port_var
  while read -r name prefix _; do
    port_var="${prefix}_PORT"
    NAMES+=("$name") PREFIXES[$name]=$prefix PORTS[$name]=${!port_var:?"$port_var is not set (stack/lib.sh)"}
  done < <("$VENV_DIR/bin/python" -m ticketplatform_operator.services)
  [[ ${#NAMES[@]} -gt 0 ]] || { say "services: no services from the table (is $VENV_DIR set up?)"; return 1; }
}

running_pid() {
  [[ -f "$PID_FILE" ]] || return 1
  local pid; pid="$(cat "$PID_FILE")"
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

http_ok() { curl -fsS -o /dev/null --max-time 2 "$1" 2>/dev/null; }

wait_healthy() {
  local pid="$1" deadline=$((SECONDS + ${SERVICES_START_TIMEOUT:-180})) name
  for name in "${NAMES[@]}"; do
    until http_ok "http://127.0.0.1:${PORTS[$name]}/health"; do
      if ! kill -0 "$pid" 2>/dev/null; then
        say "services: honcho exited while $name was starting; last log lines:"
        tail -n 40 "$LOG_FILE" >&2
        return 1
      fi
      if ((SECONDS > deadline)); then
        say "services: $name did not answer /health on port ${PORTS[$name]} in time; last log lines:"
        tail -n 40 "$LOG_FILE" >&2
        return 1
      fi
      sleep 0.5
    done
    say "services: $name up on http://127.0.0.1:${PORTS[$name]}"
  done
  for name in "${NAMES[@]}"; do
    until http_ok "http://127.0.0.1:${PORTS[$name]}/ready"; do
      if ((SECONDS > deadline)); then
        say "services: $name is up but not ready: $(curl -sS --max-time 5 "http://127.0.0.1:${PORTS[$name]}/ready" || true)"
        return 1
      fi
      sleep 0.5
    done
  done
}

start() {
  local pid
  load_table
  if pid="$(running_pid)"; then
    say "services: already running (honcho pid $pid)"
    wait_healthy "$pid"
    echo "UI: http://127.0.0.1:$FRONTEND_PORT/"
    return 0
  fi
  [[ -x "$VENV_DIR/bin/honcho" ]] || { say "services: $VENV_DIR/bin/honcho missing: create the venv from requirements.txt first"; return 1; }
  # The data plane and its settings: started when one of its servers is not running (a running one
  # is reused as it is).
  if ! bash "$STACK_DIR/dataplane.sh" status >/dev/null 2>&1; then
    bash "$STACK_DIR/dataplane.sh" start >/dev/null
  fi
  eval "$(bash "$STACK_DIR/dataplane.sh" env)"

  export PATH="$VENV_DIR/bin:$PATH"
  export PYTHONPATH="$REPO_DIR/services${PYTHONPATH:+:$PYTHONPATH}"
  export PYTHONUNBUFFERED=1
  local name
  for name in "${NAMES[@]}"; do export "${PREFIXES[$name]}_URL=http://127.0.0.1:${PORTS[$name]}"; done
  export BOOKINGS_TOPIC="${BOOKINGS_TOPIC:-ticket-bookings}"
  export ANALYTICS_TOPIC="${ANALYTICS_TOPIC:-analytics-results}"
  export TICKETS_BUCKET="${TICKETS_BUCKET:-ticket-platform-uploads}"
  export WEB_CONCURRENCY="${WEB_CONCURRENCY:-2}" GUNICORN_THREADS="${GUNICORN_THREADS:-8}"
  export LOG_LEVEL="${LOG_LEVEL:-INFO}"
  export OUTBOX_RELAY=off RELAY_METRICS_PORT="$BOOKING_RELAY_METRICS_PORT"
  export TP_RUN_DIR

  # Without the operator nobody else creates the topics (the broker does not auto-create them).
  python -m ticketing_common.local_topics "$BOOKINGS_TOPIC:3" "$ANALYTICS_TOPIC:1"

  for name in "${NAMES[@]}" booking-relay; do
    local port="${PORTS[$name]:-$BOOKING_RELAY_METRICS_PORT}"
    if http_ok "http://127.0.0.1:$port/health" || (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      say "services: port $port ($name) is already in use by another process"
      return 1
    fi
  done

  mkdir -p "$SVC_DIR"
  : >"$LOG_FILE"
  say "services: starting with honcho (stack/Procfile), log $LOG_FILE"
  # setsid: honcho leads its own process group, so stop can end exactly what was started here.
  setsid honcho -f "$STACK_DIR/Procfile" -d "$REPO_DIR" -e /dev/null --no-colour start >>"$LOG_FILE" 2>&1 < /dev/null &
  pid=$!
  echo "$pid" >"$PID_FILE"
  if ! wait_healthy "$pid"; then
    stop
    return 1
  fi
  say "services: all ${#NAMES[@]} services ready"
  echo "UI: http://127.0.0.1:$FRONTEND_PORT/"
}

stop() {
  local pid
  if ! pid="$(running_pid)"; then
    say "services: not running"
    rm -f "$PID_FILE"
    return 0
  fi
  say "services: stopping (honcho pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + 30))
  while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.3; done
  if kill -0 "$pid" 2>/dev/null; then
    say "services: honcho did not stop in 30s; killing its process group"
    kill -KILL -- "-$pid" 2>/dev/null || true
  fi
  # Children left behind (none normally): the group led by the honcho we started.
  kill -TERM -- "-$pid" 2>/dev/null || true
  rm -f "$PID_FILE"
  say "services: stopped"
}

status() {
  local rc=0 pid name
  load_table
  if pid="$(running_pid)"; then echo "services: honcho running (pid $pid), log $LOG_FILE"; else echo "services: honcho not running"; rc=3; fi
  for name in "${NAMES[@]}"; do
    local url="http://127.0.0.1:${PORTS[$name]}"
    if http_ok "$url/ready"; then echo "$name: ready on $url"
    elif http_ok "$url/health"; then echo "$name: up but not ready on $url"; rc=3
    else echo "$name: down ($url)"; rc=3; fi
  done
  if http_ok "http://127.0.0.1:$BOOKING_RELAY_METRICS_PORT/metrics"; then
    echo "booking-relay: running (metrics on http://127.0.0.1:$BOOKING_RELAY_METRICS_PORT/metrics)"
  else
    echo "booking-relay: down"; rc=3
  fi
  [[ $rc -eq 0 ]] && echo "UI: http://127.0.0.1:$FRONTEND_PORT/"
  return $rc
}

logs() {
  [[ -f "$LOG_FILE" ]] || { say "services: no log yet ($LOG_FILE)"; return 0; }
  if [[ -n "${1:-}" ]]; then grep -E "^[0-9:]+ $1\.[0-9]+ " "$LOG_FILE" | tail -n "${LINES_SHOWN:-100}"
  else tail -n "${LINES_SHOWN:-100}" "$LOG_FILE"; fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  logs) logs "${2:-}" ;;
  *) echo "usage: $0 start|stop|status|logs [NAME]" >&2; exit 2 ;;
esac
