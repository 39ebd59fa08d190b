#!/usr/bin/env bash
# make setup: install everything cdc-spec needs on Debian 12, idempotently, printing each step.
#   1. Debian packages: PostgreSQL (+ wal2json), MariaDB server, Prometheus (never started as a
#      system service: the stack starts its own, on 127.0.0.1)
#   2. Kafka, Kafka Connect and Debezium jars from Maven Central -> runtime/dist/
#   3. a virtualenv (.venv) with cdc-spec installed editable, with dev extras
#   4. the Allure 3 report CLI from npm -> node_modules/
#   5. the docker backend (skip with CDC_SETUP_DOCKER=0): a Docker engine, the debian:bookworm-slim
#      base image and Compose v2 (runtime/engine.sh setup), then the cdc-spec images
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
APT_PACKAGES=(postgresql postgresql-15-wal2json mariadb-server chromium prometheus)

step() { printf '\n==> %s\n' "$*"; }
die() { printf 'setup: %s\n' "$*" >&2; exit 1; }
need() { command -v "$1" >/dev/null 2>&1 || die "$2"; }

step "checking prerequisites"
need "$PYTHON" "no $PYTHON: install Python 3.11+ (apt-get install python3 python3-venv)"
need java "no java: install Java 17+ (apt-get install openjdk-17-jdk-headless)"
need mvn "no mvn: install Maven (apt-get install maven)"
need npm "no npm: install Node.js 18+ with npm (apt-get install nodejs npm)"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || die "Python 3.11+ is needed, $PYTHON is $("$PYTHON" -V 2>&1)"
java_major=$(java -XshowSettings:properties -version 2>&1 | awk -F'= ' '/java.specification.version/ {print $2}')
[ "${java_major%%.*}" -ge 17 ] 2>/dev/null || die "Java 17+ is needed (Kafka 4, Debezium 3), found ${java_major:-unknown}"
echo "python $("$PYTHON" -V 2>&1 | cut -d' ' -f2), java $java_major, $(mvn -v 2>/dev/null | head -1 | cut -d' ' -f1-3), node $(node -v)"

step "Debian packages: ${APT_PACKAGES[*]}"
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "already installed"
else
  [ "$(id -u)" -eq 0 ] || die "missing Debian packages ${missing[*]}: run 'sudo apt-get install ${missing[*]}' or make setup as root"
  export DEBIAN_FRONTEND=noninteractive
  # no package may start its system service (a Prometheus on 0.0.0.0:9090, a cluster on 5432):
  # policy-rc.d exit 101 tells invoke-rc.d so, for this install only, unless the machine has one
  policy=/usr/sbin/policy-rc.d
  own_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod 755 "$policy" && own_policy=1
    trap 'rm -f "$policy"' EXIT
  fi
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
  [ "$own_policy" = 0 ] || { rm -f "$policy"; trap - EXIT; }
fi

step "Kafka, Kafka Connect and Debezium jars (Maven Central -> runtime/dist)"
mvn -B -q -Dstyle.color=never -f runtime/pom.xml package
for d in broker connect agents plugins/debezium-connector-postgres plugins/debezium-connector-mariadb; do
  [ -d "runtime/dist/$d" ] || die "runtime/dist/$d missing after mvn package"
done
echo "broker: $(ls runtime/dist/broker | wc -l) jars, connect: $(ls runtime/dist/connect | wc -l) jars, plugins: $(ls runtime/dist/plugins | tr '\n' ' ')"

step "Python virtualenv .venv (cdc-spec editable, dev extras)"
stamp=.venv/.cdc-spec-installed
if [ -f "$stamp" ] && [ "$stamp" -nt pyproject.toml ]; then
  echo "up to date"
else
  [ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[dev]'
  touch "$stamp"
  echo "installed: $(.venv/bin/python -m pip list 2>/dev/null | grep -ciE 'pytest|allure|confluent|psycopg') key packages"
fi

step "Allure 3 report CLI (npm -> node_modules)"
if [ -d node_modules/allure ] && [ node_modules/.package-lock.json -nt package-lock.json ]; then
  echo "up to date"
else
  npm ci --no-audit --no-fund --loglevel=error
fi
echo "allure $(node_modules/.bin/allure --version 2>/dev/null || echo '?')"

if [ "${CDC_SETUP_DOCKER:-1}" = 0 ]; then
  step "docker backend (engine, base image, Compose v2, images): skipped (CDC_SETUP_DOCKER=0)"
else
  bash runtime/engine.sh setup
  step "cdc-spec images (docker build, reused while their inputs are unchanged)"
  .venv/bin/python -m pytest_cdc.stack.docker.images build
fi

step "setup done"
