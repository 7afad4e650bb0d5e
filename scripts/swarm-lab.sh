#!/usr/bin/env bash
# A multi-engine Docker Swarm on one machine: N containers `erlmcp-lab-1…N` on the bridge network
# `erlmcp-lab`, each running its own dockerd from the host's own binaries; lab-1 is the swarm
# manager, the others join as workers; node i carries the label zone=z<i>. The host engine only
# runs the lab containers: its own swarm state is never touched.
#
#   scripts/swarm-lab.sh up N [IMAGE…]   start the lab, load IMAGE… (default: every erlmcp-node:*
#                                        image on the host; none with a registry) into every
#                                        inner engine
#   scripts/swarm-lab.sh registry        the address every lab engine trusts as a plain-HTTP
#                                        registry (with ERLMCP_LAB_REGISTRY_PORT at `up`)
#   scripts/swarm-lab.sh load [IMAGE…]   copy IMAGE… (default: every erlmcp-* image) from the
#                                        manager's engine to the others (what `erlmcp-gen apply`
#                                        built there; it stops until every engine has them)
#   scripts/swarm-lab.sh check           exit 0 when this machine can run the lab's engines
#   scripts/swarm-lab.sh status          lab containers and the manager's view of the swarm
#   scripts/swarm-lab.sh lose I          SIGKILL lab engine I, as a host lost without warning
#   scripts/swarm-lab.sh down            remove containers, network, volumes, image and socket dirs
#
# Then: DOCKER_HOST=unix:///tmp/erlmcp-lab/1/docker.sock docker node ls
#
# ERLMCP_LAB_REGISTRY_PORT=P at `up`: every engine trusts <the lab bridge's gateway>:P as a
# plain-HTTP registry (`--insecure-registry`); run one there on the host (Debian's
# docker-registry, `http.addr: <gateway>:P`) and set `[swarm] registry = "<gateway>:P/lab"`, and
# `erlmcp-gen apply` pushes the images there from the manager and each engine pulls them, instead
# of `load`. `scripts/swarm-lab.sh registry` prints the address.
#
# Why the lab looks like this:
# - No registry is reachable, so the lab image is a scratch rootfs of a few symlinks and /etc
#   files, and the host's /usr is bind-mounted read-only: dockerd, containerd, runc, iptables and
#   everything they dlopen (xtables extensions, NSS modules) come with it, which copying the
#   files `ldd` lists would miss.
# - `--privileged` cannot start here: it asks runc for every capability, and this machine's
#   bounding set lacks CAP_SYS_RESOURCE ("unable to apply caps: operation not permitted"). So
#   each engine gets every capability but that one, no seccomp/AppArmor, unmasked /proc and /sys,
#   all devices, a private cgroup namespace, and remounts /sys and its cgroup hierarchies
#   read-write itself, which is what --privileged would have given it.
# - /var/lib/docker of each inner engine is a named volume (the host's ext4, not the host
#   engine's fuse-overlayfs), so overlay2 works nested; fuse-overlayfs and vfs are the fallbacks.
# - Overlay networks (VXLAN) work across the engines. This kernel has no IPVS (no ip_vs, no
#   /lib/modules to load it from), so the swarm's VIP load balancing and the ingress routing mesh
#   do not ("Could not get ipvs family information from the kernel"): services here use
#   --endpoint-mode dnsrr and --publish mode=host.
set -euo pipefail

lab_dir="${ERLMCP_LAB_DIR:-/tmp/erlmcp-lab}"
lab_image="erlmcp-swarm-lab:local"
network="erlmcp-lab"
label="erlmcp.lab=1"
wait_secs="${ERLMCP_LAB_WAIT:-60}"

die() {
  echo "swarm-lab: error: $*" >&2
  exit 1
}

say() {
  echo "swarm-lab: $*" >&2
}

usage() {
  sed -n '7,18p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

# Runs the docker CLI against inner engine $1.
inner() {
  local i="$1"
  shift
  DOCKER_HOST="unix://$lab_dir/$i/docker.sock" timeout 30 docker "$@"
}

# Polls "$@" once a second for up to $wait_secs seconds; false when it never succeeds.
eventually() {
  local deadline=$((SECONDS + wait_secs))
  while [ "$SECONDS" -lt "$deadline" ]; do
    if "$@" >/dev/null 2>&1; then
      return 0
    fi
    sleep 1
  done
  return 1
}

running() {
  [ "$(docker inspect -f '{{.State.Running}}' "$1" 2>/dev/null)" = true ]
}

# True when inner engine $1 answers, false when it does not (yet); exits 3 when its container
# stopped, so a failing storage driver is noticed at once rather than after the whole wait.
engine_answers() {
  inner "$1" version >/dev/null 2>&1 && return 0
  running "erlmcp-lab-$1" || return 3
  return 1
}

wait_engine() {
  local i="$1" deadline=$((SECONDS + wait_secs)) rc
  while [ "$SECONDS" -lt "$deadline" ]; do
    rc=0
    engine_answers "$i" || rc=$?
    case "$rc" in
      0) return 0 ;;
      3) return 3 ;;
    esac
    sleep 1
  done
  return 1
}

