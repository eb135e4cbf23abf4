#!/usr/bin/env bash
# The ticket-generator Lambda of the local stack: moto cannot run Lambda code without Docker, so
# the uploads bucket notifies an SQS queue (on the same moto server) and a local invoker drains
# it and calls lambda/ticket_generator/handler.py with each S3 event (see lambda/README.md).
#   stack/lambda.sh start|stop|restart|status|logs
# `start` wires bucket -> queue (idempotent), starts the invoker in the background and waits until
# it polls; it needs moto running (stack/moto.sh start). Log and pid file in $TP_RUN_DIR/lambda.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

LAMBDA_RUN="$TP_RUN_DIR/lambda"
LAMBDA_LOG="$LAMBDA_RUN/invoker.log"
LAMBDA_PID="$LAMBDA_RUN/invoker.pid"
LAMBDA_START_TIMEOUT="${LAMBDA_START_TIMEOUT:-30}"
PYTHON="$VENV_DIR/bin/python"

export AWS_ENDPOINT_URL="${AWS_ENDPOINT_URL:-http://$HOST_ADDR:$MOTO_PORT}"
export AWS_REGION="${AWS_REGION:-us-east-1}" AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}"
export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-testing}" AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-testing}"
export TICKETS_BUCKET="${TICKETS_BUCKET:-ticket-platform-uploads}"
export TICKET_QUEUE_NAME="${TICKET_QUEUE_NAME:-ticket-generator-events}"
# `lambda/` is a folder (a Python keyword, not a package); the package inside it is ticket_generator.
export PYTHONPATH="$REPO_DIR/lambda${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1

running_pid() {
  [[ -f "$LAMBDA_PID" ]] || return 1
  local pid; pid="$(cat "$LAMBDA_PID")"
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'ticket_generator.local_invoker' || return 1
  echo "$pid"
}

moto_up() {
  "$PYTHON" - "$AWS_ENDPOINT_URL" <<'PY'
import sys, urllib.request
try:
    # A cheap call (STS GetCallerIdentity); /moto-api/data.json dumps all state and gets slow.
    req = urllib.request.Request(sys.argv[1] + "/", data=b"Action=GetCallerIdentity&Version=2011-06-15",
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    urllib.request.urlopen(req, timeout=3).close()
except Exception:
    sys.exit(1)
PY
}

env_lines() {
  echo "TICKETS_BUCKET=$TICKETS_BUCKET"
  echo "TICKET_QUEUE_NAME=$TICKET_QUEUE_NAME"
}

start() {
  [[ -x "$PYTHON" ]] || { say "lambda: $PYTHON missing (create the venv from requirements.txt)"; exit 1; }
  mkdir -p "$LAMBDA_RUN"
  local pid
  if pid="$(running_pid)"; then
    say "lambda: invoker already running (pid $pid), bucket $TICKETS_BUCKET -> queue $TICKET_QUEUE_NAME"
    env_lines
    return 0
  fi
  moto_up || { say "lambda: no AWS endpoint answers at $AWS_ENDPOINT_URL; start it first: stack/moto.sh start"; exit 1; }
  # Wire bucket -> queue in the foreground, so a mistake shows here and not only in the log.
  say "lambda: wiring s3://$TICKETS_BUCKET (s3:ObjectCreated:*) -> sqs $TICKET_QUEUE_NAME on $AWS_ENDPOINT_URL"
  "$PYTHON" -m ticket_generator.local_invoker --setup-only >>"$LAMBDA_LOG" 2>&1 \
    || { say "lambda: setup failed; last lines of $LAMBDA_LOG:"; tail -n 20 "$LAMBDA_LOG" >&2; exit 1; }
  local offset; offset=$(stat -c %s "$LAMBDA_LOG")
  setsid nohup "$PYTHON" -m ticket_generator.local_invoker --setup >>"$LAMBDA_LOG" 2>&1 </dev/null &
  pid=$!
  echo "$pid" >"$LAMBDA_PID"
  local deadline=$((SECONDS + LAMBDA_START_TIMEOUT))
  while ((SECONDS < deadline)); do
    kill -0 "$pid" 2>/dev/null || { say "lambda: invoker exited; last lines of $LAMBDA_LOG:"; tail -n 20 "$LAMBDA_LOG" >&2; exit 1; }
    if tail -c +"$((offset + 1))" "$LAMBDA_LOG" | grep -q '"event": "invoker.polling"'; then
      say "lambda: invoker polling (pid $pid), log $LAMBDA_LOG"
      env_lines
      return 0
    fi
    sleep 0.3
  done
  say "lambda: invoker did not start polling within ${LAMBDA_START_TIMEOUT}s; see $LAMBDA_LOG"
  kill "$pid" 2>/dev/null || true
  exit 1
}

stop() {
  local pid
  if ! pid="$(running_pid)"; then rm -f "$LAMBDA_PID"; say "lambda: not running"; return 0; fi
  # it finishes the current long poll (5 s) and the message in hand first
  stop_process lambda "$pid" "$LAMBDA_PID" 30
}

status() {
  local pid
  if pid="$(running_pid)"; then
    echo "lambda: invoker running (pid $pid), s3://$TICKETS_BUCKET -> sqs $TICKET_QUEUE_NAME on $AWS_ENDPOINT_URL"
  else
    echo "lambda: stopped"
    return 3
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  restart) stop; start ;;
  status) status ;;
  env) env_lines ;;
  logs) tail -n "${2:-50}" "$LAMBDA_LOG" ;;
  *) echo "usage: $0 start|stop|restart|status|env|logs [N]" >&2; exit 2 ;;
esac
