#!/bin/bash
# cdc-spec/mariadb entrypoint: on first start mariadb-install-db; at every start an init file
# (0600) sets root's password, drops other root and anonymous accounts and (re)creates the
# user `cdc` with its grants; then the server, with the flags of
# pytest_cdc/stack/native/mariadb.py.
#   cdc-mariadb                 start (MARIADB_PORT, MARIADB_ROOT_PASSWORD, MARIADB_CDC_PASSWORD)
#   cdc-mariadb --print-config  print the server flags (one a line) and exit
#   cdc-mariadb --print-accounts  print the init file's SQL (from the two passwords) and exit
set -euo pipefail
MARIADB_PORT=${MARIADB_PORT:-3306}
HOME_DIR=/var/lib/mysql
DATADIR=$HOME_DIR/data
INIT_FILE=$HOME_DIR/accounts.sql
CDC_GRANTS="SELECT, RELOAD, SHOW DATABASES, REPLICATION SLAVE, REPLICATION CLIENT"

flags() {
  printf '%s\n' \
    --no-defaults \
    "--datadir=$DATADIR" \
    "--port=$MARIADB_PORT" \
    --bind-address=127.0.0.1 \
    "--socket=$HOME_DIR/mariadb.sock" \
    "--pid-file=$HOME_DIR/mariadb.pid" \
    "--log-bin=$DATADIR/binlog" \
    --binlog-format=ROW \
    --binlog-row-image=FULL \
    --binlog-row-metadata=FULL \
    --server-id=1 \
    --default-time-zone=+00:00 \
    --skip-name-resolve \
    --innodb-buffer-pool-size=64M \
    --innodb-flush-log-at-trx-commit=2 \
    --sync-binlog=0 \
    "--init-file=$INIT_FILE"
}

die() {
  echo "cdc-spec/mariadb: $*" >&2
  exit 1
}

sql_string() { # $1 quoted for a single-quoted SQL literal
  local value=${1//\\/\\\\}
  printf "'%s'" "${value//\'/\'\'}"
}

accounts_sql() {
  local root cdc host
  root=$(sql_string "$MARIADB_ROOT_PASSWORD")
  cdc=$(sql_string "$MARIADB_CDC_PASSWORD")
  echo "SET sql_log_bin = 0;"
  for host in localhost 127.0.0.1 ::1; do
    echo "ALTER USER IF EXISTS 'root'@'$host' IDENTIFIED BY $root;"
  done
  echo "DELETE FROM mysql.global_priv WHERE User = '' OR (User = 'root' AND Host NOT IN ('localhost', '127.0.0.1', '::1'));"
  echo "FLUSH PRIVILEGES;"
  for host in 127.0.0.1 localhost; do
    echo "CREATE USER IF NOT EXISTS 'cdc'@'$host';"
    echo "ALTER USER 'cdc'@'$host' IDENTIFIED BY $cdc;"
    echo "GRANT $CDC_GRANTS ON *.* TO 'cdc'@'$host';"
  done
}

if [ "${1:-}" = "--print-config" ]; then
  flags
  exit 0
fi
[ -n "${MARIADB_ROOT_PASSWORD:-}" ] || die "MARIADB_ROOT_PASSWORD is not set (root's password)"
[ -n "${MARIADB_CDC_PASSWORD:-}" ] || die "MARIADB_CDC_PASSWORD is not set (the password of user cdc)"
if [ "${1:-}" = "--print-accounts" ]; then
  accounts_sql
  exit 0
fi
if [ ! -d "$DATADIR/mysql" ]; then
  mariadb-install-db --no-defaults "--datadir=$DATADIR" --auth-root-authentication-method=normal \
    --skip-test-db --skip-name-resolve >/dev/null
  echo "cdc-spec/mariadb: data directory initialised in $DATADIR"
fi
(umask 077 && accounts_sql >"$INIT_FILE")
mapfile -t args < <(flags)
exec mariadbd "${args[@]}"
