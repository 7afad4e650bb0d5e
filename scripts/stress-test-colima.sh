#!/usr/bin/env bash
# The seed's stress interface, kept: DURATION_MIN CONNECTIONS RAMP_MIN, as a thin wrapper over
# `erlmcp-gen stress`. The cluster file defaults to clusters/colima.toml (CLUSTER=… to change);
# extra arguments after the three numbers go to erlmcp-gen (e.g. --runtime native --rate 2000).
# usage: scripts/stress-test-colima.sh [DURATION_MIN [CONNECTIONS [RAMP_MIN [erlmcp-gen flags…]]]]
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"
cd "$repo_root"

duration_min="${1:-5}"
connections="${2:-100000}"
ramp_min="${3:-5}"
shift $(($# < 3 ? $# : 3))
cluster="${CLUSTER:-clusters/colima.toml}"

for value in "$duration_min" "$connections" "$ramp_min"; do
  case "$value" in
    '' | *[!0-9]*) echo "usage: $0 DURATION_MIN CONNECTIONS RAMP_MIN [erlmcp-gen flags…]" >&2; exit 2 ;;
  esac
done

bin="$(erlmcp_gen_binary)"
exec "$bin" stress "$cluster" --duration "${duration_min}m" --connections "$connections" --ramp "${ramp_min}m" "$@"
