#!/usr/bin/env bash
# The Docker engine behind the docker backend: part of `make setup`, and `make engine-stop`.
#   engine.sh setup    use the engine that answers; else install docker.io and start dockerd with
#                      host-only networking; seed debian:bookworm-slim when it is missing and cannot
#                      be pulled; build Compose v2 when `docker compose` is missing
#   engine.sh start    only the engine part of setup
#   engine.sh stop     remove cdc-spec containers, then stop the dockerd this script started
#   engine.sh status   one line: answering or not, socket, data root, who started it
# Environment [defaults]: DOCKER_HOST [unix:///var/run/docker.sock], CDC_DOCKER_ROOT
# [/var/lib/cdc-spec/docker], CDC_DOCKER_EXEC_ROOT [/var/run/docker], CDC_DOCKER_PIDFILE
# [/run/cdc-spec-dockerd.pid], CDC_DOCKER_LOG [/var/log/cdc-spec/dockerd.log],
# CDC_DOCKER_START_TIMEOUT [60 s], CDC_DOCKER_STOP_TIMEOUT [60 s], CDC_DOCKER_PULL_TIMEOUT [60 s],
# CDC_COMPOSE_VERSION [v2.29.7].
set -euo pipefail

export DOCKER_HOST=${DOCKER_HOST:-unix:///var/run/docker.sock}
case $DOCKER_HOST in
  unix://*) SOCK=${DOCKER_HOST#unix://} ;;
  *) SOCK= ;;
esac
WHERE=${SOCK:-$DOCKER_HOST}
DATA_ROOT=${CDC_DOCKER_ROOT:-/var/lib/cdc-spec/docker}
EXEC_ROOT=${CDC_DOCKER_EXEC_ROOT:-/var/run/docker}
PIDFILE=${CDC_DOCKER_PIDFILE:-/run/cdc-spec-dockerd.pid}
if [ "$(id -u)" -eq 0 ]; then
  LOG=${CDC_DOCKER_LOG:-/var/log/cdc-spec/dockerd.log}
  PLUGIN_DIR=/usr/local/lib/docker/cli-plugins
else
  LOG=${CDC_DOCKER_LOG:-${XDG_CACHE_HOME:-$HOME/.cache}/cdc-spec/dockerd.log}
  PLUGIN_DIR=$HOME/.docker/cli-plugins
fi
LOG_DIR=$(dirname "$LOG")
START_TIMEOUT=${CDC_DOCKER_START_TIMEOUT:-60}
STOP_TIMEOUT=${CDC_DOCKER_STOP_TIMEOUT:-60}
PULL_TIMEOUT=${CDC_DOCKER_PULL_TIMEOUT:-60}
COMPOSE_VERSION=${CDC_COMPOSE_VERSION:-v2.29.7}
BASE_IMAGE=debian:bookworm-slim
CPU_SHARES=${CDC_DOCKER_CPU_SHARES:-16384}
SESSION_LABEL=org.cdc-spec.session

step() { printf '\n==> %s\n' "$*"; STEP_START=$(date +%s%N); }
# the step's outcome with the time the step took
report() { printf '%s (%s s)\n' "$*" "$(awk -v a="$STEP_START" -v b="$(date +%s%N)" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')"; }
die() { printf 'engine: %s\n' "$*" >&2; exit 1; }
is_root() { [ "$(id -u)" -eq 0 ]; }
# the last lines of a log file on one line
last_lines() { tail -n "${2:-3}" "$1" 2>/dev/null | tr -s '\n\t' '  ' | cut -c1-400; }

# "<server version> <data root>" of the engine on DOCKER_HOST; fails when none answers
engine_info() { timeout 20 docker info --format '{{.ServerVersion}} {{.DockerRootDir}}' 2>/dev/null; }

# true while process $1 exists and is not a zombie
alive() {
  local state
  state=$(awk '/^State:/ { print $2 }' "/proc/$1/status" 2>/dev/null) || return 1
  [ -n "$state" ] && [ "$state" != Z ]
}

# the pid the pidfile names, if that process is a running dockerd
pidfile_dockerd() {
  local pid
  [ -r "$PIDFILE" ] || return 1
  pid=$(tr -dc '0-9' <"$PIDFILE")
  [ -n "$pid" ] && alive "$pid" && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = dockerd ] || return 1
  echo "$pid"
}

