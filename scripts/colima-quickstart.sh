#!/usr/bin/env bash
# One command from a clone to a running, load-tested cluster: build, validate (with this
# machine's limits), render, apply (Colima's engine if present, else the local engine, else
# native processes), then a short stress run unless --no-test.
# usage: scripts/colima-quickstart.sh [--no-test|--status|--clean] [CLUSTER_FILE]
#   default cluster: clusters/colima.toml when this machine can hold it, else clusters/local.toml
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
    -h | --help) sed -n '2,7p' "$0"; exit 0 ;;
    *) cluster="$arg" ;;
  esac
done

# Without a registry the cluster's Prometheus image is assembled from the host's own Prometheus
# (Debian's package); install it the way scripts/test.sh installs its tools, when we can.
if [ "$mode" = run ] || [ "$mode" = no-test ]; then
  if ! command -v prometheus >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "quickstart: installing prometheus from Debian's packages (the local Prometheus image is built from it)"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  fi
fi

bin="$(erlmcp_gen_binary)"

if [ -z "$cluster" ]; then
  if "$bin" validate clusters/colima.toml --host >/dev/null 2>&1; then
    cluster=clusters/colima.toml
  else
    cluster=clusters/local.toml
    echo "quickstart: this machine cannot hold clusters/colima.toml (see: $bin validate clusters/colima.toml --host); using $cluster"
  fi
fi

case "$mode" in
  status) exec "$bin" status "$cluster" ;;
  clean) exec "$bin" down "$cluster" --volumes ;;
esac

echo "== validate $cluster"
"$bin" validate "$cluster" --host
echo "== render $cluster"
if [ "$cluster" = clusters/colima.toml ]; then
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
