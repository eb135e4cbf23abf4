#!/usr/bin/env bash
# The AWS API stand-in of the local stack: moto in server mode (DynamoDB, S3, SQS, ...) from the
# project venv, on http://$HOST_ADDR:$MOTO_PORT: moto binds one address, and this one serves both
# this machine and the pods (127.0.0.1 is unreachable from a pod). Its state is in memory: a
# restart empties it.
#   stack/moto.sh start|stop|restart|status|env
# `start` prints the env lines on stdout; progress on stderr.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

MOTO_RUN="$TP_RUN_DIR/moto"
MOTO_LOG="$MOTO_RUN/moto.log"
MOTO_PID="$MOTO_RUN/moto.pid"
MOTO_URL="http://$HOST_ADDR:$MOTO_PORT"
MOTO_START_TIMEOUT="${MOTO_START_TIMEOUT:-60}"

env_lines() {
  echo "AWS_ENDPOINT_URL=$MOTO_URL"
  echo "AWS_REGION=us-east-1"
  echo "AWS_DEFAULT_REGION=us-east-1"
  echo "AWS_ACCESS_KEY_ID=testing"
  echo "AWS_SECRET_ACCESS_KEY=testing"
}

running_pid() {
  [[ -f "$MOTO_PID" ]] || return 1
  local pid; pid="$(cat "$MOTO_PID")"
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q moto_server || return 1
  echo "$pid"
}

port_open() { (exec 3<>"/dev/tcp/$HOST_ADDR/$1") 2>/dev/null; }

# Waits until moto answers an HTTP request (its own API lists the backends' state).
wait_ready() {
  "$VENV_DIR/bin/python" - "$MOTO_URL" "$1" "$MOTO_START_TIMEOUT" <<'PY'
import os, sys, time, urllib.request
url, pid, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
deadline = time.monotonic() + timeout
while time.monotonic() < deadline:
    try:
        os.kill(pid, 0)
    except OSError:
        sys.exit(2)
    try:
        # A cheap call (STS GetCallerIdentity); /moto-api/data.json dumps all state and gets slow.
        req = urllib.request.Request(url + "/", data=b"Action=GetCallerIdentity&Version=2011-06-15",
                                     headers={"Content-Type": "application/x-www-form-urlencoded"})
        with urllib.request.urlopen(req, timeout=2) as r:
            if r.status == 200:
                sys.exit(0)
    except Exception:
        pass
    time.sleep(0.3)
sys.exit(1)
PY
}

start() {
  [[ -x "$VENV_DIR/bin/moto_server" ]] || { say "moto: $VENV_DIR/bin/moto_server missing (pip install -r requirements.txt into $VENV_DIR)"; exit 1; }
  mkdir -p "$MOTO_RUN"
  local pid
  if pid="$(running_pid)"; then
    wait_ready "$pid" || { say "moto: pid $pid runs but does not answer on $MOTO_URL; see $MOTO_LOG"; exit 1; }
    say "moto: already running (pid $pid) on $MOTO_URL"
    env_lines
    return 0
  fi
  ensure_host_addr
  if port_open "$MOTO_PORT"; then say "moto: port $MOTO_PORT is taken by another process; set MOTO_PORT"; exit 1; fi
  [[ -f "$MOTO_LOG" ]] && mv -f "$MOTO_LOG" "$MOTO_LOG.1"
  say "moto: starting moto_server on $MOTO_URL, log $MOTO_LOG"
  launch moto "$MOTO_PID" "$MOTO_LOG" wait_ready "$VENV_DIR/bin/moto_server" -H "$HOST_ADDR" -p "$MOTO_PORT"
  env_lines
}

stop() {
  local pid
  if ! pid="$(running_pid)"; then rm -f "$MOTO_PID"; say "moto: not running"; return 0; fi
  stop_process moto "$pid" "$MOTO_PID" 20
}

status() {
  local pid
  if pid="$(running_pid)"; then echo "moto: running (pid $pid) on $MOTO_URL"; else echo "moto: stopped"; return 3; fi
}

# start and stop are serialized (a test and a shell may ask at the same time).
lock() { mkdir -p "$MOTO_RUN"; exec 8>"$MOTO_RUN/.lock"; flock 8; }

case "${1:-}" in
  start) lock; start ;;
  stop) lock; stop ;;
  restart) lock; stop; start ;;
  status) status ;;
  env) env_lines ;;
  *) echo "usage: $0 start|stop|restart|status|env" >&2; exit 2 ;;
esac
