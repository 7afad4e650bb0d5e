#!/usr/bin/env bash
# One command from a clone to a running, load-tested cluster: build (once), start Colima's VM
# when Colima is installed and its profile is not running, validate (with the limits of the
# machine that runs the containers), render, apply (Colima's engine if present, else the local
# engine, else native processes), then a short stress run unless --no-test.
# usage: scripts/colima-quickstart.sh [--no-test|--status|--clean] [CLUSTER_FILE]
#   default cluster: clusters/colima.toml when it fits that machine, else clusters/local.toml
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"
cd "$repo_root"

mode=run
cluster=""
for arg in "$@"; do
  case "$arg" in
    --no-test) mode=no-test ;;
    --status) mode=status ;;
    --clean) mode=clean ;;
    -h | --help) sed -n '2,8p' "$0"; exit 0 ;;
    *) cluster="$arg" ;;
  esac
done

say() { printf 'quickstart: %s\n' "$*" >&2; }
warn() { printf 'quickstart: WARNING: %s\n' "$*" >&2; }
deploying() { [ "$mode" = run ] || [ "$mode" = no-test ]; }
can_apt() { [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; }

# Prerequisites, each with what it is for and what happens without it:
# - cargo (the Rust toolchain) builds erlmcp-gen and erlmcp-node: required (unless ERLMCP_GEN).
# - prometheus collects the nodes' metrics: the registry-free Prometheus image is built from
#   this machine's install; installed from Debian's packages when we are root with apt;
#   otherwise the cluster comes up without it and `status` says metrics are not collected.
# - a Docker engine runs the containers: without one, erlmcp-gen runs the nodes as local
#   processes and says so.
# - colima runs that engine in a VM on a Mac: used when on PATH.
if [ -z "${ERLMCP_GEN:-}" ] && ! command -v cargo >/dev/null 2>&1; then
  echo "quickstart: cargo (the Rust toolchain) is missing; it builds erlmcp-gen and erlmcp-node: install it (https://rustup.rs) and run again" >&2
  exit 1
fi
if deploying && ! command -v prometheus >/dev/null 2>&1; then
  if can_apt; then
    say "installing prometheus from Debian's packages (it collects the nodes' metrics; the local Prometheus image is built from it)"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus; } >/dev/null 2>&1 ||
      warn "apt-get install prometheus failed"
  fi
  if ! command -v prometheus >/dev/null 2>&1; then
    warn "no prometheus on PATH and it cannot be installed here (that needs root and apt-get): unless the engine has the Prometheus image or a registry answers, the cluster comes up WITHOUT Prometheus and its metrics are not collected"
  fi
fi

bin="$(erlmcp_gen_binary)"
seed=clusters/colima.toml

# Colima (a Mac): start the profile's VM from the cluster file when it is not running, and
# deploy on the VM's engine.
if deploying && command -v colima >/dev/null 2>&1 && { [ -z "$cluster" ] || [ "$cluster" = "$seed" ]; }; then
  profile="$(sed -n 's/^colima_profile *= *"\([a-z0-9-]*\)".*/\1/p' "$seed" | head -n 1)"
  profile="${profile:-default}"
  if ! colima status --profile "$profile" >/dev/null 2>&1; then
    say "Colima profile $profile is not running: starting its VM from $seed (generated/colima-setup.sh start)"
    "$bin" render "$seed" >/dev/null
    generated/colima-setup.sh start
  fi
  if [ -z "${DOCKER_HOST:-}" ] && [ -S "$HOME/.colima/$profile/docker.sock" ]; then
    export DOCKER_HOST="unix://$HOME/.colima/$profile/docker.sock"
  fi
fi

if [ -z "$cluster" ]; then
  if verdict="$("$bin" validate "$seed" --host --color never 2>&1)"; then
    cluster="$seed"
  else
    cluster=clusters/local.toml
    reason="$(printf '%s\n' "$verdict" | sed -n 's/^ *\[FAIL\] *//p' | head -n 1)"
    say "$seed does not fit this machine (${reason:-see: $bin validate $seed --host}); using $cluster instead"
  fi
fi

# A shared machine's clusters publish the same ports: ERLMCP_QUICKSTART_LOCK names a lock file
# the deployment waits for (the build above does not need it).
if [ -n "${ERLMCP_QUICKSTART_LOCK:-}" ]; then
  exec 9>"$ERLMCP_QUICKSTART_LOCK"
  flock 9
fi

case "$mode" in
  status) exec "$bin" status "$cluster" ;;
  clean) exec "$bin" down "$cluster" --volumes ;;
esac

echo "== validate $cluster"
"$bin" validate "$cluster" --host
echo "== render $cluster"
if [ "$cluster" = "$seed" ]; then
  "$bin" render "$cluster"
else
  "$bin" render "$cluster" -o "results/$(basename "$cluster" .toml)-generated"
fi
echo "== apply $cluster"
"$bin" apply "$cluster"
"$bin" status "$cluster"
if [ "$mode" = run ]; then
  echo "== stress (short run)"
  "$bin" stress "$cluster" --duration 20s --ramp 10s
fi
