#!/usr/bin/env bash
# Flink for the local analytics job: PyFlink in its own venv plus the Kafka SQL connector jar.
#   stack/flink.sh setup   install both (cached; a second run checks and returns in a second)
#   stack/flink.sh env     print FLINK_PYTHON=... and FLINK_KAFKA_CONNECTOR_JAR=... (after setup)
#   stack/flink.sh status  say what is installed
#
# * PyFlink (apache-flink $FLINK_VERSION, which carries Flink's runtime jars: a job run with
#   `python analytics_job.py` starts a MiniCluster and needs only Java) goes into $FLINK_VENV
#   (default $REPO_DIR/.venv-flink) from flink/requirements.txt. It is a venv of its own because
#   PyFlink pins its own numpy, pandas, protobuf, grpcio and apache-beam.
# * org.apache.flink:flink-sql-connector-kafka:$FLINK_KAFKA_CONNECTOR (one shaded jar, kafka-clients
#   inside) comes from Maven Central with mvn into $TP_CACHE_DIR/flink/$FLINK_KAFKA_CONNECTOR/.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

FLINK_VENV="${FLINK_VENV:-$REPO_DIR/.venv-flink}"
FLINK_REQUIREMENTS="$REPO_DIR/flink/requirements.txt"
FLINK_CACHE="$TP_CACHE_DIR/flink/$FLINK_KAFKA_CONNECTOR"
CONNECTOR_JAR="$FLINK_CACHE/flink-sql-connector-kafka-$FLINK_KAFKA_CONNECTOR.jar"
VENV_STAMP="$FLINK_VENV/.tp-requirements"

# apache-flink $FLINK_VERSION ships wheels for CPython 3.9 to 3.12.
find_python() {
  local c
  for c in "${FLINK_PYTHON_BIN:-}" python3.11 python3.12 python3.10 python3; do
    [[ -n "$c" ]] && command -v "$c" >/dev/null || continue
    if "$c" -c 'import sys; sys.exit(0 if (3, 9) <= sys.version_info[:2] <= (3, 12) else 1)'; then
      command -v "$c"; return 0
    fi
  done
  say "flink: PyFlink $FLINK_VERSION needs CPython 3.9-3.12; none found (set FLINK_PYTHON_BIN)"
  return 1
}

check_pins() {
  if ! grep -qx "apache-flink==$FLINK_VERSION" "$FLINK_REQUIREMENTS"; then
    say "flink: flink/requirements.txt does not pin apache-flink==$FLINK_VERSION (stack/versions.env); fix one of them"
    exit 1
  fi
}

requirements_stamp() { { sha256sum "$FLINK_REQUIREMENTS" | cut -d' ' -f1; echo "$FLINK_VERSION"; } | tr '\n' ' '; }

venv_ok() {
  [[ -x "$FLINK_VENV/bin/python" && -f "$VENV_STAMP" && "$(cat "$VENV_STAMP")" == "$(requirements_stamp)" ]] &&
    "$FLINK_VENV/bin/python" -c 'import pyflink' 2>/dev/null
}

setup_venv() {
  check_pins
  if venv_ok; then
    say "flink: PyFlink $FLINK_VERSION ready in $FLINK_VENV"
    return 0
  fi
  command -v java >/dev/null || bash "$STACK_DIR/system-packages.sh" java
  local py; py="$(find_python)"
  local started=$SECONDS
  if [[ ! -x "$FLINK_VENV/bin/python" ]]; then
    say "flink: creating $FLINK_VENV with $py ($("$py" -V 2>&1))"
    "$py" -m venv "$FLINK_VENV"
  fi
  say "flink: installing flink/requirements.txt (apache-flink $FLINK_VERSION with its runtime jars, ~400 MB on a cold pip cache)"
  "$FLINK_VENV/bin/python" -m pip install --disable-pip-version-check --progress-bar off -q -r "$FLINK_REQUIREMENTS" >&2
  "$FLINK_VENV/bin/python" -c 'import pyflink.version as v; print(v.__version__)' >/dev/null
  requirements_stamp >"$VENV_STAMP"
  say "flink: PyFlink $FLINK_VERSION installed in $FLINK_VENV after $((SECONDS - started))s"
}

setup_jar() {
  if [[ -s "$CONNECTOR_JAR" ]] && unzip -tqq "$CONNECTOR_JAR" >/dev/null 2>&1; then
    say "flink: connector jar cached: $CONNECTOR_JAR"
    return 0
  fi
  command -v mvn >/dev/null || bash "$STACK_DIR/system-packages.sh" java maven
  mkdir -p "$FLINK_CACHE"
  exec 8>"$FLINK_CACHE/.fetch.lock"
  flock 8
  if [[ -s "$CONNECTOR_JAR" ]]; then flock -u 8; return 0; fi
  say "flink: fetching org.apache.flink:flink-sql-connector-kafka:$FLINK_KAFKA_CONNECTOR from Maven Central"
  local work; work="$(mktemp -d "$FLINK_CACHE/.fetch.XXXXXX")"
  if ! mvn -B -ntp -q "org.apache.maven.plugins:maven-dependency-plugin:$MAVEN_DEPENDENCY_PLUGIN_VERSION:copy" \
      -Dartifact="org.apache.flink:flink-sql-connector-kafka:$FLINK_KAFKA_CONNECTOR" \
      -DoutputDirectory="$work" >"$work/mvn.log" 2>&1; then
    say "flink: mvn failed; last lines of its output:"
    tail -n 30 "$work/mvn.log" >&2
    exit 1
  fi
  mv "$work/flink-sql-connector-kafka-$FLINK_KAFKA_CONNECTOR.jar" "$CONNECTOR_JAR"
  rm -rf "$work"
  flock -u 8
  say "flink: connector jar ($(du -h "$CONNECTOR_JAR" | cut -f1)) cached at $CONNECTOR_JAR"
}

env_lines() {
  echo "FLINK_PYTHON=$FLINK_VENV/bin/python"
  echo "FLINK_KAFKA_CONNECTOR_JAR=$CONNECTOR_JAR"
  echo "FLINK_JOB_FILE=$REPO_DIR/flink/analytics_job.py"
}

case "${1:-}" in
  setup) setup_jar; setup_venv; env_lines ;;
  env)
    venv_ok && [[ -s "$CONNECTOR_JAR" ]] || { say "flink: not set up; run stack/flink.sh setup"; exit 3; }
    env_lines ;;
  status)
    if venv_ok; then echo "flink: PyFlink $FLINK_VERSION in $FLINK_VENV"; else echo "flink: venv missing or stale"; fi
    if [[ -s "$CONNECTOR_JAR" ]]; then echo "flink: connector $CONNECTOR_JAR"; else echo "flink: connector jar missing"; fi
    venv_ok && [[ -s "$CONNECTOR_JAR" ]] || exit 3 ;;
  *) echo "usage: $0 setup|env|status" >&2; exit 2 ;;
esac
