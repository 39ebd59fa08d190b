#!/bin/bash
# cdc-spec/postgres entrypoint: on first start initdb (SCRAM superuser `postgres`), pg_hba
# (TCP from 127.0.0.1 only, scram-sha-256) and the role `cdc_replication`; then the server,
# with the settings of pytest_cdc/stack/native/postgres.py (plus wal2json in
# output_plugin_libraries where the server has that setting: 15.20 and later).
#   cdc-postgres                 start the server (PGPORT, POSTGRES_PASSWORD, CDC_REPLICATION_PASSWORD)
#   cdc-postgres --print-config  print the server settings (one key=value a line) and exit
#   cdc-postgres --print-hba     print pg_hba.conf and exit
set -euo pipefail
PGPORT=${PGPORT:-5432}
PGDATA=${PGDATA:-/var/lib/postgresql/data}

settings() {
  cat <<SETTINGS
listen_addresses=127.0.0.1
port=$PGPORT
unix_socket_directories=/var/run/postgresql
password_encryption=scram-sha-256
wal_level=logical
max_replication_slots=20
max_wal_senders=20
max_connections=200
fsync=off
full_page_writes=off
shared_buffers=128MB
log_min_messages=warning
SETTINGS
}

hba() {
  printf '%s\n' \
    "# written by cdc-spec: TCP from 127.0.0.1 only, SCRAM passwords, no trust" \
    "host all all 127.0.0.1/32 scram-sha-256"
}

# PostgreSQL 15.20+ lets REPLICATION roles use only the output plugins listed in a setting
# (not grep -q: with pipefail, its early exit would fail the pipeline)
plugin_settings() {
  if postgres --describe-config 2>/dev/null | grep '^output_plugin_libraries' >/dev/null; then
    echo "output_plugin_libraries=pgoutput,test_decoding,wal2json"
  fi
}

die() {
  echo "cdc-spec/postgres: $*" >&2
  exit 1
}

init_cluster() {
  [ -n "${POSTGRES_PASSWORD:-}" ] || die "POSTGRES_PASSWORD is not set (the superuser's password)"
  [ -n "${CDC_REPLICATION_PASSWORD:-}" ] \
    || die "CDC_REPLICATION_PASSWORD is not set (the password of the role cdc_replication)"
  local pwfile
  pwfile=$(mktemp)
  printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
  initdb -D "$PGDATA" -U postgres --auth=scram-sha-256 --pwfile="$pwfile" \
    -E UTF8 --locale=C --no-sync >/dev/null
  rm -f "$pwfile"
  hba >"$PGDATA/pg_hba.conf"
  local password=${CDC_REPLICATION_PASSWORD//\'/\'\'}
  echo "CREATE ROLE cdc_replication LOGIN REPLICATION NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD '$password'" \
    | postgres --single -D "$PGDATA" postgres >/dev/null
  echo "cdc-spec/postgres: cluster initialised in $PGDATA"
}

case "${1:-}" in
  --print-config)
    settings
    exit 0
    ;;
  --print-hba)
    hba
    exit 0
    ;;
esac
[ -s "$PGDATA/PG_VERSION" ] || init_cluster
args=()
while IFS= read -r setting; do
  args+=(-c "$setting")
done < <(settings && plugin_settings)
exec postgres -D "$PGDATA" "${args[@]}"