build_image() {
  local tmp root
  tmp="$(mktemp -d)"
  root="$tmp/rootfs"
  mkdir -p "$root"/{usr,etc/alternatives,var/lib/docker,run,tmp,proc,sys,dev,lab/run}
  for dir in bin lib lib64 sbin; do
    ln -s "usr/$dir" "$root/$dir"
  done
  # Debian picks iptables-nft or -legacy through /etc/alternatives; the lab uses the host's pick.
  local alt
  for alt in iptables iptables-restore iptables-save ip6tables ip6tables-restore ip6tables-save; do
    if [ -e "/etc/alternatives/$alt" ]; then
      cp -P "/etc/alternatives/$alt" "$root/etc/alternatives/"
    fi
  done
  printf 'root:x:0:0:root:/root:/bin/sh\n' >"$root/etc/passwd"
  printf 'root:x:0:\ndocker:x:999:\n' >"$root/etc/group"
  printf 'passwd: files\ngroup: files\nhosts: files dns\n' >"$root/etc/nsswitch.conf"
  cat >"$root/lab/entrypoint.sh" <<'EOF'
#!/bin/sh
# PID 1 of a lab engine: make /sys and the cgroup hierarchies writable (as --privileged would),
# then become dockerd, its socket in /lab/run (bind-mounted from the host).
set -eu
mount -o remount,rw /sys
for hierarchy in /sys/fs/cgroup/*; do
  if ! mount -o remount,bind,rw "$hierarchy"; then
    echo "lab: cannot make $hierarchy writable" >&2
    [ -z "${LAB_CHECK:-}" ] || exit 1
  fi
done
[ -z "${LAB_CHECK:-}" ] || exit 0
exec dockerd --host=unix:///lab/run/docker.sock --data-root=/var/lib/docker \
  --storage-driver="$LAB_STORAGE_DRIVER" --pidfile=/run/docker.pid \
  ${LAB_INSECURE_REGISTRY:+--insecure-registry="$LAB_INSECURE_REGISTRY"}
EOF
  tar -C "$root" -c . | docker import \
    -c 'ENTRYPOINT ["/bin/sh", "/lab/entrypoint.sh"]' -c "LABEL $label" \
    -m "erlmcp swarm lab: the host's /usr is bind-mounted at run time" - "$lab_image" >/dev/null
  rm -rf "$tmp"
}

# What --privileged would give, minus CAP_SYS_RESOURCE (see the top of this file).
engine_flags=(
  --cap-add ALL --cap-drop SYS_RESOURCE
  --security-opt seccomp=unconfined --security-opt apparmor=unconfined
  --security-opt systempaths=unconfined --device-cgroup-rule 'a *:* rwm'
  --cgroupns private
  --tmpfs /run --tmpfs /tmp
  -v /usr:/usr:ro
)
# fuse-overlayfs (the second storage driver tried) needs the device node itself.
if [ -e /dev/fuse ]; then
  engine_flags+=(--device /dev/fuse)
fi

# The registry every engine trusts (host:port), empty without ERLMCP_LAB_REGISTRY_PORT.
lab_registry=""

# Starts lab engine $1 with storage driver $2.
start_engine() {
  local i="$1" driver="$2"
  mkdir -p "$lab_dir/$i"
  docker run -d --name "erlmcp-lab-$i" --hostname "erlmcp-lab-$i" --label "$label" \
    --network "$network" "${engine_flags[@]}" \
    --mount "type=volume,source=erlmcp-lab-$i,target=/var/lib/docker,volume-label=$label" \
    -v "$lab_dir/$i:/lab/run" \
    -e "LAB_STORAGE_DRIVER=$driver" -e "LAB_INSECURE_REGISTRY=$lab_registry" \
    "$lab_image" >/dev/null
}

# The lab bridge's gateway: the host's address as the lab engines reach it.
gateway_ip() {
  docker network inspect -f '{{(index .IPAM.Config 0).Gateway}}' "$network"
}

remove_engine() {
  docker rm -f "erlmcp-lab-$1" >/dev/null 2>&1 || true
  docker volume rm "erlmcp-lab-$1" >/dev/null 2>&1 || true
}

# Starts lab-1 with the first storage driver that works nested here and prints its name.
first_engine() {
  local drivers driver rc
  drivers="${ERLMCP_LAB_STORAGE_DRIVER:-overlay2 fuse-overlayfs vfs}"
  for driver in $drivers; do
    start_engine 1 "$driver"
    rc=0
    wait_engine 1 || rc=$?
    if [ "$rc" = 0 ]; then
      printf '%s\n' "$driver"
      return 0
    fi
    say "storage driver $driver does not work nested here; its engine said:"
    docker logs --tail 5 erlmcp-lab-1 2>&1 | sed 's/^/  /' >&2
    remove_engine 1
  done
  die "no storage driver in '$drivers' starts a nested dockerd (run 'scripts/swarm-lab.sh down')"
}

bridge_ip() {
  docker inspect -f "{{(index .NetworkSettings.Networks \"$network\").IPAddress}}" "erlmcp-lab-$1"
}

ready_nodes() {
  inner 1 node ls --format '{{.Status}}' | grep -c '^Ready$'
}

all_ready() {
  [ "$(ready_nodes)" = "$1" ]
}

cmd_up() {
  local n="${1:-}"
  [[ "$n" =~ ^[1-9]$ ]] || die "up takes the number of engines, 1 to 9 (got '${n}')"
  shift
  timeout 10 docker info >/dev/null 2>&1 || die "no Docker engine answers (docker info)"
  if [ -n "$(docker ps -aq --filter "label=$label")" ]; then
    die "a lab is already up: 'scripts/swarm-lab.sh status', or 'scripts/swarm-lab.sh down' first"
  fi
  local port="${ERLMCP_LAB_REGISTRY_PORT:-}"
  if [ -n "$port" ] && ! [[ "$port" =~ ^[1-9][0-9]{0,4}$ && "$port" -le 65535 ]]; then
    die "ERLMCP_LAB_REGISTRY_PORT must be a port number (got '$port')"
  fi
  local images=("$@")
  # With a registry the engines pull what `apply` pushes: nothing is loaded unless named.
  if [ ${#images[@]} -eq 0 ] && [ -z "$port" ]; then
    mapfile -t images < <(docker images --format '{{.Repository}}:{{.Tag}}' erlmcp-node)
  fi
  for image in "${images[@]}"; do
    docker image inspect "$image" >/dev/null 2>&1 || die "no image $image on the host engine"
  done

  build_image
  docker network create --label "$label" "$network" >/dev/null
  if [ -n "$port" ]; then
    lab_registry="$(gateway_ip):$port"
    mkdir -p "$lab_dir"
    printf '%s\n' "$lab_registry" >"$lab_dir/registry"
  fi
  say "starting $n engines"
  local driver i rc
  driver="$(first_engine)"
  for ((i = 2; i <= n; i++)); do
    start_engine "$i" "$driver"
  done
  for ((i = 2; i <= n; i++)); do
    rc=0
    wait_engine "$i" || rc=$?
    if [ "$rc" != 0 ]; then
      docker logs --tail 5 "erlmcp-lab-$i" >&2 || true
      die "engine erlmcp-lab-$i did not answer within ${wait_secs}s"
    fi
  done

  # A short heartbeat so that a lost engine is noticed in seconds, not the default ~15 s.
  local manager token
  manager="$(bridge_ip 1)"
  inner 1 swarm init --advertise-addr "$manager" --dispatcher-heartbeat 2s >/dev/null
  token="$(inner 1 swarm join-token -q worker)"
  for ((i = 2; i <= n; i++)); do
    inner "$i" swarm join --token "$token" --advertise-addr "$(bridge_ip "$i")" "$manager:2377" >/dev/null \
      || die "erlmcp-lab-$i could not join the swarm at $manager:2377"
  done
  for ((i = 1; i <= n; i++)); do
    inner 1 node update --label-add "zone=z$i" "$(inner "$i" info -f '{{.Swarm.NodeID}}')" >/dev/null
  done
  eventually all_ready "$n" || die "only $(ready_nodes) of $n swarm nodes Ready after ${wait_secs}s"

  if [ ${#images[@]} -gt 0 ]; then
    local archive
    archive="$(mktemp)"
    docker save -o "$archive" "${images[@]}"
    for ((i = 1; i <= n; i++)); do
      inner "$i" load -q -i "$archive" >/dev/null || die "loading ${images[*]} into erlmcp-lab-$i failed"
    done
    rm -f "$archive"
    say "loaded ${images[*]} into every engine"
  elif [ -n "$lab_registry" ]; then
    say "no image loaded: every engine trusts the plain-HTTP registry $lab_registry; run one there and set [swarm] registry = \"$lab_registry/lab\""
  else
    say "no erlmcp-node image on the host to load (pass image names after N)"
  fi
  say "swarm of $n engines up (storage driver $driver); manager:"
  echo "export DOCKER_HOST=unix://$lab_dir/1/docker.sock"
}

cmd_load() {
  [ -S "$lab_dir/1/docker.sock" ] || die "no lab running (scripts/swarm-lab.sh up N)"
  local images=("$@") i n archive
  if [ ${#images[@]} -eq 0 ]; then
    mapfile -t images < <(inner 1 images --format '{{.Repository}}:{{.Tag}}' | grep '^erlmcp-' || true)
  fi
  [ ${#images[@]} -gt 0 ] || die "the manager's engine has no erlmcp-* image to copy"
  n="$(find "$lab_dir" -mindepth 1 -maxdepth 1 -type d | wc -l)"
  archive="$(mktemp)"
  inner 1 save -o "$archive" "${images[@]}" || die "saving ${images[*]} on erlmcp-lab-1 failed"
  for ((i = 2; i <= n; i++)); do
    inner "$i" load -q -i "$archive" >/dev/null || die "loading ${images[*]} into erlmcp-lab-$i failed"
  done
  rm -f "$archive"
  say "copied ${images[*]} from erlmcp-lab-1 to the other $((n - 1)) engines"
}

cmd_check() {
  timeout 10 docker info >/dev/null 2>&1 || die "no Docker engine answers (docker info)"
  [ -x /usr/sbin/dockerd ] || [ -x /usr/bin/dockerd ] || die "no dockerd in the host's /usr to run nested"
  build_image
  local rc=0
  timeout 60 docker run --rm "${engine_flags[@]}" -e LAB_CHECK=1 -e LAB_STORAGE_DRIVER=none \
    "$lab_image" || rc=$?
  if [ -z "$(docker ps -aq --filter "label=$label")" ]; then
    docker rmi "$lab_image" >/dev/null 2>&1 || true
  fi
  [ "$rc" = 0 ] || die "a lab engine container cannot start or remount /sys and its cgroups read-write (exit $rc)"
  say "this machine can run the lab's engines"
}

cmd_registry() {
  [ -s "$lab_dir/registry" ] || die "the lab was not started with ERLMCP_LAB_REGISTRY_PORT (or is not up)"
  cat "$lab_dir/registry"
}

cmd_status() {
  docker ps -a --filter "label=$label" --format '{{.Names}}\t{{.Status}}'
  if [ -S "$lab_dir/1/docker.sock" ] && inner 1 node ls 2>/dev/null; then
    return 0
  fi
  say "the lab manager (erlmcp-lab-1) does not answer"
}

cmd_lose() {
  local i="${1:-}"
  [[ "$i" =~ ^[1-9]$ ]] || die "lose takes an engine number (got '${i}')"
  docker kill "erlmcp-lab-$i" >/dev/null || die "no running erlmcp-lab-$i"
  say "erlmcp-lab-$i killed"
}

cmd_down() {
  local containers volumes
  containers="$(docker ps -aq --filter "label=$label")"
  if [ -n "$containers" ]; then
    # shellcheck disable=SC2086  # one id per word
    timeout 120 docker rm -f -v $containers >/dev/null
  fi
  volumes="$(docker volume ls -q --filter "label=$label")"
  if [ -n "$volumes" ]; then
    # shellcheck disable=SC2086
    docker volume rm $volumes >/dev/null
  fi
  if docker network inspect "$network" >/dev/null 2>&1; then
    docker network rm "$network" >/dev/null
  fi
  docker rmi "$lab_image" >/dev/null 2>&1 || true
  rm -rf "$lab_dir"
  say "lab removed"
}

case "${1:-}" in
  up)
    shift
    cmd_up "$@"
    ;;
  load)
    shift
    cmd_load "$@"
    ;;
  check) cmd_check ;;
  registry) cmd_registry ;;
  status) cmd_status ;;
  lose)
    shift
    cmd_lose "$@"
    ;;
  down) cmd_down ;;
  *) usage ;;
esac