# true when dockerd $1 was started to listen on our socket
serves_our_socket() {
  [ -n "$SOCK" ] || return 1
  tr '\0' '\n' <"/proc/$1/cmdline" 2>/dev/null \
    | grep -qFx -e "unix://$SOCK" -e "--host=unix://$SOCK" -e "-H=unix://$SOCK"
}

# the pid of the dockerd this script started on our socket (by its pidfile); fails otherwise
our_dockerd() {
  local pid
  pid=$(pidfile_dockerd) && serves_our_socket "$pid" && echo "$pid"
}

who_started() {
  local pid
  if pid=$(our_dockerd); then echo "started by cdc-spec (pid $pid, $PIDFILE)"; else echo "not started by cdc-spec"; fi
}

# install Debian packages, or one line naming the command when not root
apt_install() {
  is_root || die "missing $*: run 'sudo apt-get install --no-install-recommends $*' (or make setup as root), or skip the docker backend with CDC_SETUP_DOCKER=0"
  echo "installing $* (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "$@" >/dev/null
}

# true when the socket exists but this user may not use it
denied() { [ -n "$SOCK" ] && [ -S "$SOCK" ] && ! [ -w "$SOCK" ]; }

have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }

start_dockerd() {
  local pid deadline info
  if pid=$(our_dockerd); then
    echo "dockerd pid $pid (started by cdc-spec) does not answer yet: waiting for it"
  else
    mkdir -p "$LOG_DIR" "$DATA_ROOT" "$EXEC_ROOT" "$(dirname "$PIDFILE")" "$(dirname "$SOCK")"
    echo "starting dockerd on $SOCK, data root $DATA_ROOT, log $LOG"
    PATH=$PATH:/usr/sbin setsid dockerd --bridge=none --iptables=false --ip-masq=false --ip6tables=false \
      --data-root "$DATA_ROOT" --exec-root "$EXEC_ROOT" --pidfile "$PIDFILE" --host "unix://$SOCK" \
      >>"$LOG" 2>&1 </dev/null &
    pid=$!
  fi
  deadline=$((SECONDS + START_TIMEOUT))
  until info=$(engine_info); do
    alive "$pid" || die "dockerd exited while starting; last lines of $LOG: $(last_lines "$LOG")"
    [ "$SECONDS" -lt "$deadline" ] \
      || die "dockerd (pid $pid) did not answer on $SOCK within ${START_TIMEOUT} s; last lines of $LOG: $(last_lines "$LOG")"
    sleep 0.2
  done
  report "dockerd answers: server ${info%% *}, pid $pid, socket $SOCK, data root ${info#* }, log $LOG"
  share_cpu
}

# Every container sits in one cgroup (/docker) that, when the CPU is contended, weighs as much
# as ONE host process: a whole stack of containers then gets less CPU than the pytest process
# beside it (an Iceberg sink's lag p95 went from 1.3 s to 4.4 s). Give that cgroup the weight of
# 16 host processes; only for the engine cdc-spec started (a user's engine is left as it is).
share_cpu() {
  local v1=/sys/fs/cgroup/cpu/docker v2=/sys/fs/cgroup/docker
  if [ -d /sys/fs/cgroup/cpu ] && mkdir -p "$v1" 2>/dev/null && echo "$CPU_SHARES" >"$v1/cpu.shares" 2>/dev/null; then
    echo "containers' CPU weight: $v1/cpu.shares = $CPU_SHARES (a host process has 1024)"
  elif [ -f /sys/fs/cgroup/cgroup.controllers ] && mkdir -p "$v2" 2>/dev/null \
    && echo $((CPU_SHARES * 100 / 1024)) >"$v2/cpu.weight" 2>/dev/null; then
    echo "containers' CPU weight: $v2/cpu.weight = $((CPU_SHARES * 100 / 1024)) (a host process has 100)"
  else
    echo "containers' CPU weight left as it is (no writable cpu cgroup for /docker): under load they get less CPU than host processes"
  fi
}

