#!/usr/bin/env bash
# Validates a cluster file and this machine against it, then runs the external validators
# (docker-compose, promtool, shellcheck) on a fresh render.
# usage: scripts/validate-colima-setup.sh [CLUSTER_FILE]   (default clusters/colima.toml)
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"
cd "$repo_root"

cluster="${1:-clusters/colima.toml}"
bin="$(erlmcp_gen_binary)"
status=0

echo "== erlmcp-gen validate --host $cluster"
"$bin" validate "$cluster" --host || status=1

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
echo "== erlmcp-gen render $cluster -o $out"
"$bin" render "$cluster" -o "$out" >/dev/null

check() {
  local tool="$1"
  shift
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "== $tool: SKIPPED (not installed)"
    return 0
  fi
  echo "== $tool $*"
  "$tool" "$@" || status=1
}
check docker-compose -f "$out/docker-compose.yml" config -q
check promtool check config "$out/prometheus.yml"
check shellcheck "$out/colima-setup.sh"

if [ "$status" -eq 0 ]; then
  echo "all checks passed"
else
  echo "some checks failed (see above)" >&2
fi
exit "$status"
