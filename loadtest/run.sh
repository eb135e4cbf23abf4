#!/usr/bin/env bash
# Runs the gateway load test headless with Locust and writes its summary JSON.
#
#   loadtest/run.sh                          full profile (10 -> 50 -> 100 -> 150 -> 50 -> 0 users, 1 min
#                                            per stage, ~6 min) against http://127.0.0.1:18080 (make up's stack)
#   loadtest/run.sh --quick                  the quick profile (4 s stages, users x 0.1, ~25 s)
#   loadtest/run.sh --stage-seconds 30       full shape with 30 s stages
#   loadtest/run.sh --url URL --summary PATH [-- extra locust options]
#   loadtest/run.sh --register once          each simulated user registers once, then repeats the other five cases
#   loadtest/run.sh --keep-users             do not delete the run's users from the local DynamoDB (moto) afterwards
#
# Summary: loadtest/results/<full|quick>-<UTC time>.json (git-ignored) unless --summary is given,
# plus Locust's HTML report beside it (--html). Exit code: 0 when the thresholds held (p95 < 500 ms,
# error rate < 10 %), 1 when one broke, 2 on a usage or set-up problem.
# Environment: LOADTEST_URL, LOADTEST_QUICK, LOADTEST_STAGE_SECONDS, LOADTEST_USER_SCALE, LOADTEST_STAGES,
# LOADTEST_THINK_SECONDS (see loadtest/stages.py and loadtest/locustfile.py), LOADTEST_VENV.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
REPO_DIR="$(cd "$HERE/.." && pwd)"
LOADTEST_VENV="${LOADTEST_VENV:-$REPO_DIR/.venv-loadtest}"

url="${LOADTEST_URL:-http://127.0.0.1:${FRONTEND_PORT:-18080}}"
summary="" html="" preflight=1 cleanup=1 extra=()
while (($#)); do
  case "$1" in
    --quick) export LOADTEST_QUICK=1 ;;
    --url) url="$2"; shift ;;
    --summary) summary="$2"; shift ;;
    --html) html="$2"; shift ;;
    --stage-seconds) export LOADTEST_STAGE_SECONDS="$2"; shift ;;
    --user-scale) export LOADTEST_USER_SCALE="$2"; shift ;;
    --register) export LOADTEST_REGISTER="$2"; shift ;;
    --no-preflight) preflight=0 ;;
    --keep-users) cleanup=0 ;;
    --) shift; extra=("$@"); break ;;
    -h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "run.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

bash "$REPO_DIR/stack/loadtest.sh" setup

if ((preflight)); then
  if ! curl -fsS -o /dev/null --max-time 10 "$url/api/health"; then
    echo "run.sh: the gateway $url does not answer /api/health: start the stack first (make up, or bash stack/services.sh start)" >&2
    exit 2
  fi
fi

profile=full; [[ "${LOADTEST_QUICK:-}" =~ ^(1|true|yes|on)$ ]] && profile=quick
stamp="$(date -u +%Y%m%dT%H%M%SZ)"
summary="${summary:-$HERE/results/$profile-$stamp.json}"
html="${html:-${summary%.json}.html}"
mkdir -p "$(dirname "$summary")" "$(dirname "$html")"
export LOADTEST_SUMMARY="$summary"
export LOADTEST_RUN_ID="${LOADTEST_RUN_ID:-$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')}"

echo "[loadtest] locust against $url ($profile profile); summary -> $summary" >&2
# cd: Locust puts the working directory on sys.path; the locustfile's folder holds its helpers.
cd "$HERE"
set +e
"$LOADTEST_VENV/bin/locust" -f "$HERE/locustfile.py" --headless --host "$url" \
  --only-summary --loglevel WARNING --html "$html" --summary-json "$summary" "${extra[@]}"
rc=$?
set -e

# The users this run registered, out of the local stack's DynamoDB (moto): see cleanup_users.py.
if ((cleanup)) && [[ "$url" =~ ^https?://(127\.[0-9.]+|localhost|\[::1\])(:|/|$) ]] && [[ -x "$REPO_DIR/.venv/bin/python" ]]; then
  if dp_env="$(bash "$REPO_DIR/stack/dataplane.sh" env 2>/dev/null)"; then
    ( eval "$dp_env"; cd "$REPO_DIR" && .venv/bin/python loadtest/cleanup_users.py --prefix "lt-$LOADTEST_RUN_ID-" ) \
      || echo "[loadtest] cleanup of the run's users failed (they stay in the table)" >&2
  fi
fi
echo "[loadtest] exit code $rc ($([[ $rc -eq 0 ]] && echo 'thresholds held' || echo 'thresholds broken or run failed')); summary $summary, report $html" >&2
exit "$rc"