setup_engine() {
  local info missing=()
  step "Docker engine ($WHERE)"
  if have docker && info=$(engine_info); then
    report "an engine answers: server ${info%% *}, data root ${info#* }, $(who_started): using it"
    if our_dockerd >/dev/null && is_root; then share_cpu; fi
    return
  fi
  [ -n "$SOCK" ] || die "no engine answers on $DOCKER_HOST: start it, or unset DOCKER_HOST to let setup start one on /var/run/docker.sock"
  denied && die "$SOCK is not open to $(id -un): add the user to its group (sudo usermod -aG $(stat -c %G "$SOCK") $(id -un), then log in again) or run as root"
  { have dockerd && have docker; } || missing+=(docker.io)
  have debootstrap || missing+=(debootstrap)
  [ ${#missing[@]} -eq 0 ] || apt_install "${missing[@]}"
  if info=$(engine_info); then # the docker.io package's own service may have started one
    report "an engine answers now: server ${info%% *}, data root ${info#* }, $(who_started): using it"
    return
  fi
  is_root || die "no engine answers on $SOCK and starting one needs root: run 'sudo runtime/engine.sh setup' (or make setup as root), or skip the docker backend with CDC_SETUP_DOCKER=0"
  start_dockerd
}

# every mirror URI in apt's sources: deb822 files, then one-line files
apt_uris() {
  { cat /etc/apt/sources.list.d/*.sources 2>/dev/null || true; } \
    | awk '/^URIs:/ { for (i = 2; i <= NF; i++) print $i }'
  { cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true; } \
    | awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z+]+:\/\//) { print $i; break } }'
}

# the rootfs cleanup: unmount what debootstrap left mounted, then remove it (never crossing mounts)
remove_rootfs() {
  [ -n "${ROOTFS:-}" ] && [ -d "$ROOTFS" ] || return 0
  awk -v root="$ROOTFS/" 'index($2, root) == 1 { print $2 }' /proc/mounts | sort -r | xargs -r umount -l
  rm -rf --one-file-system "$ROOTFS"
}

seed_base_image() {
  local mirror security dblog t_boot size
  mirror=$(apt_uris | awk '/\/debian\/?$/ && !found { print; found = 1 }')
  mirror=${mirror:-http://deb.debian.org/debian}
  security=$(apt_uris | awk '/\/debian-security\/?$/ && !found { print; found = 1 }')
  security=${security:-http://deb.debian.org/debian-security}
  is_root || die "$BASE_IMAGE is missing, cannot be pulled, and seeding it with debootstrap needs root: run 'sudo runtime/engine.sh setup', or 'docker pull $BASE_IMAGE' where a registry answers"
  have debootstrap || apt_install debootstrap
  mkdir -p "$LOG_DIR"
  dblog=$LOG_DIR/debootstrap.log
  ROOTFS=$(mktemp -d /var/tmp/cdc-spec-rootfs.XXXXXX)
  trap remove_rootfs EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  echo "seeding it: debootstrap --variant=minbase bookworm from $mirror (log $dblog)"
  PATH=$PATH:/usr/sbin debootstrap --variant=minbase bookworm "$ROOTFS" "$mirror" >"$dblog" 2>&1 \
    || die "debootstrap failed; last lines of $dblog: $(last_lines "$dblog")"
  t_boot=$(awk -v a="$STEP_START" -v b="$(date +%s%N)" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')
  # apt sources and an empty apt cache like the official image, so `apt-get install pkg=VERSION`
  # reaches the same updates and security versions as the host
  rm -f "$ROOTFS/etc/apt/sources.list"
  cat >"$ROOTFS/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/*.bin "$ROOTFS"/var/cache/apt/archives/*.deb
  tar -C "$ROOTFS" -c . | docker import -c 'CMD ["bash"]' \
    -m "cdc-spec: debootstrap --variant=minbase bookworm $mirror" - "$BASE_IMAGE" >/dev/null \
    || die "docker import of the debootstrap rootfs as $BASE_IMAGE failed: see 'docker info' and $LOG"
  remove_rootfs
  trap - EXIT INT TERM
  size=$(docker image inspect "$BASE_IMAGE" --format '{{.Size}}' | awk '{ printf "%d MB", $1 / 1e6 }')
  report "seeded $BASE_IMAGE ($size): debootstrap ${t_boot} s, then docker import"
}

setup_base_image() {
  local pulled
  step "base image $BASE_IMAGE"
  if docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    report "present: $(docker image inspect "$BASE_IMAGE" --format '{{slice .Id 7 19}}, created {{.Created}}')"
    return
  fi
  if our_dockerd >/dev/null; then
    # the engine cdc-spec started has no registry: seed without trying one (loopback only)
    echo "missing; the engine cdc-spec started pulls from no registry: seeding it"
    seed_base_image
    return
  fi
  if pulled=$(timeout "$PULL_TIMEOUT" docker pull -q "$BASE_IMAGE" 2>&1); then
    report "pulled from the registry"
    return
  fi
  echo "missing, and it cannot be pulled: $(tail -n 1 <<<"${pulled:-no answer within $PULL_TIMEOUT s}" | cut -c1-200)"
  seed_base_image
}

setup_compose() {
  local version gobin built
  step "Docker Compose v2 (docker compose)"
  if version=$(docker compose version --short 2>/dev/null); then
    report "present: $version"
    return
  fi
  have go || die "docker compose is missing and there is no go to build it: install Go 1.21+ (apt-get install golang-go; on Debian 12 from bookworm-backports) or Docker's docker-compose-plugin, or skip the docker backend with CDC_SETUP_DOCKER=0"
  version=$(go env GOVERSION)
  [ "$(printf '%s\n' go1.21 "$version" | sort -V | head -1)" = go1.21 ] \
    || die "$version is too old to build Compose $COMPOSE_VERSION (needs Go 1.21+): install a newer Go (bookworm-backports or go.dev/dl), or Docker's docker-compose-plugin"
  gobin=$(go env GOBIN)
  built=${gobin:-$(go env GOPATH)/bin}/cmd
  if [ -x "$built" ] && go version -m "$built" | grep -qE "^\s+mod\s+github.com/docker/compose/v2\s+$COMPOSE_VERSION\s"; then
    echo "already built: $built (Compose $COMPOSE_VERSION)"
  else
    mkdir -p "$LOG_DIR"
    echo "building Compose $COMPOSE_VERSION from the Go module proxy (about 2 min on 2 cores; log $LOG_DIR/compose-build.log)"
    GOFLAGS=-mod=mod go install -ldflags "-w -X github.com/docker/compose/v2/internal.Version=$COMPOSE_VERSION" \
      "github.com/docker/compose/v2/cmd@$COMPOSE_VERSION" >"$LOG_DIR/compose-build.log" 2>&1 \
      || die "building Compose failed; last lines of $LOG_DIR/compose-build.log: $(last_lines "$LOG_DIR/compose-build.log")"
  fi
  install -D -m 0755 "$built" "$PLUGIN_DIR/docker-compose"
  version=$(docker compose version --short 2>/dev/null) \
    || die "installed $PLUGIN_DIR/docker-compose but 'docker compose version' fails: check that binary"
  report "installed $PLUGIN_DIR/docker-compose: $version"
}

cmd_status() {
  local info note=
  if have docker && info=$(engine_info); then
    echo "engine: answering on $WHERE (server ${info%% *}), data root ${info#* }, $(who_started)"
  else
    if denied; then note=" (not open to $(id -un))"; fi
    echo "engine: not answering on $WHERE$note, data root $DATA_ROOT, $(who_started)"
    return 1
  fi
}

cmd_stop() {
  local pid ids deadline
  if ! pid=$(pidfile_dockerd); then
    if [ -e "$PIDFILE" ]; then
      pid=$(tr -dc '0-9' <"$PIDFILE" || true)
      if rm -f "$PIDFILE" 2>/dev/null; then pid="$pid (stale pidfile removed)"; fi
      echo "no engine started by cdc-spec: $PIDFILE names no running dockerd, pid $pid"
    else
      echo "no engine started by cdc-spec (no $PIDFILE)"
    fi
    return 0
  fi
  serves_our_socket "$pid" \
    || die "the dockerd of $PIDFILE (pid $pid) does not listen on $WHERE: set DOCKER_HOST to its socket to stop it"
  kill -0 "$pid" 2>/dev/null || die "dockerd (pid $pid) belongs to $(stat -c %U "/proc/$pid"): run 'sudo make engine-stop'"
  if ids=$(timeout 20 docker ps -aq --filter "label=$SESSION_LABEL" 2>/dev/null) && [ -n "$ids" ]; then
    # shellcheck disable=SC2086 # one id per word
    docker rm -f $ids >/dev/null
    echo "removed $(wc -w <<<"$ids") cdc-spec container(s)"
  fi
  STEP_START=$(date +%s%N)
  kill -TERM "$pid"
  deadline=$((SECONDS + STOP_TIMEOUT))
  while alive "$pid"; do
    [ "$SECONDS" -lt "$deadline" ] \
      || die "dockerd (pid $pid) still runs ${STOP_TIMEOUT} s after SIGTERM; see $LOG, or 'kill -KILL $pid'"
    sleep 0.2
  done
  rm -f "$PIDFILE"
  report "stopped dockerd (pid $pid) on $WHERE"
}

case "${1:-}" in
  setup)
    setup_engine
    setup_base_image
    setup_compose
    ;;
  start) setup_engine ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  *)
    echo "usage: engine.sh setup|start|stop|status (the Docker engine of the docker backend)" >&2
    exit 2
    ;;
esac
