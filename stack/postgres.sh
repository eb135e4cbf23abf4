#!/usr/bin/env bash
# A private PostgreSQL cluster for the local stack, on 127.0.0.1:$POSTGRES_PORT (TCP only, no unix
# socket), whatever else runs on the machine. Role `ticket` (password `ticket`, CREATEDB) owns the
# database `ticketdb`; the superuser is `postgres` with password `postgres`. Password auth (scram).
#   stack/postgres.sh start|stop|restart|status|env
# Data and log live in $TP_RUN_DIR/postgres, owned by the `postgres` OS user when run as root
# (the server refuses to run as root). `start` prints the env lines on stdout; progress on stderr.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

PG_USER=ticket PG_PASSWORD=ticket PG_DB=ticketdb
PG_SUPERUSER=postgres PG_SUPERPASSWORD=postgres
PG_START_TIMEOUT="${PG_START_TIMEOUT:-60}"
PG_HOME="$TP_RUN_DIR/postgres"

env_lines() {
  echo "DATABASE_URL=postgresql+psycopg://$PG_USER:$PG_PASSWORD@127.0.0.1:$POSTGRES_PORT/$PG_DB"
  # What pods use (the platform's database Secret): the same server on $HOST_ADDR.
  echo "DATABASE_POD_URL=postgresql+psycopg://$PG_USER:$PG_PASSWORD@$HOST_ADDR:$POSTGRES_PORT/$PG_DB"
  echo "POSTGRES_ADMIN_URL=postgresql://$PG_SUPERUSER:$PG_SUPERPASSWORD@127.0.0.1:$POSTGRES_PORT/postgres"
}

pg_bindir() {
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [[ -x "$d/initdb" && -x "$d/pg_ctl" && -x "$d/postgres" ]] && { echo "$d"; return 0; }
  done
  return 1
}

ensure_installed() {
  if ! PG_BIN="$(pg_bindir)"; then
    bash "$STACK_DIR/system-packages.sh" postgresql
    PG_BIN="$(pg_bindir)" || { say "postgres: no server binaries under /usr/lib/postgresql after install"; exit 1; }
  fi
}

