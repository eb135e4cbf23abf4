#!/usr/bin/env bash
# Runs the operator (`ticketctl run`) as a local process against the local control plane.
#   stack/operator.sh start|stop|status|logs
set -euo pipefail
. "$(dirname "$0")/lib.sh"

dir="$TP_RUN_DIR/operator"
pidfile="$dir/pid"
mkdir -p "$dir"
running() { [[ -f "$pidfile" ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

case "${1:-status}" in
  start)
    if running; then say "operator: already running (pid $(cat "$pidfile"))"; exit 0; fi
    # The local analytics engine resolves spec.analytics.jobFile against the working directory.
    cd "$REPO_DIR"
    KUBECONFIG="$TP_RUN_DIR/controlplane/operator.kubeconfig" \
    OPERATOR_METRICS_PORT="$OPERATOR_METRICS_PORT" OPERATOR_METRICS_ADDR=127.0.0.1 \
      nohup "$VENV_DIR/bin/ticketctl" run --liveness "http://127.0.0.1:$OPERATOR_HEALTH_PORT/healthz" \
      >>"$dir/operator.log" 2>&1 &
    echo $! > "$pidfile"
    for _ in $(seq 1 60); do
      curl -fsS "http://127.0.0.1:$OPERATOR_HEALTH_PORT/healthz" >/dev/null 2>&1 && break
      running || { say "operator: exited; last lines of $dir/operator.log:"; tail -20 "$dir/operator.log" >&2; exit 1; }
      sleep 1
    done
    say "operator: running (pid $(cat "$pidfile")), metrics http://127.0.0.1:$OPERATOR_METRICS_PORT/metrics, log $dir/operator.log"
    ;;
  stop)
    if running; then
      pid=$(cat "$pidfile"); kill "$pid"
      for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
      kill -9 "$pid" 2>/dev/null || true
      say "operator: stopped"
    fi
    rm -f "$pidfile"
    ;;
  status) if running; then echo "operator                 up (pid $(cat "$pidfile"))"; else echo "operator                 down"; fi ;;
  logs) tail -n 50 "$dir/operator.log" ;;
  *) echo "usage: $0 start|stop|status|logs" >&2; exit 2 ;;
esac
