#!/usr/bin/env bash
# The seed's stress interface, kept: DURATION_MIN CONNECTIONS RAMP_MIN, as a thin wrapper over
# `erlmcp-gen stress`. It loads the cluster that is running: CLUSTER=… when set, else the first of
# clusters/colima.toml, clusters/local.toml, clusters/*.toml with a running node (the one
# scripts/colima-quickstart.sh brought up), else clusters/colima.toml. Extra arguments after the
# three numbers go to erlmcp-gen (e.g. --runtime native --rate 2000).
# usage: scripts/stress-test-colima.sh [DURATION_MIN [CONNECTIONS [RAMP_MIN [erlmcp-gen flags…]]]]
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"
cd "$repo_root"

duration_min="${1:-5}"
connections="${2:-100000}"
ramp_min="${3:-5}"
shift $(($# < 3 ? $# : 3))

for value in "$duration_min" "$connections" "$ramp_min"; do
  case "$value" in
    '' | *[!0-9]*) echo "usage: $0 DURATION_MIN CONNECTIONS RAMP_MIN [erlmcp-gen flags…]" >&2; exit 2 ;;
  esac
done

bin="$(erlmcp_gen_binary)"

running_cluster() {
  local file
  for file in clusters/colima.toml clusters/local.toml clusters/*.toml; do
    if [ -f "$file" ] && "$bin" status "$file" --format json 2>/dev/null | grep -q '"state": "running"'; then
      printf '%s\n' "$file"
      return 0
    fi
  done
  return 1
}

if [ -n "${CLUSTER:-}" ]; then
  cluster="$CLUSTER"
elif cluster="$(running_cluster)"; then
  echo "stress-test-colima: loading $cluster (it is running)" >&2
else
  cluster=clusters/colima.toml
  echo "stress-test-colima: no cluster of clusters/ is running; loading $cluster" >&2
fi
exec "$bin" stress "$cluster" --duration "${duration_min}m" --connections "$connections" --ramp "${ramp_min}m" "$@"