# Runs a command as the OS user that owns the cluster: `postgres` when we are root, else ourselves.
as_owner() {
  if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# The data dir. As root, $TP_RUN_DIR/postgres must be reachable by the `postgres` user; when a
# parent folder is private (a clone under /root, say), the cluster lives under postgres' home
# instead, in a folder named after $TP_RUN_DIR, and $TP_RUN_DIR/postgres/datadir points at it.
resolve_datadir() {
  mkdir -p "$PG_HOME"
  if [[ $(id -u) -eq 0 ]]; then
    id postgres >/dev/null 2>&1 || { say "postgres: no 'postgres' OS user (install the postgresql package)"; exit 1; }
    chown postgres: "$PG_HOME"
    if as_owner test -w "$PG_HOME" -a -x "$PG_HOME"; then
      PG_BASE="$PG_HOME"
    else
      local home; home="$(getent passwd postgres | cut -d: -f6)"
      PG_BASE="$home/tp-stack-$(printf '%s' "$TP_RUN_DIR" | sha256sum | cut -c1-12)"
      mkdir -p "$PG_BASE"; chown postgres: "$PG_BASE"
    fi
  else
    PG_BASE="$PG_HOME"
  fi
  PG_DATA="$PG_BASE/data"
  PG_LOG="$PG_BASE/postgres.log"
  echo "$PG_DATA" >"$PG_HOME/datadir"
}

psql_admin() {
  PGPASSWORD="$PG_SUPERPASSWORD" "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$POSTGRES_PORT" \
    -U "$PG_SUPERUSER" -d postgres "$@"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

is_running() { [[ -f "$PG_DATA/postmaster.pid" ]] && as_owner "$PG_BIN/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1; }

init_cluster() {
  [[ -f "$PG_DATA/PG_VERSION" ]] && return 0
  say "postgres: initdb $PG_DATA ($("$PG_BIN/postgres" --version))"
  local pwfile="$PG_BASE/.pwfile"
  printf '%s\n' "$PG_SUPERPASSWORD" >"$pwfile"
  [[ $(id -u) -eq 0 ]] && chown postgres: "$pwfile"
  chmod 600 "$pwfile"
  if ! as_owner "$PG_BIN/initdb" -D "$PG_DATA" -U "$PG_SUPERUSER" --pwfile="$pwfile" -E UTF8 --no-locale \
      --auth-local=scram-sha-256 --auth-host=scram-sha-256 >"$PG_BASE/initdb.log" 2>&1; then
    rm -f "$pwfile"
    say "postgres: initdb failed:"; tail -n 20 "$PG_BASE/initdb.log" >&2; exit 1
  fi
  rm -f "$pwfile"
  echo "include_if_exists = 'tp-stack.conf'" | as_owner tee -a "$PG_DATA/postgresql.conf" >/dev/null
}

write_config() {
  as_owner tee "$PG_DATA/tp-stack.conf" >/dev/null <<CONF
# Written by stack/postgres.sh on every start; edit the script, not this file.
listen_addresses = '127.0.0.1,$HOST_ADDR'
port = $POSTGRES_PORT
unix_socket_directories = ''
max_connections = 200
shared_buffers = 128MB
log_line_prefix = '%m [%p] %q%u@%d '
log_timezone = 'UTC'
timezone = 'UTC'
CONF
  # Pods connect from the pod range (10.244.0.0/16) to $HOST_ADDR; initdb only allowed loopback.
  local rule="host all all 10.244.0.0/16 scram-sha-256"
  grep -qxF "$rule" "$PG_DATA/pg_hba.conf" || echo "$rule" | as_owner tee -a "$PG_DATA/pg_hba.conf" >/dev/null
}

ensure_role_and_db() {
  psql_admin <<SQL
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$PG_USER') THEN
    CREATE ROLE $PG_USER LOGIN CREATEDB PASSWORD '$PG_PASSWORD';
  END IF;
END \$\$;
SELECT 'CREATE DATABASE $PG_DB OWNER $PG_USER' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$PG_DB')\gexec
SQL
}

start() {
  ensure_installed
  resolve_datadir
  if is_running; then
    say "postgres: already running on 127.0.0.1:$POSTGRES_PORT ($PG_DATA)"
  else
    if port_open "$POSTGRES_PORT"; then say "postgres: port $POSTGRES_PORT is taken by another process; set POSTGRES_PORT"; exit 1; fi
    ensure_host_addr
    init_cluster
    write_config
    say "postgres: starting on 127.0.0.1:$POSTGRES_PORT, log $PG_LOG"
    local started=$SECONDS
    if ! as_owner "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t "$PG_START_TIMEOUT" start >/dev/null 8>&-; then
      say "postgres: did not start; last lines of $PG_LOG:"; tail -n 20 "$PG_LOG" >&2; exit 1
    fi
    say "postgres: ready after $((SECONDS - started))s"
  fi
  ensure_role_and_db
  env_lines
}

stop() {
  ensure_installed
  resolve_datadir
  if ! is_running; then say "postgres: not running"; return 0; fi
  say "postgres: stopping"
  as_owner "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w -t 60 stop >/dev/null
  say "postgres: stopped"
}

status() {
  if ! PG_BIN="$(pg_bindir)"; then echo "postgres: not installed"; return 3; fi
  resolve_datadir
  if is_running; then
    echo "postgres: running on 127.0.0.1:$POSTGRES_PORT, data $PG_DATA"
  else
    echo "postgres: stopped"
    return 3
  fi
}

# start and stop are serialized (a test and a shell may ask at the same time).
lock() { mkdir -p "$TP_RUN_DIR"; exec 8>"$TP_RUN_DIR/.postgres.lock"; flock 8; }

case "${1:-}" in
  start) lock; start ;;
  stop) lock; stop ;;
  restart) lock; stop; start ;;
  status) status ;;
  env) env_lines ;;
  *) echo "usage: $0 start|stop|restart|status|env" >&2; exit 2 ;;
esac
